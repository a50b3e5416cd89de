"""The snapshot document reader: a ``surge.io/v1alpha1`` ``ClusterSnapshot`` -> a ClusterState.

Callers: ``surge plan`` (``control.cli``), the digital twin (``simulator.twin.kube_serve``), tests
and benchmarks that replay captured clusters; ``control.capture`` writes documents with
``API_VERSION``/``KIND`` and checks its claims with ``read_claim``. The format is documented in
docs/snapshot.md and docs/snapshot.schema.json. Loading is strict: an unknown key, a wrong type,
a malformed quantity or timestamp, a bad enum value or a dangling reference is a
``ValidationError`` naming the JSON path (``$.pods[3].containers[0]...``). The whole document is
checked before the catalog is loaded and node options are built, so a bad snapshot never yields
partial output.

This module reads the document, its lists and their cross-references (duplicate names, unknown
pools and nodes), claims, backoffs, PodDisruptionBudget lists and ``vmSizes``, and builds the
state. Entries are read by the sibling readers: ``control.snapshot_pools`` (pools),
``control.snapshot_nodes`` (nodes), ``control.snapshot_pods`` (pods),
``control.snapshot_budgets`` (PodDisruptionBudgets) and ``control.snapshot_policy`` (limits,
policy, managed pools).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import TypeVar

from autoscaler.control.snapshot_budgets import PDB_FIELDS, pdb
from autoscaler.control.snapshot_fields import Fields, as_enum, as_object, as_text, child, timestamp
from autoscaler.control.snapshot_nodes import read_node
from autoscaler.control.snapshot_pods import PodReader
from autoscaler.control.snapshot_policy import read_limits, read_managed, read_policy
from autoscaler.control.snapshot_pools import AKS_ZONE, read_pool
from autoscaler.model.aks import load_catalog
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.node import Node
from autoscaler.model.plan import Backoff
from autoscaler.model.pod import Pod
from autoscaler.model.pool import AgentPool, Priority
from autoscaler.model.state import ClusterState
from autoscaler.planner.options import build_options

API_VERSION = "surge.io/v1alpha1"
KIND = "ClusterSnapshot"
_REGION = re.compile(r"[a-z][a-z0-9]*")
Named = TypeVar("Named", AgentPool, Node)


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
    policy = read_policy(top, pool_names)
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


def _zone_label(value: object, path: str, region: str) -> str:
    zone = as_text(value, path)
    prefix, _, number = zone.rpartition("-")
    if prefix != region or AKS_ZONE.fullmatch(number) is None:
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


def _managed(top: Fields, pools: list[tuple[AgentPool, str]]) -> tuple[str, ...]:
    return read_managed(top, [pool for pool, _ in pools])


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
