"""Model values -> the Kubernetes JSON a real cluster would serve, for loading the twin.

Callers: ``simulator.twin.kube.KubeTwin`` (``add_pod``, ``add_node``, ``add_claim``,
``add_volume``, ``load``), adapter tests and the sync benchmark. The inverse of
``autoscaler.kube.objects`` for everything the planner models but a bound volume's zone, which
lives in other objects: ``claim_json`` and ``volume_json`` build the PersistentVolumeClaim and
the (Azure Disk CSI) PersistentVolume, and ``with_claims`` mounts claims in a pod's JSON.
``padding=True`` adds the fields real objects carry and the planner ignores (image,
probes, service-account volume, container statuses; a node's image list), so that sizes on the
wire, and the cost of reading them, are those of a real cluster: about 3.5 KB per pod. Padding
leaves ``terminationGracePeriodSeconds`` out unless the pod sets it, so that a padded pod still
decodes back to the model value it came from. A pod with ``local_storage`` mounts a disk-backed
``emptyDir`` named ``scratch``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from autoscaler.model.aks import (
    REGION_LABEL,
    Catalog,
    node_allocatable,
    node_labels,
    node_taints,
    zone_label,
)
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.labels import (
    HOSTNAME_LABEL,
    ZONE_LABEL,
    LabelSelector,
    Requirement,
    labels_of,
)
from autoscaler.model.node import Node
from autoscaler.model.pod import Container, Pod
from autoscaler.model.pool import AgentPool
from autoscaler.model.resources import CPU, Resources

Obj = dict[str, Any]
STAMP = "2026-01-05T00:00:00Z"
_OWNER_API = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
              "Job": "batch/v1", "ReplicationController": "v1"}
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def stable_uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "surge-twin/" + "/".join(parts)))


def quantities(resources: Resources) -> dict[str, str]:
    return {k: f"{v}m" if k == CPU else str(v) for k, v in resources.items()}


def _requirement(req: Requirement) -> Obj:
    out: Obj = {"key": req.key, "operator": req.operator.value}
    if req.values:
        out["values"] = list(req.values)
    return out


def _selector(selector: LabelSelector) -> Obj:
    out: Obj = {}
    if selector.match_labels:
        out["matchLabels"] = dict(selector.match_labels)
    if selector.match_expressions:
        out["matchExpressions"] = [_requirement(r) for r in selector.match_expressions]
    return out


def _container(container: Container, padding: bool, *, init: bool = False) -> Obj:
    out: Obj = {"name": container.name, "image": f"registry.example/{container.name}:1.0"}
    if container.requests:
        out["resources"] = {"requests": quantities(container.requests)}
    if init and container.sidecar:
        out["restartPolicy"] = "Always"
    if padding:
        out.update({
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "readinessProbe": {"failureThreshold": 3, "httpGet": {
                "path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10,
                "successThreshold": 1, "timeoutSeconds": 1},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                              "name": "kube-api-access", "readOnly": True}],
        })
    return out


def _affinity(pod: Pod) -> Obj:
    out: Obj = {}
    if pod.required_affinity:
        terms = [{"matchExpressions": [_requirement(r) for r in t.match_expressions]}
                 for t in pod.required_affinity]
        out["nodeAffinity"] = {_REQUIRED: {"nodeSelectorTerms": terms}}
    if pod.anti_affinity:
        out["podAntiAffinity"] = {_REQUIRED: [
            {"labelSelector": _selector(t.label_selector), "topologyKey": t.topology_key,
             **({"namespaces": list(t.namespaces)} if t.namespaces else {})}
            for t in pod.anti_affinity
        ]}
    return out


def _spec(pod: Pod, padding: bool) -> Obj:
    spec: Obj = {
        "containers": [_container(c, padding) for c in pod.containers],
        "schedulerName": "default-scheduler",
        "priority": pod.priority,
        "restartPolicy": "Always",
    }
    if pod.init_containers:
        spec["initContainers"] = [_container(c, padding, init=True) for c in pod.init_containers]
    if pod.overhead:
        spec["overhead"] = quantities(pod.overhead)
    if pod.node_selector:
        spec["nodeSelector"] = dict(pod.node_selector)
    if pod.required_affinity or pod.anti_affinity:
        spec["affinity"] = _affinity(pod)
    if pod.tolerations:
        spec["tolerations"] = [
            {k: v for k, v in (("key", t.key), ("operator", t.operator), ("value", t.value),
                               ("effect", t.effect.value if t.effect else "")) if v}
            for t in pod.tolerations
        ]
    if pod.topology_spread:
        spec["topologySpreadConstraints"] = [
            {"maxSkew": c.max_skew, "topologyKey": c.topology_key,
             "whenUnsatisfiable": c.when_unsatisfiable,
             "labelSelector": _selector(c.label_selector),
             **({"minDomains": c.min_domains} if c.min_domains != 1 else {})}
            for c in pod.topology_spread
        ]
    if pod.node_name:
        spec["nodeName"] = pod.node_name
    if pod.grace_seconds is not None:
        spec["terminationGracePeriodSeconds"] = pod.grace_seconds
    volumes: list[Obj] = []
    if padding:
        spec.update({
            "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority", "securityContext": {},
            "serviceAccount": "default", "serviceAccountName": "default",
        })
        volumes.append({"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}],
                           "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
        ]}})
    if pod.local_storage:
        volumes.append({"name": "scratch", "emptyDir": {}})
    if volumes:
        spec["volumes"] = volumes
    return spec


def pod_status(bound: bool, *, message: str = "", padding: bool = False) -> Obj:
    """Running and ready when bound; else Pending, marked unschedulable by the scheduler."""
    if not bound:
        return {"phase": "Pending", "qosClass": "Burstable", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message or "0/0 nodes are available.", "lastProbeTime": None,
            "lastTransitionTime": STAMP}]}
    conditions = [{"type": kind, "status": "True", "lastProbeTime": None,
                   "lastTransitionTime": STAMP}
                  for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    status: Obj = {"phase": "Running", "conditions": conditions, "qosClass": "Burstable",
                   "startTime": STAMP}
    if padding:
        status.update({
            "hostIP": "10.224.0.5", "hostIPs": [{"ip": "10.224.0.5"}], "podIP": "10.244.1.17",
            "podIPs": [{"ip": "10.244.1.17"}],
            "containerStatuses": [{
                "containerID": "containerd://" + "0123456789abcdef" * 4,
                "image": "registry.example/app:1.0",
                "imageID": "registry.example/app@sha256:" + "0123456789abcdef" * 4,
                "lastState": {}, "name": "app", "ready": True, "restartCount": 0,
                "started": True, "state": {"running": {"startedAt": STAMP}}}],
        })
    return status


def pod_json(pod: Pod, *, padding: bool = False) -> Obj:
    """A pod as the API server returns it: pending pods are already marked unschedulable."""
    meta: Obj = {"name": pod.name, "namespace": pod.namespace,
                 "uid": pod.uid or stable_uid("pod", pod.namespace, pod.name)}
    if pod.labels:
        meta["labels"] = dict(pod.labels)
    if pod.annotations:
        meta["annotations"] = dict(pod.annotations)
    if pod.owner:
        kind, _, name = pod.owner.partition("/")
        meta["ownerReferences"] = [{
            "apiVersion": _OWNER_API.get(kind, "apps/v1"), "kind": kind, "name": name,
            "uid": stable_uid(kind, pod.namespace, name), "controller": True,
            "blockOwnerDeletion": True}]
    if padding:
        meta["generateName"] = pod.name.rsplit("-", 1)[0] + "-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": _spec(pod, padding),
            "status": pod_status(pod.node_name is not None, padding=padding)}


def node_json(node: Node, *, padding: bool = False) -> Obj:
    allocatable = quantities(node.allocatable)
    meta: Obj = {"name": node.name, "uid": stable_uid("node", node.name),
                 "labels": dict(node.labels)}
    if node.annotations:
        meta["annotations"] = dict(node.annotations)
    spec: Obj = {"providerID": f"azure:///subscriptions/twin/virtualMachines/{node.name}"}
    if node.taints:
        spec["taints"] = [{"key": t.key, **({"value": t.value} if t.value else {}),
                           "effect": t.effect.value} for t in node.taints]
    if node.unschedulable:
        spec["unschedulable"] = True
    status: Obj = {
        "allocatable": allocatable, "capacity": dict(allocatable),
        "conditions": [{"type": "Ready", "status": "True" if node.ready else "False",
                        "reason": "KubeletReady" if node.ready else "KubeletNotReady",
                        "lastHeartbeatTime": STAMP, "lastTransitionTime": STAMP}],
        "nodeInfo": {  # every field is required by the client's model
            "architecture": "amd64", "bootID": stable_uid("boot", node.name),
            "containerRuntimeVersion": "containerd://1.7.22",
            "kernelVersion": "5.15.0-1073-azure", "kubeProxyVersion": "v1.30.4",
            "kubeletVersion": "v1.30.4", "machineID": stable_uid("machine", node.name),
            "operatingSystem": "linux", "osImage": "Ubuntu 22.04.5 LTS",
            "systemUUID": stable_uid("system", node.name)},
    }
    if padding:
        status["addresses"] = [{"type": "InternalIP", "address": "10.224.0.5"},
                               {"type": "Hostname", "address": node.name}]
        status["images"] = [{"names": [f"mcr.microsoft.com/oss/kubernetes/image{i}:v1.{i}"],
                             "sizeBytes": 10_000_000 + i} for i in range(40)]
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec, "status": status}


def pdb_json(
    name: str, namespace: str, match_labels: dict[str, str], *,
    min_available: int | str | None = None, max_unavailable: int | str | None = None,
) -> Obj:
    return budget_json(PodDisruptionBudget(
        name, namespace, LabelSelector(labels_of(match_labels)), min_available, max_unavailable))


def budget_json(pdb: PodDisruptionBudget) -> Obj:
    """A model budget as a ``policy/v1`` object; its status is the store's to write
    (``disruptions_allowed`` is not sent: the twin counts the pods itself)."""
    spec: Obj = {"selector": _selector(pdb.selector)}
    if pdb.min_available is not None:
        spec["minAvailable"] = pdb.min_available
    if pdb.max_unavailable is not None:
        spec["maxUnavailable"] = pdb.max_unavailable
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": pdb.name, "namespace": pdb.namespace}, "spec": spec}


def aks_nodes(pools: Sequence[AgentPool], catalog: Catalog, region: str) -> list[Node]:
    """``pool.count`` registered, ready nodes per pool, labelled, tainted and sized as AKS
    makes them; a multi-zone pool's nodes go round its zones."""
    nodes = []
    for pool in pools:
        vm = catalog.get(pool.vm_size)
        if vm is None:
            raise KeyError(f"VM size {pool.vm_size} is not in the catalog")
        for i in range(pool.count):
            name = f"aks-{pool.name}-12345678-vmss{i:06x}"
            zone = zone_label(region, pool.zones[i % len(pool.zones)]) if pool.zones else None
            labels = dict(node_labels(pool, vm, zone))
            labels.update({HOSTNAME_LABEL: name, REGION_LABEL: region})
            nodes.append(Node(
                name=name, pool=pool.name, labels=labels_of(labels), taints=node_taints(pool),
                allocatable=node_allocatable(vm, pool.max_pods, pool.kubernetes_version),
            ))
    return nodes


def claim_json(name: str, namespace: str = "default", *, volume: str | None = None,
               storage_class: str = "managed-csi") -> Obj:
    """A PersistentVolumeClaim: bound to ``volume`` (Bound, ``spec.volumeName``) when one is
    named, else Pending, as a claim of a ``WaitForFirstConsumer`` class waits for its pod."""
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "volumeMode": "Filesystem", "resources": {"requests": {"storage": "10Gi"}}}
    if volume is not None:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec,
            "status": {"phase": "Bound" if volume else "Pending"}}


def volume_json(name: str, zones: Sequence[str] = (), *, key: str = ZONE_LABEL,
                claim: str | None = None) -> Obj:
    """A PersistentVolume as the Azure Disk CSI driver provisions it: a zonal disk's node
    affinity requires one of ``zones`` under ``key``, one term per zone (OR-ed, as the driver
    writes them); no zones: a zone-redundant disk, without node affinity. ``claim``
    (``namespace/name``) fills ``claimRef``."""
    spec: Obj = {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "managed-csi",
                 "volumeMode": "Filesystem",
                 "csi": {"driver": "disk.csi.azure.com", "volumeHandle": f"/disks/{name}"}}
    if zones:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": key, "operator": "In", "values": [zone]}]}
            for zone in zones]}}
    if claim is not None:
        namespace, _, claim_name = claim.partition("/")
        spec["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": namespace,
                            "name": claim_name}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": spec, "status": {"phase": "Bound" if claim else "Available"}}


def with_claims(obj: Obj, claims: Sequence[str] = (), ephemeral: Sequence[str] = ()) -> Obj:
    """``obj`` (a pod's JSON) mounting the claims named ``claims`` and generic ephemeral
    volumes named ``ephemeral`` (whose claims are ``<pod>-<volume>``)."""
    volumes = obj["spec"].setdefault("volumes", [])
    volumes.extend({"name": f"data{i}", "persistentVolumeClaim": {"claimName": claim}}
                   for i, claim in enumerate(claims))
    volumes.extend({"name": volume, "ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "managed-csi",
        "resources": {"requests": {"storage": "1Gi"}}}}}} for volume in ephemeral)
    return obj
