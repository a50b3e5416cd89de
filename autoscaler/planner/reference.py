"""The scalar reference planner: the rules of ``planner.scaleup``, one pod at a time.

Callers: property tests (the vectorized planner must agree with it) and benchmarks (speed
baseline). Obviously correct and slow on purpose: no arrays, every predicate evaluated through
``autoscaler.model.constraints`` for every pod and node it considers. It shares only policy
with the kernel (grouping and visit order, option ranking, budgets, zone quotas, reason texts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoscaler.model.constraints import (
    anti_affinity_blocks,
    effective_requests,
    insufficient,
    node_mismatch,
    selects,
)
from autoscaler.model.labels import Labels
from autoscaler.model.node import Taint
from autoscaler.model.plan import GroupOutcome, PlannedNode, PoolTarget, ScaleUpPlan
from autoscaler.model.pod import Pod
from autoscaler.model.pool import NodeOption
from autoscaler.model.resources import Resources, axes_for
from autoscaler.model.state import ClusterState
from autoscaler.planner.budget import Budget
from autoscaler.planner.groups import PodGroup, group_pending, visit_order
from autoscaler.planner.policy import (
    BoundIndex,
    backoff_reason,
    hostname_cap,
    name_ranks,
    option_tiers,
    pods_per_node,
    rank_row,
    zone_spread_of,
)
from autoscaler.planner.reasons import explain

UNLIMITED = 1 << 60


@dataclass
class _Slot:
    """A node the plan can put pods on: registered, upcoming (template) or new (template)."""

    kind: str
    name: str
    labels: Labels
    taints: tuple[Taint, ...]
    free: dict[str, int]
    zone: str | None
    option: int  # -1 for registered nodes of unmanaged pools
    bound: list[Pod] = field(default_factory=list)
    placed: dict[int, int] = field(default_factory=dict)  # group index -> pods this plan


def plan_reference(state: ClusterState) -> ScaleUpPlan:
    options = state.options
    groups = group_pending(state.pods)
    extra: set[str] = set()
    for grp in groups:
        extra.update(grp.requests)
    axes = axes_for(extra)
    scale = [max((o.template.allocatable.get_units(a) for o in options), default=0) for a in axes]
    tiers = option_tiers(options, state.policy)
    reqs = [[g.requests.get_units(a) for a in axes] for g in groups]
    best = [
        min(
            (tiers[o] for o, opt in enumerate(options) if _static_ok(grp, opt)),
            default=max(tiers, default=0) + 1,
        )
        for grp in groups
    ]
    pinned = [
        any(
            tiers[o] == best[g]
            and insufficient(grp.requests, opt.template.allocatable) is None
            and not _static_ok(grp, opt)
            for o, opt in enumerate(options)
        )
        for g, grp in enumerate(groups)
    ]
    order = visit_order(groups, reqs, scale, best, pinned)

    slots = _registered_slots(state) + _upcoming_slots(state)
    n_fixed = len(slots)
    budget = _budget(state)
    prices = [o.price_per_hour for o in options]
    rank_list = name_ranks(options).tolist()
    outcomes: dict[int, GroupOutcome] = {}
    registered = [s for s in slots if s.kind == "registered"]

    for g in order:
        grp = groups[g]
        option_ok = [_static_ok(grp, o) for o in options]
        node_ok = [node_mismatch(grp.pod, dict(s.labels), s.taints) is None for s in registered]
        spread = zone_spread_of(
            grp,
            [s.zone for s in registered],
            node_ok,
            BoundIndex((s.zone, s.bound) for s in registered),
            options,
            option_ok,
        )
        cap = hostname_cap(grp)
        per_node = cap.per_node if cap else UNLIMITED
        quota = None
        if spread:
            quota = spread.quotas(grp.count, _room(grp, g, slots, cap, per_node, option_ok))
        ppn = [
            pods_per_node(_vec(grp.requests, axes), _vec(o.template.allocatable, axes), per_node)
            for o in options
        ]

        def ranked(left: int, ok: list[bool] = option_ok, fit: list[int] = ppn) -> list[list[int]]:
            """Options by price per pod a new node will hold, with ``left`` pods to place."""
            compatible = [o for o, yes in enumerate(ok) if yes]
            return rank_row(compatible, tiers, prices, [min(k, left) for k in fit], rank_list)

        placed = {"registered": 0, "upcoming": 0}
        on_new: dict[int, int] = {}
        per_zone: dict[str, int] = {}
        unplaced = 0
        for i in range(grp.count):
            slot = _first_fit(grp, g, slots, quota, cap, per_node, option_ok)
            if slot is None:
                classes = ranked(grp.count - i)
                slot = _open(g, classes, budget, quota, options, per_zone, on_new)
                if slot is not None:
                    slots.append(slot)
            if slot is None:
                unplaced += 1
                continue
            _put(slot, grp, g)
            if slot.kind == "new":
                on_new[slot.option] = on_new.get(slot.option, 0) + 1
            else:
                placed[slot.kind] += 1
            key = slot.zone if slot.zone else f"option:{slot.option}"
            per_zone[key] = per_zone.get(key, 0) + 1
            if quota is not None and slot.zone is not None:
                quota[slot.zone] -= 1
        reason = None
        if unplaced:
            reason = explain(
                grp,
                options,
                [o for c in ranked(grp.count) for o in c],
                budget.room,
                any(node_ok),
                [z for z, q in sorted((quota or {}).items()) if q > 0],
                spread.max_skew if spread else 0,
            )
        outcomes[g] = GroupOutcome(
            group=grp.key,
            pods=grp.count,
            on_existing=placed["registered"],
            on_upcoming=placed["upcoming"],
            on_new=tuple((options[o].pool, k) for o, k in sorted(on_new.items())),
            unplaced=unplaced,
            reason=reason,
            first_pod=grp.pod.key,
        )

    new = slots[n_fixed:]
    added = [sum(1 for s in new if s.option == o) for o in range(len(options))]
    pools = {p.name: p for p in state.pools}
    return ScaleUpPlan(
        pool_targets=tuple(
            PoolTarget(o.pool, pools[o.pool].count, pools[o.pool].count + added[i])
            for i, o in enumerate(options)
        ),
        groups=tuple(outcomes[g] for g in range(len(groups))),
        new_nodes=tuple(
            PlannedNode(
                options[s.option].pool, tuple((groups[g].key, k) for g, k in s.placed.items())
            )
            for s in new
        ),
        cost_per_hour=round(sum(added[i] * prices[i] for i in range(len(options))), 6),
    )


def _vec(resources: Resources, axes: tuple[str, ...]) -> list[int]:
    return [resources.get_units(a) for a in axes]


def _static_ok(grp: PodGroup, option: NodeOption) -> bool:
    template = option.template
    if node_mismatch(grp.pod, dict(template.labels), template.taints) is not None:
        return False
    return insufficient(grp.requests, template.allocatable) is None


def _first_fit(
    grp: PodGroup,
    g: int,
    slots: list[_Slot],
    quota: dict[str, int] | None,
    cap: object,
    per_node: int,
    option_ok: list[bool],
) -> _Slot | None:
    for slot in slots:
        if quota is not None and quota.get(slot.zone or "", 0) <= 0:
            continue
        if _cap_left(grp, g, slot, cap, per_node, option_ok) <= 0:
            continue
        if insufficient(grp.requests, Resources.of(slot.free)) is None:
            return slot
    return None


def _cap_left(
    grp: PodGroup, g: int, slot: _Slot, cap: object, per_node: int, option_ok: list[bool]
) -> int:
    """Pods of the group the slot's predicates and per-node cap still admit (not resources)."""
    if slot.kind == "registered":
        if node_mismatch(grp.pod, dict(slot.labels), slot.taints) is not None:
            return 0
        if anti_affinity_blocks(grp.pod, slot.bound):
            return 0
        taken = slot.placed.get(g, 0)
        if cap is not None:
            selector = cap.selector  # type: ignore[attr-defined]
            taken += sum(selects(p, selector, grp.pod.namespace) for p in slot.bound)
    else:
        if not option_ok[slot.option]:
            return 0
        taken = slot.placed.get(g, 0)
    return max(0, per_node - taken)


def _room(
    grp: PodGroup, g: int, slots: list[_Slot], cap: object, per_node: int, option_ok: list[bool]
) -> dict[str, int]:
    """Pods of the group each zone's slots take now, each slot on its own."""
    room: dict[str, int] = {}
    for slot in slots:
        if slot.zone is None:
            continue
        fit = _cap_left(grp, g, slot, cap, per_node, option_ok)
        for axis, units in grp.requests.items():
            if units > 0:
                fit = min(fit, max(0, slot.free.get(axis, 0)) // units)
        room[slot.zone] = room.get(slot.zone, 0) + fit
    return room


def _open(
    g: int,
    classes: list[list[int]],
    budget: Budget,
    quota: dict[str, int] | None,
    options: tuple[NodeOption, ...],
    per_zone: dict[str, int],
    on_new: dict[int, int],
) -> _Slot | None:
    for members in classes:
        candidates: list[int] = []
        for o in members:
            if quota is not None and quota.get(options[o].zone or "", 0) <= 0:
                continue
            if budget.room(o)[0] > 0:
                candidates.append(o)
        if not candidates:
            continue

        def count(o: int) -> int:
            zone = options[o].zone
            return per_zone.get(zone, 0) if zone else on_new.get(o, 0)

        best = min(range(len(candidates)), key=lambda i: (count(candidates[i]), i))
        o = candidates[best]
        budget.take(o, 1)
        return _template_slot("new", f"new-{g}", options[o], o)
    return None


def _put(slot: _Slot, grp: PodGroup, g: int) -> None:
    for axis, units in grp.requests.items():
        slot.free[axis] = slot.free.get(axis, 0) - units
    slot.placed[g] = slot.placed.get(g, 0) + 1


def _template_slot(kind: str, name: str, option: NodeOption, o: int) -> _Slot:
    t = option.template
    return _Slot(kind, name, t.labels, t.taints, dict(t.allocatable.items()), option.zone, o)


def _registered_slots(state: ClusterState) -> list[_Slot]:
    option_of = {o.pool: i for i, o in enumerate(state.options)}
    bound: dict[str, list[Pod]] = {}
    for pod in state.pods:
        if pod.node_name is not None:
            bound.setdefault(pod.node_name, []).append(pod)
    slots = []
    for node in sorted(state.nodes, key=lambda n: n.name):
        if node.unschedulable:
            continue
        pods = bound.get(node.name, [])
        used = Resources()
        for pod in pods:
            used = used + effective_requests(pod)
        free = {
            a: max(0, node.allocatable.get_units(a) - used.get_units(a))
            for a in set(node.allocatable) | set(used)
        }
        slots.append(
            _Slot(
                "registered",
                node.name,
                node.labels,
                node.taints,
                free,
                node.zone,
                option_of.get(node.pool or "", -1),
                bound=pods,
            )
        )
    return slots


def _upcoming_slots(state: ClusterState) -> list[_Slot]:
    registered: dict[str, int] = {}
    for node in state.nodes:
        if node.pool:
            registered[node.pool] = registered.get(node.pool, 0) + 1
    pools = {p.name: p for p in state.pools}
    slots = []
    for o, option in enumerate(state.options):
        missing = pools[option.pool].count - registered.get(option.pool, 0)
        slots += [
            _template_slot("upcoming", f"{option.pool}-upcoming-{i}", option, o)
            for i in range(max(0, missing))
        ]
    return slots


def _budget(state: ClusterState) -> Budget:
    # Limits are policy shared with the kernel; only their arithmetic is in Budget.
    from autoscaler.planner.encode import _cluster_totals, _left

    pools = {p.name: p for p in state.pools}
    used_nodes, used_cores, used_memory = _cluster_totals(state, state.options)
    return Budget(
        options=state.options,
        max_count=[pools[o.pool].max_count for o in state.options],
        headroom=[max(0, pools[o.pool].max_count - pools[o.pool].count) for o in state.options],
        backoff=[backoff_reason(o, state.backoffs, state.now) for o in state.options],
        nodes_left=_left(state.limits.max_nodes, used_nodes),
        cores_left=_left(state.limits.max_cores, used_cores),
        memory_left=_left(state.limits.max_memory_bytes, used_memory),
        new_left=_left(state.policy.max_new_nodes, 0),
        limits=state.limits,
        policy=state.policy,
    )
