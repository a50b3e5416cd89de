"""Load a cluster snapshot (JSON, ``surge.io/v1alpha1`` ``ClusterSnapshot``) into a ClusterState.

Callers: ``surge plan`` (``control.cli``), tests and benchmarks that replay captured clusters.
The format is documented in docs/snapshot.md and docs/snapshot.schema.json. Loading is strict:
an unknown key, a wrong type, a malformed quantity or timestamp, a bad enum value or a dangling
reference is a ``ValidationError`` naming the JSON path (``$.pods[3].containers[0]...``). The
whole document is checked before the catalog is loaded and node options are built, so a bad
snapshot never yields partial output. Pod entries are read by ``control.snapshot_pods``;
``read_node`` also reads live nodes for ``control.kubeobjects``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

from autoscaler.control.snapshot_fields import (
    Fields,
    as_enum,
    as_list,
    as_object,
    as_text,
    child,
    label_value,
    qualified_name,
    resources_of,
    timestamp,
)
from autoscaler.control.snapshot_pods import PDB_FIELDS, PodReader, annotation_map, pdb
from autoscaler.model.aks import load_catalog
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import labels_of
from autoscaler.model.node import Node, Taint
from autoscaler.model.plan import Backoff, ClusterLimits, Policy
from autoscaler.model.pod import Pod, TaintEffect
from autoscaler.model.pool import AgentPool, PoolMode, Priority
from autoscaler.model.quantity import quantity_units
from autoscaler.model.state import ClusterState
from autoscaler.planner.options import build_options

API_VERSION = "surge.io/v1alpha1"
KIND = "ClusterSnapshot"
MAX_POOL_NODES = 1000  # AKS caps an agent pool at 1000 nodes; also the default maxCount
_POOL_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")  # AKS agent pool naming rule
_AKS_ZONE = re.compile(r"[1-9][0-9]?")
_REGION = re.compile(r"[a-z][a-z0-9]*")
_K8S_VERSION = re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?")
Named = TypeVar("Named", AgentPool, Node)
Choice = TypeVar("Choice", Priority, PoolMode)


def load_snapshot(path: str) -> tuple[ClusterState, tuple[str, ...]]:
    """Read and parse a snapshot file; I/O and JSON errors become ``ValidationError("$", ...)``."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_nan)
    except OSError as error:
        raise ValidationError("$", f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ValidationError("$", f"{path} is not UTF-8: {error.reason}") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise ValidationError("$", f"invalid JSON in {path} at {where}: {error.msg}") from None
    return parse_snapshot(doc)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationError("$", f"duplicate key {key!r} in a JSON object")
        out[key] = value
    return out


def _no_nan(constant: str) -> object:
    raise ValidationError("$", f"{constant} is not valid JSON")


TOP_FIELDS = (
    "limits", "policy", "vmSizes", "managedPools", "nodes", "pods",
    "persistentVolumeClaims", "backoffs", "podDisruptionBudgets",
)
POOL_FIELDS = (
    "minCount", "maxCount", "zones", "priority", "mode", "nodeLabels", "nodeTaints", "maxPods",
    "kubernetesVersion", "enableAutoScaling", "osType",
)


def parse_snapshot(doc: object) -> tuple[ClusterState, tuple[str, ...]]:
    """Validate a decoded snapshot document and build the ClusterState, with warnings.

    Warnings are notes a user should see but that do not stop planning (docs/snapshot.md,
    "Warnings"): the loader's, then those of ``build_options``.
    """
    required = ("apiVersion", "kind", "region", "capturedAt", "pools")
    top = Fields(doc, "$", required=required, optional=TOP_FIELDS)
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if top.get(key) != expected:
            reason = f"unsupported {top.get(key)!r}, expected {expected!r}"
            raise ValidationError(top.at(key), reason)
    region = top.text("region")
    if _REGION.fullmatch(region) is None:
        raise ValidationError("$.region", f"invalid region {region!r} (e.g. 'eastus')")
    now = timestamp(top.get("capturedAt"), "$.capturedAt")
    pools = _unique([_pool(v, p) for v, p in top.items("pools")], "pool")
    pool_names = {pool.name for pool, _ in pools}
    nodes = _unique([(read_node(v, p, pool_names), p) for v, p in top.items("nodes")], "node")
    pods, affinity_users = _pods(top, _claims(top, region), {node.name for node, _ in nodes})
    limits = read_limits(top)
    policy = _policy(top, pool_names)
    managed = _managed(top, pools)
    backoffs = tuple(_backoff(v, p, region) for v, p in top.items("backoffs"))
    pdbs = _pdbs(top)
    overrides = _vm_sizes(top)

    # Everything is valid: only now build the catalog (it checks its overrides) and options.
    pool_values = tuple(pool for pool, _ in pools)
    node_values = tuple(node for node, _ in nodes)
    warnings = _warnings(pool_values, node_values, managed, affinity_users)
    catalog = load_catalog(overrides, path="$.vmSizes")
    options, option_warnings = build_options(
        region, pool_values, node_values, catalog, managed=managed
    )
    state = ClusterState(
        region=region,
        pools=pool_values,
        options=options,
        nodes=node_values,
        pods=pods,
        backoffs=backoffs,
        limits=limits,
        policy=policy,
        now=now,
        pdbs=pdbs,
    )
    return state, (*warnings, *option_warnings)


def _warnings(
    pools: tuple[AgentPool, ...], nodes: tuple[Node, ...], managed: tuple[str, ...],
    affinity_users: list[str],
) -> list[str]:
    warnings: list[str] = []
    if affinity_users:
        warnings.append(
            f"{len(affinity_users)} pod(s) use required podAffinity, which surge does not model;"
            f" it is ignored (first: {affinity_users[0]})"
        )
    registered = Counter(node.pool for node in nodes)
    for pool in pools:
        if registered[pool.name] > pool.count:
            warnings.append(
                f"pool {pool.name} has {registered[pool.name]} nodes but count {pool.count}"
            )
        if pool.enable_autoscaling and pool.name in managed:
            warnings.append(
                f"pool {pool.name} has enableAutoScaling=true: AKS refuses to scale it manually"
            )
    return warnings


def _unique(entries: list[tuple[Named, str]], what: str) -> list[tuple[Named, str]]:
    first: dict[str, str] = {}
    for value, path in entries:
        if value.name in first:
            reason = f"duplicate {what} name {value.name!r} (first at {first[value.name]})"
            raise ValidationError(child(path, "name"), reason)
        first[value.name] = path
    return entries


def _pool(value: object, path: str) -> tuple[AgentPool, str]:
    return read_pool(value, path), path


def read_pool(
    value: object,
    path: str,
    *,
    count_required: bool = True,
    labels_key: str = "nodeLabels",
    taints_key: str = "nodeTaints",
    zone: Callable[[object, str], str] | None = None,
) -> AgentPool:
    """One agent pool entry, as AKS describes it. Also the scenario files' reader
    (``simulator.settings``), which names labels and taints ``labels``/``taints``, lets
    ``count`` default to 0 and reads zones written as numbers (``zone``)."""
    renamed = {"nodeLabels": labels_key, "nodeTaints": taints_key}
    optional = tuple(renamed.get(f, f) for f in POOL_FIELDS)
    required: tuple[str, ...] = ("name", "vmSize")
    if count_required:
        required += ("count",)
    else:
        optional += ("count",)
    fields = Fields(value, path, required=required, optional=optional)
    name = fields.text("name")
    if _POOL_NAME.fullmatch(name) is None:
        rule = "1-12 lowercase letters and digits, starting with a letter"
        raise ValidationError(fields.at("name"), f"invalid pool name {name!r} ({rule})")
    count = fields.integer("count", 0, 0, MAX_POOL_NODES)
    min_count = fields.integer("minCount", 0, 0, MAX_POOL_NODES)
    max_count = fields.integer("maxCount", MAX_POOL_NODES, 0, MAX_POOL_NODES)
    for floor, floor_value in (("count", count), ("minCount", min_count)):
        if max_count < floor_value:
            reason = f"{max_count} is less than {floor} {floor_value}"
            raise ValidationError(fields.at("maxCount"), reason)
    zones: list[str] = []
    for item, at in fields.items("zones"):
        number = zone(item, at) if zone is not None else as_text(item, at)
        if _AKS_ZONE.fullmatch(number) is None:
            raise ValidationError(at, f"invalid zone {number!r} (AKS zone numbers: '1', '2', '3')")
        if number in zones:
            raise ValidationError(at, f"duplicate zone {number!r}")
        zones.append(number)
    version = fields.text("kubernetesVersion", "1.30")
    if _K8S_VERSION.fullmatch(version) is None:
        raise ValidationError(fields.at("kubernetesVersion"), f"invalid version {version!r}")
    os_type = fields.text("osType", "Linux")
    if os_type not in ("Linux", "Windows"):
        raise ValidationError(fields.at("osType"), f"{os_type!r} is not one of: Linux, Windows")
    return AgentPool(
        name=name,
        vm_size=fields.text("vmSize"),
        count=count,
        min_count=min_count,
        max_count=max_count,
        zones=tuple(zones),
        priority=_enum_field(fields, "priority", Priority, Priority.REGULAR),
        mode=_enum_field(fields, "mode", PoolMode, PoolMode.USER),
        labels=labels_of(fields.labels(labels_key)),
        taints=tuple(aks_taint(v, p) for v, p in fields.items(taints_key)),
        max_pods=fields.integer("maxPods", 30, 1, 250),
        kubernetes_version=version,
        os_type=os_type,
        enable_autoscaling=fields.boolean("enableAutoScaling", False),
    )


def _enum_field(fields: Fields, key: str, cls: type[Choice], default: Choice) -> Choice:
    return default if not fields.has(key) else as_enum(cls, fields.get(key), fields.at(key))


def aks_taint(value: object, path: str) -> Taint:
    """AKS ``nodeTaints`` string form: ``key=value:Effect`` or ``key:Effect``."""
    text = as_text(value, path)
    head, sep, effect = text.rpartition(":")
    if not sep:
        raise ValidationError(path, f"expected 'key=value:Effect', got {text!r}")
    key, _, taint_value = head.partition("=")
    qualified_name(key, path)
    return Taint(key, label_value(taint_value, path), as_enum(TaintEffect, effect, path))


def read_node(value: object, path: str, pools: Collection[str] | None = None) -> Node:
    """One ``nodes[]`` entry; ``pools`` None accepts any pool name (the kube adapter's case:
    a node names its pool in a label, whatever the cloud reports)."""
    fields = Fields(
        value, path, required=("name", "allocatable"),
        optional=("pool", "labels", "taints", "ready", "unschedulable", "annotations"),
    )
    pool = fields.text("pool") or None
    if pool is not None and pools is not None and pool not in pools:
        raise ValidationError(fields.at("pool"), f"unknown pool {pool!r}")
    allocatable = resources_of(fields.get("allocatable"), fields.at("allocatable"))
    reported = as_object(fields.get("allocatable"), fields.at("allocatable"))
    for axis in ("cpu", "memory", "pods"):
        if axis not in reported:
            raise ValidationError(child(fields.at("allocatable"), axis), "required")
    taints = []
    for item, at in fields.items("taints"):
        taint = Fields(item, at, required=("key", "effect"), optional=("value", "timeAdded"))
        if taint.has("timeAdded"):
            timestamp(taint.get("timeAdded"), taint.at("timeAdded"))
        taints.append(Taint(
            qualified_name(taint.get("key"), taint.at("key")),
            label_value(taint.text("value", nonempty=False), taint.at("value")),
            as_enum(TaintEffect, taint.get("effect"), taint.at("effect")),
        ))
    node = Node(
        name=fields.text("name"),
        pool=pool,
        labels=labels_of(fields.labels("labels")),
        taints=tuple(taints),
        allocatable=allocatable,
        ready=fields.boolean("ready", True),
        unschedulable=fields.boolean("unschedulable", False),
        annotations=(
            annotation_map(fields.get("annotations"), fields.at("annotations"))
            if fields.has("annotations") else ()
        ),
    )
    return node


def _zone_label(value: object, path: str, region: str) -> str:
    zone = as_text(value, path)
    prefix, _, number = zone.rpartition("-")
    if prefix != region or _AKS_ZONE.fullmatch(number) is None:
        raise ValidationError(path, f"expected a zone of {region} like '{region}-1', got {zone!r}")
    return zone


def read_claim(value: object, path: str, region: str) -> tuple[tuple[str, str], tuple[str, ...]]:
    """One ``persistentVolumeClaims[]`` entry -> ((namespace, name), zones). Also checks what
    ``control.capture`` writes."""
    fields = Fields(value, path, required=("name", "zones"), optional=("namespace",))
    key = (fields.text("namespace", "default"), fields.text("name"))
    zones = tuple(dict.fromkeys(_zone_label(v, p, region) for v, p in fields.items("zones")))
    if not zones:
        raise ValidationError(fields.at("zones"), "must not be empty")
    return key, zones


def _claims(top: Fields, region: str) -> dict[tuple[str, str], tuple[str, ...]]:
    claims: dict[tuple[str, str], tuple[str, ...]] = {}
    for item, at in top.items("persistentVolumeClaims"):
        key, zones = read_claim(item, at, region)
        if key in claims:
            raise ValidationError(child(at, "name"), f"duplicate claim {key[0]}/{key[1]}")
        claims[key] = zones
    return claims


def _pods(
    top: Fields, claim_zones: Mapping[tuple[str, str], tuple[str, ...]], nodes: set[str]
) -> tuple[tuple[Pod, ...], list[str]]:
    pods: list[Pod] = []
    affinity_users: list[str] = []
    by_key: dict[str, str] = {}
    by_uid: dict[str, str] = {}
    reader = PodReader(claim_zones)
    for item, at in top.items("pods"):
        pod, uses_pod_affinity = reader.read(item, at)
        if pod.key in by_key:
            reason = f"duplicate pod {pod.key} (first at {by_key[pod.key]})"
            raise ValidationError(child(at, "name"), reason)
        if pod.uid and pod.uid in by_uid:
            reason = f"duplicate uid {pod.uid!r} (first at {by_uid[pod.uid]})"
            raise ValidationError(child(at, "uid"), reason)
        if pod.node_name is not None and pod.node_name not in nodes:
            raise ValidationError(child(at, "nodeName"), f"unknown node {pod.node_name!r}")
        by_key[pod.key] = at
        by_uid[pod.uid] = at
        if uses_pod_affinity:
            affinity_users.append(pod.key)
        pods.append(pod)
    return tuple(pods), affinity_users


def read_limits(fields: Fields) -> ClusterLimits:
    """The ``limits`` entry of ``fields`` (maxNodes, maxCores, maxMemory); absent: none.
    Also read by scenario and configuration files."""
    if not fields.has("limits"):
        return ClusterLimits()
    limits = Fields(fields.get("limits"), fields.at("limits"),
                    optional=("maxNodes", "maxCores", "maxMemory"))
    memory = None
    if limits.has("maxMemory"):
        memory = quantity_units("memory", limits.get("maxMemory"), limits.at("maxMemory"))
    return ClusterLimits(
        max_nodes=None if not limits.has("maxNodes") else limits.integer("maxNodes", 0),
        max_cores=None if not limits.has("maxCores") else limits.integer("maxCores", 0),
        max_memory_bytes=memory,
    )


def _policy(top: Fields, pools: set[str]) -> Policy:
    if not top.has("policy"):
        return Policy()
    fields = Fields(top.get("policy"), "$.policy", optional=("priorityTiers", "maxNewNodes"))
    tiers = priority_tiers(fields, pools)
    max_new = None if not fields.has("maxNewNodes") else fields.integer("maxNewNodes", 0)
    if tiers is None:
        return Policy(max_new_nodes=max_new)
    return Policy(priority_tiers=tiers, max_new_nodes=max_new)


def priority_tiers(
    fields: Fields, pools: Collection[str] | None
) -> tuple[tuple[str, ...], ...] | None:
    """``priorityTiers``: non-empty lists of ``Spot``, ``Regular`` or pool names, each named
    once; None when absent. ``pools`` None accepts any pool name (a configuration that does
    not list its pools). Also read by scenario and configuration files."""
    if not fields.has("priorityTiers"):
        return None
    known = {p.value.lower() for p in Priority} | {p.lower() for p in pools or ()}
    tiers: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for tier, tier_path in fields.items("priorityTiers"):
        listed = as_list(tier, tier_path)
        if not listed:
            raise ValidationError(tier_path, "must not be empty")
        selectors: list[str] = []
        for item, at in listed:
            selector = as_text(item, at).strip()
            if pools is not None and selector.lower() not in known:
                raise ValidationError(at, f"{selector!r} is neither Spot, Regular nor a pool name")
            if selector.lower() in seen:
                raise ValidationError(at, f"{selector!r} already appears in a tier")
            seen.add(selector.lower())
            selectors.append(selector)
        tiers.append(tuple(selectors))
    return tuple(tiers)


def _managed(top: Fields, pools: list[tuple[AgentPool, str]]) -> tuple[str, ...]:
    return read_managed(top, [pool for pool, _ in pools])


def read_managed(fields: Fields, pools: Sequence[AgentPool]) -> tuple[str, ...]:
    """``managedPools``: known pool names, each once; absent: every pool but System pools.
    Also read by scenario files."""
    if not fields.has("managedPools"):
        return tuple(pool.name for pool in pools if pool.mode is not PoolMode.SYSTEM)
    names = {pool.name for pool in pools}
    managed: list[str] = []
    for item, at in fields.items("managedPools"):
        name = as_text(item, at)
        if name not in names:
            raise ValidationError(at, f"unknown pool {name!r}")
        if name in managed:
            raise ValidationError(at, f"duplicate pool {name!r}")
        managed.append(name)
    return tuple(managed)


def _backoff(value: object, path: str, region: str) -> Backoff:
    required = ("vmSize", "priority", "until", "reason")
    fields = Fields(value, path, required=required, optional=("zone",))
    zone = None
    if fields.has("zone"):
        zone = _zone_label(fields.get("zone"), fields.at("zone"), region)
    return Backoff(
        vm_size=fields.text("vmSize"),
        zone=zone,
        priority=as_enum(Priority, fields.get("priority"), fields.at("priority")),
        until=timestamp(fields.get("until"), fields.at("until")),
        reason=fields.text("reason"),
    )


def _pdbs(top: Fields) -> tuple[PodDisruptionBudget, ...]:
    budgets: list[PodDisruptionBudget] = []
    seen: dict[str, str] = {}
    for item, at in top.items("podDisruptionBudgets"):
        budget = pdb(Fields(item, at, required=("name",), optional=PDB_FIELDS))
        if budget.key in seen:
            reason = f"duplicate PodDisruptionBudget {budget.key} (first at {seen[budget.key]})"
            raise ValidationError(child(at, "name"), reason)
        seen[budget.key] = at
        budgets.append(budget)
    return tuple(budgets)


def _vm_sizes(top: Fields) -> dict[str, Mapping[str, object]] | None:
    """Per-size overrides; their fields are checked by ``load_catalog`` (same JSON paths)."""
    if not top.has("vmSizes"):
        return None
    sizes = as_object(top.get("vmSizes"), "$.vmSizes")
    overrides: dict[str, Mapping[str, object]] = {}
    for size, entry in sizes.items():
        at = child("$.vmSizes", size)
        as_text(size, at)
        overrides[size] = as_object(entry, at)
    return overrides
