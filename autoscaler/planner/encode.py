"""Encode a ``ClusterState`` into the arrays the vectorized planner works on. Validate once here.

Callers: ``planner.scaleup`` (the kernel), the benchmarks (LP bound, CA-like baseline).

Every predicate is evaluated through ``autoscaler.model.constraints``, once per (group, option)
and once per (group, node class); the kernel then only does integer arithmetic. Shapes use
``n_groups`` (G), ``n_options`` (O), ``n_nodes`` (N, registered schedulable nodes) and
``n_resources`` (R); all resource arrays are int64 in planner units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autoscaler.model.constraints import (
    anti_affinity_blocks,
    effective_requests,
    insufficient,
    node_mismatch,
    selects,
)
from autoscaler.model.labels import HOSTNAME_LABEL
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod
from autoscaler.model.pool import NodeOption
from autoscaler.model.resources import Resources, axes_for
from autoscaler.model.state import ClusterState
from autoscaler.planner.groups import PodGroup, group_pending, placement_signature, visit_order
from autoscaler.planner.policy import (
    BoundIndex,
    ZoneSpread,
    backoff_reason,
    hostname_cap,
    option_tiers,
    zone_spread_of,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]
UNLIMITED = np.iinfo(np.int64).max // 4  # "no cap"; small enough that sums cannot overflow


@dataclass(frozen=True, slots=True)
class Encoded:
    axes: tuple[str, ...]
    groups: tuple[PodGroup, ...]
    order: tuple[int, ...]  # visit order of group indices
    req: I64  # (G, R) effective requests of one pod of the group
    count: I64  # (G,) pending pods per group
    options: tuple[NodeOption, ...]
    alloc: I64  # (O, R) allocatable of one new node
    price: F64  # (O,) USD per node-hour
    tier: I64  # (O,) policy tier, lower is preferred
    vcpus: I64  # (O,)
    memory: I64  # (O,) bytes of VM memory (for the cluster memory limit)
    headroom: I64  # (O,) max_count - count, >= 0
    backoff: tuple[str | None, ...]  # (O,) reason text when the option is in backoff
    upcoming: I64  # (O,) nodes requested but not registered
    compat: BOOL  # (G, O) pod fits an empty template node and passes every static predicate
    pernode_cap: I64  # (G,) pods of the group per new node (anti-affinity / hostname spread)
    zone_spread: tuple[ZoneSpread | None, ...]  # (G,) required zone spread, if any
    option_zone: tuple[str | None, ...]  # (O,)
    nodes: tuple[Node, ...]  # registered schedulable (not cordoned) nodes, by name
    node_free: I64  # (N, R) allocatable minus requests of bound pods, floored at 0
    node_compat: BOOL  # (G, N)
    node_cap: I64  # (G, N) pods of the group the node may still take (topology limits)
    node_option: I64  # (N,) option index of the node's pool, -1 if unmanaged
    nodes_left: int  # cluster and plan budgets for new nodes
    cores_left: int
    memory_left: int
    max_new_nodes: int


def resource_matrix(vectors: Sequence[Resources], axes: Sequence[str]) -> I64:
    index = {axis: r for r, axis in enumerate(axes)}
    rows: list[list[int]] = []
    for vector in vectors:
        row = [0] * len(axes)
        for name, units in vector.items_:
            r = index.get(name)
            if r is not None:
                row[r] = units
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(len(vectors), len(axes))


def static_mismatch(pod: Pod, requests: Resources, option: NodeOption) -> str | None:
    """Why a group can never use ``option`` (None if it can): predicates, then size."""
    template = option.template
    why = node_mismatch(pod, dict(template.labels), template.taints)
    return why or insufficient(requests, template.allocatable)


Usage = dict[str, tuple[Resources, list[Pod]]]
Requests = tuple[tuple[str, int], ...]


def bound_usage(state: ClusterState) -> Usage:
    """Requests and pods bound to each node, by node name.

    Effective requests are computed once per distinct container spec: replicas share equal
    specs (usually the very same objects, which makes the lookup a pointer comparison), so a
    cluster of 100k running pods costs a dictionary lookup per pod, and sums are kept as plain
    integers until the end.
    """
    by_value: dict[tuple[object, ...], Requests] = {}
    # First level by the containers' identity (ids are stable: ``state`` keeps every pod
    # alive), checked against the init containers and overhead it was seen with; the second
    # level, by value, catches equal specs built as separate objects.
    by_id: dict[int, tuple[object, object, Requests]] = {}
    # Pods per (node, requests): one counter step per pod; requests are multiplied in at the
    # end. Keyed by the requests' identity: every equal spec shares one tuple (``by_value``).
    counts: dict[tuple[str, int], int] = {}
    of_id: dict[int, Requests] = {}
    pods_on: dict[str, list[Pod]] = {}
    for pod in state.pods:
        node = pod.node_name
        if node is None:
            continue
        seen = by_id.get(id(pod.containers))
        if seen is not None and seen[0] is pod.init_containers and seen[1] is pod.overhead:
            requests = seen[2]
        else:
            spec = (pod.containers, pod.init_containers, pod.overhead)
            found = by_value.get(spec)
            if found is None:
                found = by_value[spec] = tuple(effective_requests(pod).items())
                of_id[id(found)] = found
            requests = found
            by_id[id(pod.containers)] = (pod.init_containers, pod.overhead, requests)
        key = (node, id(requests))
        counts[key] = counts.get(key, 0) + 1
        on = pods_on.get(node)
        if on is None:
            pods_on[node] = [pod]
        else:
            on.append(pod)
    sums: dict[str, dict[str, int]] = {node: {} for node in pods_on}
    for (node, rid), n in counts.items():
        total = sums[node]
        for axis, units in of_id[rid]:
            total[axis] = total.get(axis, 0) + n * units
    return {node: (Resources.of(total), pods_on[node]) for node, total in sums.items()}


def _node_compat(
    groups: Sequence[PodGroup], nodes: Sequence[Node], signatures: Sequence[tuple[object, ...]]
) -> BOOL:
    """compat[g, n], evaluated once per (placement signature, node class): nodes of a class
    share labels (hostname aside) and taints, groups of a signature share every field the
    predicates read. ``signatures[g]``: ``placement_signature`` of group g's pod."""
    out = np.zeros((len(groups), len(nodes)), dtype=bool)
    if not nodes:
        return out
    classes: dict[tuple[object, ...], list[int]] = {}
    for n, node in enumerate(nodes):
        signature = (tuple(kv for kv in node.labels if kv[0] != HOSTNAME_LABEL), node.taints)
        classes.setdefault(signature, []).append(n)
    members = [np.array(m, dtype=np.int64) for m in classes.values()]
    first = [nodes[int(m[0])] for m in members]
    memo: dict[tuple[object, ...], BOOL] = {}
    for g, group in enumerate(groups):
        key = signatures[g]
        row = memo.get(key)
        if row is None:
            pod = group.pod
            row = np.zeros(len(nodes), dtype=bool)
            if _reads_hostname(pod):  # the hostname label tells the nodes of a class apart
                for n, node in enumerate(nodes):
                    row[n] = node_mismatch(pod, dict(node.labels), node.taints) is None
            else:
                for m, node in zip(members, first, strict=True):
                    row[m] = node_mismatch(pod, dict(node.labels), node.taints) is None
            memo[key] = row
        out[g] = row
    return out


def _option_compat(
    groups: Sequence[PodGroup],
    options: Sequence[NodeOption],
    fits: BOOL,
    signatures: Sequence[tuple[object, ...]],
) -> BOOL:
    """compat[g, o]: the predicates of ``static_mismatch``, evaluated once per distinct
    placement signature (many groups share selectors and tolerations), and ``fits``
    (``fits_empty``)."""
    memo: dict[tuple[object, ...], list[bool]] = {}
    rows: list[list[bool]] = []
    for group, key in zip(groups, signatures, strict=True):
        row = memo.get(key)
        if row is None:
            row = memo[key] = [
                node_mismatch(group.pod, dict(o.template.labels), o.template.taints) is None
                for o in options
            ]
        rows.append(row)
    ok = np.array(rows, dtype=bool).reshape(len(groups), len(options))
    out: BOOL = ok & fits
    return out


def fits_empty(req: I64, alloc: I64) -> BOOL:
    """``(G, O)`` one pod of each group fits an empty node of each option on every axis (one
    comparison per axis: a reduction over the short axis dimension is slow in numpy)."""
    fits = np.ones((len(req), len(alloc)), dtype=bool)
    for r in range(req.shape[1]):
        fits &= req[:, r, None] <= alloc[None, :, r]
    return fits


def _reads_hostname(pod: Pod) -> bool:
    keys = {k for k, _ in pod.node_selector}
    keys.update(e.key for t in pod.required_affinity for e in t.match_expressions)
    return HOSTNAME_LABEL in keys


def encode(state: ClusterState, usage: Usage | None = None) -> Encoded:
    """``usage``: ``bound_usage(state)`` when the caller has it already (scale-down's survey)."""
    groups = group_pending(state.pods)
    usage = bound_usage(state) if usage is None else usage
    nodes = tuple(sorted((n for n in state.nodes if not n.unschedulable), key=lambda n: n.name))
    options = state.options
    extra: set[str] = set()
    for group in groups:
        extra.update(group.requests)
    axes = axes_for(extra)

    req = resource_matrix([g.requests for g in groups], axes)
    count = np.array([g.count for g in groups], dtype=np.int64)
    alloc = resource_matrix([o.template.allocatable for o in options], axes)
    pools = {p.name: p for p in state.pools}
    registered: dict[str, int] = {}
    for node in state.nodes:
        if node.pool is not None:
            registered[node.pool] = registered.get(node.pool, 0) + 1
    headroom = np.array(
        [max(0, pools[o.pool].max_count - pools[o.pool].count) for o in options], dtype=np.int64
    )
    upcoming = np.array(
        [max(0, pools[o.pool].count - registered.get(o.pool, 0)) for o in options],
        dtype=np.int64,
    )
    fits = fits_empty(req, alloc)  # read twice: compatibility, and pinned groups below
    signatures = [placement_signature(g.pod) for g in groups]  # for options and nodes alike
    compat = _option_compat(groups, options, fits, signatures)

    free = resource_matrix([usage.get(n.name, (Resources(), []))[0] for n in nodes], axes)
    node_free = np.maximum(resource_matrix([n.allocatable for n in nodes], axes) - free, 0)
    node_compat = _node_compat(groups, nodes, signatures)
    option_of_pool = {o.pool: i for i, o in enumerate(options)}
    node_option = np.array([option_of_pool.get(n.pool or "", -1) for n in nodes], dtype=np.int64)

    node_cap = np.full((len(groups), len(nodes)), UNLIMITED, dtype=np.int64)
    pernode_cap = np.full(len(groups), UNLIMITED, dtype=np.int64)
    zone_spread: list[ZoneSpread | None] = []
    node_pods = [usage.get(n.name, (Resources(), []))[1] for n in nodes]
    node_zones = [n.zone for n in nodes]
    bound = BoundIndex(zip(node_zones, node_pods, strict=True))
    guarded = [i for i, pods in enumerate(node_pods) if any(p.anti_affinity for p in pods)]
    for g, group in enumerate(groups):
        cap = hostname_cap(group)
        if cap is not None:
            pernode_cap[g] = cap.per_node
            node_cap[g, :] = cap.per_node
            for n, pods in enumerate(node_pods):
                if pods and cap.selector is not None:
                    taken = sum(selects(p, cap.selector, group.pod.namespace) for p in pods)
                    node_cap[g, n] = max(0, cap.per_node - taken)
        check = range(len(nodes)) if group.pod.anti_affinity else guarded
        for n in check:
            if anti_affinity_blocks(group.pod, node_pods[n]):
                node_cap[g, n] = 0
        zone_spread.append(
            zone_spread_of(group, node_zones, node_compat[g], bound, options, compat[g])
        )

    limits = state.limits
    vcpus = np.array([o.template.vcpus for o in options], dtype=np.int64)
    memory = np.array([o.template.memory_bytes for o in options], dtype=np.int64)
    used_nodes, used_cores, used_memory = _cluster_totals(state, options)
    scale = alloc.max(axis=0) if len(options) else np.zeros(len(axes), dtype=np.int64)
    tier = np.array(option_tiers(options, state.policy), dtype=np.int64)
    best = best_tiers(compat, tier)
    pinned = pinned_groups(fits, compat, tier, best)
    order = visit_order(groups, req.tolist(), scale.tolist(), best, pinned)
    return Encoded(
        axes=axes,
        groups=groups,
        order=tuple(order),
        req=req,
        count=count,
        options=options,
        alloc=alloc,
        price=np.array([o.price_per_hour for o in options], dtype=np.float64),
        tier=tier,
        vcpus=vcpus,
        memory=memory,
        headroom=headroom,
        backoff=tuple(backoff_reason(o, state.backoffs, state.now) for o in options),
        upcoming=upcoming,
        compat=compat,
        pernode_cap=pernode_cap,
        zone_spread=tuple(zone_spread),
        option_zone=tuple(o.zone for o in options),
        nodes=nodes,
        node_free=node_free,
        node_compat=node_compat,
        node_cap=node_cap,
        node_option=node_option,
        nodes_left=_left(limits.max_nodes, used_nodes),
        cores_left=_left(limits.max_cores, used_cores),
        memory_left=_left(limits.max_memory_bytes, used_memory),
        max_new_nodes=_left(state.policy.max_new_nodes, 0),
    )


def best_tiers(compat: BOOL, tier: I64) -> list[int]:
    """``(n_groups,)`` lowest policy tier among each group's compatible options."""
    none = int(tier.max(initial=0)) + 1
    best: list[int] = np.where(compat, tier[None, :], none).min(axis=1, initial=none).tolist()
    return best


def pinned_groups(fits: BOOL, compat: BOOL, tier: I64, best: Sequence[int]) -> list[bool]:
    """``(n_groups,)`` whether a predicate, not size, rules out an option of the group's best
    tier (``groups.visit_order`` places such groups first within their tier); ``fits`` is
    ``fits_empty``, ``compat`` the static compatibility, both ``(G, O)``."""
    in_best = tier[None, :] == np.array(best, dtype=np.int64)[:, None]
    pinned: list[bool] = (fits & ~compat & in_best).any(axis=1).tolist()
    return pinned


def _left(limit: int | None, used: int) -> int:
    return int(UNLIMITED) if limit is None else max(0, limit - used)


def _cluster_totals(state: ClusterState, options: Sequence[NodeOption]) -> tuple[int, int, int]:
    """Nodes, cores and memory the cluster has or has asked for (registered + upcoming).

    A pool with an option counts ``count`` VMs of its size; nodes of other pools count their
    allocatable, rounded up to whole cores (the VM size is not known for them).
    """
    by_pool = {o.pool: o for o in options}
    nodes = cores = memory = 0
    for pool in state.pools:
        option = by_pool.get(pool.name)
        if option is not None:
            nodes += pool.count
            cores += pool.count * option.template.vcpus
            memory += pool.count * option.template.memory_bytes
    for node in state.nodes:
        if node.pool in by_pool:
            continue
        nodes += 1
        cores += -(-node.allocatable.get_units("cpu") // 1000)
        memory += node.allocatable.get_units("memory")
    return nodes, cores, memory
