"""``surge snapshot``: the live cluster as a snapshot document that ``surge plan`` reads.

Callers: ``control.cli`` (``surge snapshot``) lists pods and nodes through ``kube.client`` and
hands the raw objects here; tests call ``capture`` directly. The document follows
docs/snapshot.md: nodes and pods are trimmed by ``kube.objects`` (the same trimming the live
cache applies), pods the autoscaler would ignore (ended, being deleted before binding, not yet
tried by their scheduler, another scheduler's) are left out, and every entry is checked with the
snapshot readers, so what is written loads.

Pools come from the cloud provider when one is configured (its pools are the managed ones) and
are otherwise inferred from node labels: VM size from ``node.kubernetes.io/instance-type``,
zones, priority, mode, common labels and taints, and a count equal to the registered nodes,
which misses nodes still being created. That is said in a warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from autoscaler.control.snapshot import API_VERSION, KIND, MAX_POOL_NODES, read_node
from autoscaler.control.snapshot_pods import PodReader
from autoscaler.kube.objects import (
    DEFAULT_SCHEDULERS,
    IGNORED,
    Json,
    node_entry,
    pod_entry,
    pod_role,
)
from autoscaler.model.aks import REGION_LABEL
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import INSTANCE_TYPE_LABEL, MODE_LABEL, SPOT_LABEL, ZONE_LABEL
from autoscaler.model.pool import AgentPool

# Labels and taints that Kubernetes or AKS put on every node themselves: not the pool's own.
_SYSTEM_PREFIXES = (
    "kubernetes.io/", "beta.kubernetes.io/", "node.kubernetes.io/", "topology.kubernetes.io/",
    "failure-domain.beta.kubernetes.io/", "kubernetes.azure.com/", "topology.disk.csi.azure.com/",
    "node-role.kubernetes.io/", "node.cloudprovider.kubernetes.io/",
)
_SYSTEM_KEYS = (
    "agentpool", "ToBeDeletedByClusterAutoscaler", "DeletionCandidateOfClusterAutoscaler",
)


def _own(key: str) -> bool:
    return key not in _SYSTEM_KEYS and not key.startswith(_SYSTEM_PREFIXES)


def pool_json(pool: AgentPool) -> Json:
    """A model pool (from the cloud provider) as a snapshot ``pools[]`` entry."""
    return {
        "name": pool.name, "vmSize": pool.vm_size, "count": pool.count,
        "minCount": pool.min_count,
        "maxCount": max(pool.max_count, pool.count, pool.min_count),
        "zones": list(pool.zones), "priority": pool.priority.value, "mode": pool.mode.value,
        "nodeLabels": dict(pool.labels),
        "nodeTaints": [f"{t.key}={t.value}:{t.effect.value}" if t.value
                       else f"{t.key}:{t.effect.value}" for t in pool.taints],
        "maxPods": pool.max_pods, "kubernetesVersion": pool.kubernetes_version,
        "enableAutoScaling": pool.enable_autoscaling, "osType": pool.os_type,
    }


def _common(dicts: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first = dicts[0]
    return {k: v for k, v in first.items() if _own(k) and all(d.get(k) == v for d in dicts)}


def infer_pool(name: str, nodes: Sequence[Json]) -> Json | None:
    """A pool entry from its registered nodes; None when the VM size is not on the nodes."""
    labels = [dict(n["metadata"].get("labels") or {}) for n in nodes]
    sizes = Counter(lab.get(INSTANCE_TYPE_LABEL) for lab in labels if lab.get(INSTANCE_TYPE_LABEL))
    if not sizes:
        return None
    zones = sorted({lab[ZONE_LABEL].rpartition("-")[2] for lab in labels
                    if lab.get(ZONE_LABEL, "").rpartition("-")[2] not in ("", "0")}, key=int)
    taint_sets = [{(t.get("key"), t.get("value") or "", t.get("effect"))
                   for t in (n.get("spec") or {}).get("taints") or ()} for n in nodes]
    taints = sorted(t for t in set.intersection(*taint_sets)
                    if _own(str(t[0])) and t[0] != SPOT_LABEL)
    allocatable = (nodes[0].get("status") or {}).get("allocatable") or {}
    try:
        max_pods = min(250, max(1, int(allocatable.get("pods", 30))))
    except ValueError:
        max_pods = 30
    kubelet = ((nodes[0].get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return {
        "name": name, "vmSize": sizes.most_common(1)[0][0], "count": len(nodes),
        "maxCount": max(MAX_POOL_NODES, len(nodes)), "zones": zones,
        "priority": "Spot" if labels[0].get(SPOT_LABEL) == "spot" else "Regular",
        "mode": "System" if labels[0].get(MODE_LABEL) == "system" else "User",
        "nodeLabels": _common(labels),
        "nodeTaints": [f"{k}={v}:{e}" if v else f"{k}:{e}" for k, v, e in taints],
        "maxPods": max_pods, "kubernetesVersion": kubelet.lstrip("v").split("-")[0] or "1.30",
        "osType": "Windows" if labels[0].get("kubernetes.io/os") == "windows" else "Linux",
    }


def infer_region(nodes: Iterable[Json]) -> str | None:
    for node in nodes:
        labels = node["metadata"].get("labels") or {}
        if labels.get(REGION_LABEL):
            return str(labels[REGION_LABEL])
        prefix = labels.get(ZONE_LABEL, "").rpartition("-")[0]
        if prefix:
            return str(prefix)
    return None


def capture(
    pods: Iterable[Json], nodes: Iterable[Json], *, now: datetime,
    pools: Sequence[AgentPool] | None = None, region: str | None = None,
    schedulers: Collection[str] = DEFAULT_SCHEDULERS,
) -> tuple[dict[str, Any], list[str]]:
    """The snapshot document and warnings. ``pools`` None: infer them from the nodes."""
    warnings: list[str] = []
    node_objs = list(nodes)
    region = region or infer_region(node_objs)
    if not region:
        raise ValidationError("region", "no node carries a region or zone label: pass --region")
    by_pool: dict[str, list[Json]] = {}
    for obj in node_objs:
        pool = node_entry(obj)["pool"]
        if pool:
            by_pool.setdefault(pool, []).append(obj)
    pool_entries = [pool_json(p) for p in pools or ()]
    known = {p.name for p in pools or ()}
    inferred = []
    for name in sorted(set(by_pool) - known):
        entry = infer_pool(name, by_pool[name])
        if entry is None:
            warnings.append(f"pool {name}: nodes carry no {INSTANCE_TYPE_LABEL} label; left out")
            continue
        pool_entries.append(entry)
        inferred.append(name)
    if pools is None and inferred:
        warnings.append(
            f"agent pools inferred from node labels ({', '.join(inferred)}): each count is the"
            " registered nodes, so nodes still being created are missed; configure the AKS"
            " provider for exact pools")
    elif inferred:
        warnings.append(f"pools not managed by the provider, inferred from nodes: "
                        f"{', '.join(inferred)}")
    listed = {p["name"] for p in pool_entries}
    node_entries = []
    for obj in node_objs:
        entry = node_entry(obj)
        if entry["pool"] not in listed:
            entry["pool"] = None
        try:
            read_node(entry, f"$.nodes[{entry['name']}]", listed)
        except ValidationError as error:
            warnings.append(f"node {entry['name']} left out: {error}")
            continue
        node_entries.append(entry)
    names = {n["name"] for n in node_entries}
    pod_entries = []
    reader = PodReader({})
    orphans = 0
    for obj in pods:
        if pod_role(obj, schedulers) == IGNORED:
            continue
        entry = pod_entry(obj)
        if entry.get("nodeName") is not None and entry["nodeName"] not in names:
            orphans += 1  # its node went away between the two lists, or was left out
            continue
        try:
            reader.read(entry, f"$.pods[{entry['namespace']}/{entry['name']}]")
        except ValidationError as error:
            warnings.append(f"pod {entry['namespace']}/{entry['name']} left out: {error}")
            continue
        pod_entries.append(entry)
    if orphans:
        warnings.append(f"{orphans} bound pod(s) left out: their node is not in the snapshot")
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND, "region": region,
        "capturedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pools": pool_entries, "nodes": node_entries, "pods": pod_entries,
    }
    if pools is not None:
        doc["managedPools"] = sorted(known)
    return doc, warnings



def read_cluster(
    kubeconfig: str | None, context: str | None
) -> tuple[tuple[Json, ...], tuple[Json, ...]]:
    """(pods, nodes) listed once from the cluster; raises ``kube.cache.ApiError``. Nodes
    first: a pod bound to a node created after the node list is left out, never dangling."""
    from autoscaler.kube.cache import CacheOptions
    from autoscaler.kube.client import KubeApi, api_client

    api = KubeApi(api_client(kubeconfig, context))
    nodes = api.list_all("nodes")
    pods = api.list_all("pods", field_selector=CacheOptions().pod_field_selector)
    return pods, nodes


def provider_pools(environ: Mapping[str, str]) -> tuple[AgentPool, ...] | None:
    """The managed pools from AKS when the environment configures the provider, else None.
    Raises ``cloud.provider.CloudError`` when it is configured but cannot be read."""
    from autoscaler.cloud.aks_settings import aks_settings

    try:
        settings = aks_settings({}, environ)
    except ValidationError:
        return None  # not configured: pools are inferred from the nodes
    from autoscaler.cloud.aks import AksProvider

    provider = AksProvider(settings)
    try:
        return provider.list_pools()
    finally:
        provider.close()
