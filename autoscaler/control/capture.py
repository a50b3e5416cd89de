"""``surge snapshot``: the live cluster as a snapshot document that ``surge plan`` reads.

Callers: ``control.cli`` (``surge snapshot``) lists pods, nodes, PersistentVolumeClaims,
PersistentVolumes and PodDisruptionBudgets through ``kube.client`` (``read_cluster``) and hands
the raw objects here; tests call ``capture`` directly. The document follows docs/snapshot.md:
nodes, pods and budgets are trimmed by ``kube.objects`` and claims' zones read by
``kube.volumes`` (the same rules the live cache applies), pods the autoscaler would ignore
(ended, being deleted before binding, not yet tried by their scheduler, another scheduler's) are
left out, and every entry is checked with the snapshot readers, so what is written loads.

Claims and budgets are optional sections: a list the user may not make (403) or the server does
not serve (404) leaves its section out with a warning rather than failing the capture, since
pods, nodes and pools alone still plan a scale-up. An absent section and an empty one differ:
empty means "listed, nothing there".

Pools come from the cloud provider when one is configured (its pools are the managed ones) and
are otherwise inferred from node labels: VM size from ``node.kubernetes.io/instance-type``,
zones, priority, mode, common labels and taints, and a count equal to the registered nodes,
which misses nodes still being created. That is said in a warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from autoscaler.control.snapshot import API_VERSION, KIND, read_claim
from autoscaler.control.snapshot_budgets import PDB_FIELDS, pdb
from autoscaler.control.snapshot_fields import Fields
from autoscaler.control.snapshot_nodes import read_node
from autoscaler.control.snapshot_pods import PodReader
from autoscaler.control.snapshot_pools import MAX_POOL_NODES
from autoscaler.kube.objects import (
    DEFAULT_SCHEDULERS,
    IGNORED,
    Json,
    node_entry,
    object_key,
    pdb_entry,
    pod_entry,
    pod_role,
)
from autoscaler.kube.reflector import NODES, PDBS, PODS, PVCS, PVS
from autoscaler.kube.volumes import claim_volume, pod_claims, volume_zones
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
    schedulers: Collection[str] = DEFAULT_SCHEDULERS, claims: Iterable[Json] | None = None,
    volumes: Iterable[Json] | None = None, pdbs: Iterable[Json] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The snapshot document and warnings. ``pools`` None: infer them from the nodes. The raw
    ``claims`` and ``volumes`` (both needed) give ``persistentVolumeClaims`` and ``pdbs``
    gives ``podDisruptionBudgets``; None leaves the section out."""
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
    mounted: set[str] = set()
    reader = PodReader({})
    orphans = 0
    for obj in pods:
        if pod_role(obj, schedulers) == IGNORED:
            continue
        entry = pod_entry(obj)
        if entry.get("nodeName") is not None and entry["nodeName"] not in names:
            orphans += 1  # its node went away between the two lists, or was left out
            continue
        _add_ephemeral_claims(entry, obj)
        try:
            reader.read(entry, f"$.pods[{entry['namespace']}/{entry['name']}]")
        except ValidationError as error:
            warnings.append(f"pod {entry['namespace']}/{entry['name']} left out: {error}")
            continue
        pod_entries.append(entry)
        mounted.update(pod_claims(obj))
    if orphans:
        warnings.append(f"{orphans} bound pod(s) left out: their node is not in the snapshot")
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND, "region": region,
        "capturedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pools": pool_entries, "nodes": node_entries, "pods": pod_entries,
    }
    if pools is not None:
        doc["managedPools"] = sorted(known)
    if claims is not None and volumes is not None:
        doc["persistentVolumeClaims"] = claim_entries(mounted, claims, volumes, region, warnings)
    if pdbs is not None:
        doc["podDisruptionBudgets"] = budget_entries(pdbs, warnings)
    return doc, warnings


def _add_ephemeral_claims(entry: Json, obj: Json) -> None:
    """Write each generic ephemeral volume of ``obj`` into its entry as the claim it is.

    ``pod_entry`` drops them (the live cache joins their zones in apart, and naming the claim
    after the pod in the entry would make every replica's spec unique to the decoder), but a
    snapshot has only the pod's volumes to find its claims by. The claim's name comes from
    ``pod_claims``, the one place the ephemeral-volume controller's naming rule lives."""
    meta = obj.get("metadata") or {}
    for volume in (obj.get("spec") or {}).get("volumes") or ():
        if volume.get("ephemeral") is None:
            continue
        keys = pod_claims({"metadata": meta, "spec": {"volumes": [volume]}})
        for key in keys:
            entry.setdefault("volumes", []).append({
                "name": volume.get("name"),
                "persistentVolumeClaim": {"claimName": key.partition("/")[2]}})


def claim_entries(
    mounted: Iterable[str], claims: Iterable[Json], volumes: Iterable[Json], region: str,
    warnings: list[str],
) -> list[Json]:
    """``persistentVolumeClaims[]``: of the claims ``mounted`` (``namespace/name`` keys), those
    bound to a volume that restricts zones, by namespace then name. Unbound claims, claims or
    volumes not listed and zone-redundant volumes restrict nothing (``kube.volumes``, the
    cache's rules), and the format says a claim left out does not constrain: they are not
    written, which keeps the document small."""
    bound = {object_key(obj): claim_volume(obj) for obj in claims}
    zones_of = {object_key(obj): volume_zones(obj) for obj in volumes}
    entries: list[Json] = []
    for key in sorted(set(mounted), key=lambda k: k.partition("/")[::2]):
        volume = bound.get(key)
        zones = None if volume is None else zones_of.get(volume)
        if zones is None:
            continue
        namespace, _, name = key.partition("/")
        entry: Json = {"namespace": namespace, "name": name, "zones": list(zones)}
        try:
            read_claim(entry, f"$.persistentVolumeClaims[{key}]", region)
        except ValidationError as error:  # e.g. a zone of another region than the snapshot's
            warnings.append(f"claim {key} left out, its pods are not held to its zones: {error}")
            continue
        entries.append(entry)
    return entries


def budget_entries(pdbs: Iterable[Json], warnings: list[str]) -> list[Json]:
    """``podDisruptionBudgets[]`` by namespace then name: each trimmed by ``pdb_entry`` (with
    ``disruptionsAllowed`` when the status is current) and read back as the cache reads it.
    A budget that selects no pod is left out, as the cache leaves it out."""
    entries: list[Json] = []
    for obj in pdbs:
        entry = pdb_entry(obj)
        if entry is None:
            continue
        key = f"{entry['namespace']}/{entry['name']}"
        try:
            pdb(Fields(entry, f"$.podDisruptionBudgets[{key}]", required=("name",),
                       optional=PDB_FIELDS))
        except ValidationError as error:
            warnings.append(f"PodDisruptionBudget {key} left out: {error}")
            continue
        entries.append(entry)
    return sorted(entries, key=lambda e: (e["namespace"], e["name"]))


# A list answered with these leaves its section out (with a warning) instead of failing the
# capture: 403, a role allowed pods and nodes but not claims, volumes or budgets; 404, a
# server that does not serve the resource. Any other error is the cluster failing to answer.
SKIPPED_STATUSES = (403, 404)
_SECTION = {
    PVCS: ("persistentVolumeClaims", "pods' volume zones do not constrain the plan"),
    PVS: ("persistentVolumeClaims", "pods' volume zones do not constrain the plan"),
    PDBS: ("podDisruptionBudgets", "scale-down sees no budgets"),
}


@dataclass(frozen=True, slots=True)
class Cluster:
    """What ``read_cluster`` listed: raw objects, None for a list that was refused."""

    pods: tuple[Json, ...]
    nodes: tuple[Json, ...]
    claims: tuple[Json, ...] | None = None
    volumes: tuple[Json, ...] | None = None
    pdbs: tuple[Json, ...] | None = None
    warnings: tuple[str, ...] = ()


def read_cluster(kubeconfig: str | None, context: str | None) -> Cluster:
    """The cluster listed once; raises ``kube.cache.ApiError``, except for a claims, volumes
    or budgets list answered 403 or 404 (see ``SKIPPED_STATUSES``). Nodes first: a pod bound
    to a node created after the node list is left out, never dangling. Claims before volumes:
    a claim is bound to a volume that already exists, so every listed binding finds its
    volume in the later list (unless it was deleted in between)."""
    from autoscaler.kube.cache import ApiError, CacheOptions
    from autoscaler.kube.client import KubeApi, api_client

    api = KubeApi(api_client(kubeconfig, context))
    nodes = api.list_all(NODES)
    pods = api.list_all(PODS, field_selector=CacheOptions().pod_field_selector)
    listed: dict[str, tuple[Json, ...] | None] = {}
    warnings: list[str] = []
    for kind in (PVCS, PVS, PDBS):
        try:
            listed[kind] = api.list_all(kind)
        except ApiError as error:
            if error.status not in SKIPPED_STATUSES:
                raise
            listed[kind] = None
            section, effect = _SECTION[kind]
            warnings.append(f"cannot list {kind} ({error}): the snapshot has no {section}, "
                            f"so {effect}")
    return Cluster(pods, nodes, listed[PVCS], listed[PVS], listed[PDBS], tuple(warnings))


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
