"""Builders for test values, in one place. Every test builds pods, nodes and pools through these.

Defaults are small and valid; keyword arguments override. Quantities are given in the planner's
integer units (millicores, bytes) unless a helper says otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from autoscaler.model.labels import (
    AGENTPOOL_LABEL,
    HOSTNAME_LABEL,
    ZONE_LABEL,
    Labels,
    labels_of,
)
from autoscaler.model.node import Node, Taint
from autoscaler.model.pod import Container, Pod, Toleration
from autoscaler.model.pool import AgentPool, NodeOption, Priority, TemplateNode
from autoscaler.model.resources import Resources
from autoscaler.model.state import ClusterState
from simulator.metrics import NodeRecord, PodRecord, Sample

GiB = 2**30
MiB = 2**20


def res(cpu_m: int = 0, mem: int = 0, **extra: int) -> Resources:
    """Resources from millicores, bytes and extra named counts (``gpu=1`` -> nvidia.com/gpu)."""
    values: dict[str, int] = {"cpu": cpu_m, "memory": mem}
    for name, amount in extra.items():
        values["nvidia.com/gpu" if name == "gpu" else name.replace("_", "-")] = amount
    return Resources.of(values)


def pod(
    name: str = "p",
    cpu_m: int = 100,
    mem: int = 128 * MiB,
    *,
    owner: str = "ReplicaSet/web",
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    node_name: str | None = None,
    gpu: int = 0,
    **fields: object,
) -> Pod:
    """A one-container pod; ``fields`` go straight to ``Pod`` (tolerations=..., etc.)."""
    return Pod(
        name=name,
        namespace=namespace,
        uid=f"uid-{namespace}-{name}",
        owner=owner,
        labels=labels_of(labels or {"app": owner.split("/")[-1]}),
        containers=(Container("main", res(cpu_m, mem, gpu=gpu)),),
        node_name=node_name,
        **fields,  # type: ignore[arg-type]
    )


def node(
    name: str = "n1",
    cpu_m: int = 4000,
    mem: int = 16 * GiB,
    *,
    pool: str | None = "pool1",
    zone: str | None = "eastus-1",
    pods: int = 110,
    labels: Mapping[str, str] | None = None,
    taints: tuple[Taint, ...] = (),
    ready: bool = True,
    unschedulable: bool = False,
    annotations: Mapping[str, str] | None = None,
) -> Node:
    base: dict[str, str] = {HOSTNAME_LABEL: name}
    if pool is not None:
        base[AGENTPOOL_LABEL] = pool
    if zone is not None:
        base[ZONE_LABEL] = zone
    base.update(labels or {})
    return Node(
        name=name,
        pool=pool,
        labels=labels_of(base),
        taints=taints,
        allocatable=res(cpu_m, mem, pods=pods),
        ready=ready,
        unschedulable=unschedulable,
        annotations=tuple(sorted((annotations or {}).items())),
    )


def pool(
    name: str = "pool1",
    vm_size: str = "Standard_D4s_v5",
    *,
    count: int = 0,
    max_count: int = 10,
    min_count: int = 0,
    zones: tuple[str, ...] = ("1",),
    priority: Priority = Priority.REGULAR,
    labels: Labels = (),
    taints: tuple[Taint, ...] = (),
    max_pods: int = 110,
) -> AgentPool:
    return AgentPool(
        name=name,
        vm_size=vm_size,
        count=count,
        min_count=min_count,
        max_count=max_count,
        zones=zones,
        priority=priority,
        labels=labels,
        taints=taints,
        max_pods=max_pods,
    )


SPOT_TOLERATION = Toleration(
    key="kubernetes.azure.com/scalesetpriority", operator="Equal", value="spot"
)


def option(
    p: AgentPool,
    cpu_m: int = 3860,
    mem: int = 12 * GiB,
    *,
    price: float = 0.2,
    region: str = "eastus",
    vcpus: int | None = None,
    gpus: int = 0,
    extra_labels: Mapping[str, str] | None = None,
) -> NodeOption:
    """The node option of pool ``p`` with a hand-set template (no VM catalog involved)."""
    labels: dict[str, str] = {
        AGENTPOOL_LABEL: p.name,
        "agentpool": p.name,
        HOSTNAME_LABEL: f"{p.name}-template",
        "node.kubernetes.io/instance-type": p.vm_size,
    }
    zone = f"{region}-{p.zones[0]}" if len(p.zones) == 1 else None
    if zone:
        labels[ZONE_LABEL] = zone
    taints = p.taints
    if p.priority is Priority.SPOT:
        labels["kubernetes.azure.com/scalesetpriority"] = "spot"
        taints = (*taints, Taint("kubernetes.azure.com/scalesetpriority", "spot"))
    labels.update(dict(p.labels))
    labels.update(extra_labels or {})
    alloc = res(cpu_m, mem, pods=p.max_pods, gpu=gpus)
    template = TemplateNode(
        labels=labels_of(labels),
        taints=taints,
        allocatable=alloc,
        vcpus=vcpus if vcpus is not None else -(-cpu_m // 1000),
        memory_bytes=mem,
    )
    return NodeOption(p.name, p.vm_size, zone, p.priority, template, price)


def state(
    pools: list[AgentPool],
    options: list[NodeOption],
    pods: list[Pod],
    nodes: list[Node] | None = None,
    **fields: object,
) -> ClusterState:
    return ClusterState(
        region="eastus",
        pools=tuple(pools),
        options=tuple(options),
        nodes=tuple(nodes or ()),
        pods=tuple(pods),
        **fields,  # type: ignore[arg-type]
    )


def snapshot_doc() -> dict[str, object]:
    """A small valid ``ClusterSnapshot`` document, as decoded JSON: a Spot and a regular pool in
    zone 1 of eastus, one Spot node, one bound and one pending pod. A fresh copy per call, so
    tests may mutate it (docs/snapshot.md describes every field)."""
    spot = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}
    web = {
        "namespace": "default",
        "owner": {"kind": "ReplicaSet", "name": "web-7d9"},
        "labels": {"app": "web"},
        "containers": [
            {"name": "main", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
        ],
        "tolerations": [{**spot, "operator": "Equal"}],
    }
    return {
        "apiVersion": "surge.io/v1alpha1",
        "kind": "ClusterSnapshot",
        "region": "eastus",
        "capturedAt": "2026-11-25T12:00:00Z",
        "pools": [
            {"name": "spotd4z1", "vmSize": "Standard_D4s_v5", "count": 1, "maxCount": 10,
             "zones": ["1"], "priority": "Spot"},
            {"name": "regd4z1", "vmSize": "Standard_D4s_v5", "count": 0, "maxCount": 10,
             "zones": ["1"]},
        ],
        "nodes": [
            {
                "name": "aks-spotd4z1-0",
                "pool": "spotd4z1",
                "labels": {AGENTPOOL_LABEL: "spotd4z1", ZONE_LABEL: "eastus-1",
                           HOSTNAME_LABEL: "aks-spotd4z1-0",
                           "kubernetes.azure.com/scalesetpriority": "spot"},
                "taints": [spot],
                "allocatable": {"cpu": "3860m", "memory": "14Gi", "pods": "110"},
            }
        ],
        "pods": [
            {"name": "web-0", "nodeName": "aks-spotd4z1-0", **copy.deepcopy(web)},
            {"name": "web-1", **copy.deepcopy(web)},
        ],
    }


# -- simulator records (appended by the simulator report helper) --------------------------------


def pod_record(
    key: str = "default/p",
    created: float = 0.0,
    *,
    bound: float | None = None,
    finished: float | None = None,
    lost: str | None = None,
    reason: str | None = None,
    workload: str = "web",
) -> PodRecord:
    """A recorder's pod record; ``reason`` is its last NotTriggerScaleUp message."""
    return PodRecord(key, workload, created, bound, finished, lost, reason)


def node_record(
    name: str = "aks-spot1-0",
    *,
    pool: str = "spot1",
    zone: str | None = "eastus-1",
    priority: str = "Spot",
    price: float = 0.1,
    requested: float = 0.0,
    ready: float | None = None,
    removed: float | None = None,
    reason: str | None = None,
) -> NodeRecord:
    """A recorder's node record, billed from ``requested`` to ``removed`` at ``price`` USD/h."""
    return NodeRecord(
        name, pool, zone, priority, "Standard_D4s_v5", price, requested,
        registered=ready, ready=ready, removed=removed, removal_reason=reason,
    )


def sim_sample(
    time: float,
    *,
    pending: int = 0,
    running: int = 0,
    nodes: Mapping[str, int] | None = None,
    cpu_m: tuple[int, int] = (0, 0),
    memory: tuple[int, int] = (0, 0),
    cost_per_hour: float = 0.0,
) -> Sample:
    """A periodic sample; ``cpu_m`` and ``memory`` are (requested, allocatable)."""
    return Sample(
        time, pending, running, dict(nodes or {}), cpu_m[0], cpu_m[1], memory[0], memory[1],
        cost_per_hour,
    )


def controller_env(**overrides: str) -> dict[str, str]:
    """The environment that gives ``surge run`` its required keys (region, Azure coordinates),
    so that a config file may hold nothing else."""
    env = {"SURGE_REGION": "eastus", "AZURE_SUBSCRIPTION_ID": "sub",
           "SURGE_RESOURCE_GROUP": "rg", "SURGE_CLUSTER_NAME": "aks"}
    env.update(overrides)
    return env


def scenario_doc() -> dict[str, object]:
    """A small valid simulator scenario document, as decoded YAML (docs/scenarios.md): a Spot
    and a regular pool in zone 1 of eastus, a web deployment on a viral curve, an API
    deployment at a constant count and a GPU-less batch. A fresh copy per call; tests mutate
    it and write it out with ``yaml.safe_dump``."""
    return {
        "name": "small",
        "duration": "2h",
        "seed": 3,
        "pools": [
            {"name": "spotz1", "vmSize": "Standard_D4s_v5", "priority": "Spot", "zones": ["1"],
             "count": 1, "maxCount": 10},
            {"name": "regz1", "vmSize": "Standard_D4s_v5", "zones": ["1"], "maxCount": 10},
        ],
        "autoscaler": {"loopInterval": "10s", "priorityTiers": [["Spot"], ["Regular"]]},
        "cloud": {
            "capacity": [
                {"vmSize": "Standard_D4s_v5", "zone": "1", "priority": "Spot", "nodes": 3}
            ],
            "spotEvictionsPerNodeHour": 0.1,
        },
        "workloads": [
            {"kind": "deployment", "name": "web",
             "pod": {"cpu": "500m", "memory": "1Gi", "tolerateSpot": True, "zoneSpread": 1},
             "replicas": {"kind": "viral", "baseline": 4, "peak": 40, "at": "10m",
                          "rise": "30m", "halfLife": "1h"}},
            {"kind": "deployment", "name": "api", "pod": {"cpu": "1", "memory": "2Gi"},
             "replicas": 3},
            {"kind": "batch", "name": "report", "pod": {"cpu": "2", "memory": "4Gi"},
             "at": "30m", "pods": 2, "runFor": "20m"},
        ],
    }
