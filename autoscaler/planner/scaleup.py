"""The vectorized scale-up planner: pending pods -> per-pool target counts, with reasons.

Callers: the control loop, ``surge plan``, the simulator, the benchmarks. Pure: same state,
same plan, byte for byte.

Semantics (the scalar ``planner.reference`` implements the same rules pod by pod):

1. Groups are visited in ``groups.visit_order``. A group's pods go first-fit over every node
   known to the plan, in order: registered nodes (by name), upcoming nodes (requested, not yet
   registered; template nodes, by option), then the nodes this plan opened, in opening order.
2. Pods left over open new nodes. The group's usable options are ranked in classes of equal
   (tier, price per placed pod); each new node goes to the first class with room, to the
   option of that class whose zone holds the fewest of the group's pods placed by this plan
   (ties: class order). A new node takes as many of the group's pods as fit.
3. A required zone spread gives each eligible zone a quota first (``ZoneSpread.quotas``);
   a pod then only goes to a node in a zone with quota left.

Identical pods placed one at a time first-fit fill node 1 as far as it goes, then node 2...:
so each group is placed with a cumulative sum over nodes, and the nodes a class opens are
computed in closed form (``spread_picks``) rather than one by one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autoscaler.model.plan import GroupOutcome, PoolTarget, ScaleUpPlan
from autoscaler.model.state import ClusterState
from autoscaler.planner.budget import Budget
from autoscaler.planner.encode import I64, UNLIMITED, Encoded, encode
from autoscaler.planner.nodetable import NodeTable
from autoscaler.planner.policy import name_ranks, rank_options, rank_row
from autoscaler.planner.reasons import explain

BIG = 1 << 40  # "fits any number": for a group without positive requests (never: pods=1)
SMALL = 32  # below this many items, plain Python beats numpy's per-call overhead


def plan_scale_up(state: ClusterState) -> ScaleUpPlan:
    return _Kernel(encode(state), state).run()


def first_fit(fit: I64, pods: int) -> I64:
    """Pods per node when ``pods`` identical pods go first-fit onto nodes that fit ``fit``."""
    before = np.cumsum(fit) - fit
    take: I64 = np.clip(pods - before, 0, fit)
    return take


def spread_picks(counts: list[int], step: int, caps: list[int], total: int) -> I64:
    """Which slot each of ``total`` nodes goes to, in opening order, when every node goes to
    the slot with the lowest count (ties: lowest index) and adds ``step`` to it.

    Closed form of that greedy loop: the k-th node of slot i is picked at value
    ``counts[i] + step * k``; take the ``total`` smallest (value, index) pairs within caps.
    """
    total = min(total, sum(caps))
    if len(counts) == 1:
        return np.zeros(total, dtype=np.int64)
    if total <= SMALL:  # the greedy loop itself is cheaper than the arrays below
        level = list(counts)
        taken_py = [0] * len(counts)
        picks: list[int] = []
        for _ in range(total):
            i = min(
                (j for j in range(len(level)) if taken_py[j] < caps[j]),
                key=lambda j: (level[j], j),
            )
            picks.append(i)
            level[i] += step
            taken_py[i] += 1
        return np.array(picks, dtype=np.int64)
    c = np.array(counts, dtype=np.int64)
    cap = np.array(caps, dtype=np.int64)

    def below(level: int) -> I64:  # picks with value < level, per slot
        out: I64 = np.clip(-((c - level) // step), 0, cap)
        return out

    low, high = int(c.min()), int(c.max()) + step * total + 1
    while low < high:  # the largest level with at most `total` picks below it
        mid = (low + high + 1) // 2
        if int(below(mid).sum()) <= total:
            low = mid
        else:
            high = mid - 1
    taken = below(low)
    rest = total - int(taken.sum())
    at_level = np.flatnonzero((c + step * taken == low) & (taken < cap))[:rest]
    taken[at_level] += 1
    slots = np.repeat(np.arange(len(c), dtype=np.int64), taken)
    values = c[slots] + step * (np.arange(len(slots)) - np.repeat(np.cumsum(taken) - taken, taken))
    order: I64 = slots[np.lexsort((slots, values))]
    return order


class _Kernel:
    def __init__(self, enc: Encoded, state: ClusterState) -> None:
        self.enc = enc
        pools = {p.name: p for p in state.pools}
        self.budget = Budget(
            options=enc.options,
            max_count=[pools[o.pool].max_count for o in enc.options],
            headroom=enc.headroom.tolist(),
            backoff=enc.backoff,
            nodes_left=enc.nodes_left,
            cores_left=enc.cores_left,
            memory_left=enc.memory_left,
            new_left=enc.max_new_nodes,
            limits=state.limits,
            policy=state.policy,
        )
        self.current = {p.name: p.count for p in state.pools}
        self.zones = sorted(
            {z for z in enc.option_zone if z} | {n.zone for n in enc.nodes if n.zone}
        )
        index = {z: i for i, z in enumerate(self.zones)}
        self.option_zone = np.array([index.get(z or "", -1) for z in enc.option_zone], np.int64)
        node_zone = np.array([index.get(n.zone or "", -1) for n in enc.nodes], np.int64)
        self.table = NodeTable(enc, self.option_zone, node_zone)
        # Pods of each group one new node of each option takes: (G, O), all groups at once.
        per_node = np.full((len(enc.groups), len(enc.options)), BIG, dtype=np.int64)
        for a in range(len(enc.axes)):
            need = enc.req[:, a : a + 1]
            fits = enc.alloc[None, :, a] // np.maximum(need, 1)
            np.minimum(per_node, np.where(need > 0, fits, BIG), out=per_node)
        self.per_node = np.minimum(per_node, enc.pernode_cap[:, None])
        # compat[g, c] for every row class c: options first, then registered nodes.
        self.compat = np.concatenate([enc.compat, enc.node_compat], axis=1)
        self.capped = (enc.pernode_cap < UNLIMITED) | (enc.node_cap < UNLIMITED).any(axis=1)
        usable = enc.compat & (self.per_node > 0)
        self.largest = np.where(usable, self.per_node, 0).max(axis=1, initial=0)
        self.name_rank = name_ranks(enc.options)
        self.tier_list = enc.tier.tolist()
        self.price_list = enc.price.tolist()
        self.rank_list = self.name_rank.tolist()
        self.rankings = rank_options(enc.compat, enc.tier, enc.price, self.per_node, self.name_rank)

    def run(self) -> ScaleUpPlan:
        enc = self.enc
        outcomes: dict[int, GroupOutcome] = {}
        for g in enc.order:
            outcomes[g] = self._place_group(g)
        added = self.table.added(len(enc.options))
        targets = tuple(
            PoolTarget(o.pool, self.current[o.pool], self.current[o.pool] + int(added[i]))
            for i, o in enumerate(enc.options)
        )
        cost = float(np.dot(added, enc.price)) if len(enc.options) else 0.0
        return ScaleUpPlan(
            pool_targets=targets,
            groups=tuple(outcomes[g] for g in range(len(enc.groups))),
            new_nodes=self.table.planned([grp.key for grp in enc.groups], enc.options),
            cost_per_hour=round(cost, 6),
        )

    def _candidates(self, g: int) -> tuple[I64, I64]:
        """Rows of the nodes group g may use and how many of its pods each can take now."""
        enc, t = self.enc, self.table
        rows = np.flatnonzero(t.live[: t.n])
        rows = rows[self.compat[g][t.cls[rows]]]
        req = enc.req[g]
        fit = np.full(len(rows), BIG, dtype=np.int64)
        for a in np.flatnonzero(req > 0).tolist():
            np.minimum(fit, t.free[rows, a] // req[a], out=fit)
        if self.capped[g]:
            cap = np.full(len(rows), enc.pernode_cap[g], dtype=np.int64)
            registered = rows < t.n_reg
            cap[registered] = enc.node_cap[g][rows[registered]]
            np.minimum(fit, cap, out=fit)
        return rows, fit

    def _place_group(self, g: int) -> GroupOutcome:
        enc, t = self.enc, self.table
        group = enc.groups[g]
        remaining = int(enc.count[g])
        rows, fit = self._candidates(g)
        spread = enc.zone_spread[g]
        quota: dict[int, int] | None = None
        if spread is None:
            take = first_fit(fit, remaining)
        else:
            index = {z: i for i, z in enumerate(self.zones)}
            quota = {index[z]: q for z, q in spread.quotas(remaining).items()}
            take = np.zeros(len(rows), dtype=np.int64)
            zones = t.zone[rows]
            for zi, q in quota.items():
                here = zones == zi
                take[here] = first_fit(fit[here], q)
                quota[zi] = q - int(take[here].sum())
        used = take > 0
        rows, take = rows[used], take[used]
        t.free[rows] -= take[:, None] * enc.req[g]
        t.refresh(rows)
        remaining -= int(take.sum())
        new = rows >= t.n_fixed
        if new.any():
            t.record(rows[new], g, take[new])
        on_new = _tally(t.opt[rows[new]], take[new])
        per_zone = _tally(t.zone[rows], take)
        if remaining:
            remaining = self._open(g, remaining, quota, per_zone, on_new)
        reason = None
        if remaining:
            left = [self.zones[z] for z, q in sorted((quota or {}).items()) if q > 0]
            reason = explain(
                group,
                enc.options,
                [o for c in self.rankings.classes(g) for o in c],
                self.budget.room,
                bool(enc.node_compat[g].any()),
                left,
                spread.max_skew if spread else 0,
            )
        return GroupOutcome(
            group=group.key,
            pods=int(enc.count[g]),
            on_existing=int(take[rows < t.n_reg].sum()),
            on_upcoming=int(take[(rows >= t.n_reg) & ~new].sum()),
            on_new=tuple((enc.options[o].pool, k) for o, k in sorted(on_new.items())),
            unplaced=remaining,
            reason=reason,
            first_pod=group.pod.key,
        )

    def _open(
        self,
        g: int,
        remaining: int,
        quota: dict[int, int] | None,
        per_zone: dict[int, int],
        on_new: dict[int, int],
    ) -> int:
        """Open new nodes for group g; returns the pods still unplaced.

        Each new node goes to the first class with room under the ranking by price per pod
        *it will hold*: ``min(pods per node, pods left)``. While at least ``largest`` pods are
        left that is the precomputed ranking and nodes open in blocks; near the end the
        ranking is recomputed per node, so a few pods do not open a large node.
        """
        budget = self.budget
        size = self.per_node[g].tolist()
        largest = int(self.largest[g])

        def count_of(o: int) -> int:
            zi = int(self.option_zone[o])
            return per_zone.get(zi, 0) if zi >= 0 else on_new.get(o, 0)

        while remaining > 0:
            if remaining >= largest:
                classes = self.rankings.classes(g)
            else:
                usable = self.rankings.order[g, : self.rankings.usable[g]].tolist()
                holds = {o: min(size[o], remaining) for o in usable}
                classes = rank_row(usable, self.tier_list, self.price_list, holds, self.rank_list)
            for members in classes:
                active: list[int] = []
                rooms: list[int] = []
                for o in members:
                    if quota is not None and quota.get(int(self.option_zone[o]), 0) <= 0:
                        continue
                    room, _ = budget.room(o)
                    if room > 0:
                        active.append(o)
                        rooms.append(room)
                if active:
                    remaining = self._open_in(
                        g,
                        active,
                        rooms,
                        remaining,
                        largest,
                        size,
                        count_of,
                        quota,
                        per_zone,
                        on_new,
                    )
                    break
            else:
                return remaining  # no class has room
        return remaining

    def _open_in(
        self,
        g: int,
        active: list[int],
        rooms: list[int],
        remaining: int,
        largest: int,
        size: list[int],
        count_of: Callable[[int], int],
        quota: dict[int, int] | None,
        per_zone: dict[int, int],
        on_new: dict[int, int],
    ) -> int:
        """Open nodes of one class: a block while the ranking cannot change, else one node."""
        enc, budget = self.enc, self.budget
        counts = [count_of(o) for o in active]
        first = active[0]
        alike = all(
            size[o] == size[first]
            and enc.vcpus[o] == enc.vcpus[first]
            and enc.memory[o] == enc.memory[first]
            for o in active
        )
        # Options sharing a zone share one count: the closed form assumes one count per slot.
        zones = [int(self.option_zone[o]) for o in active]
        alike = alike and len({z for z in zones if z >= 0}) == sum(z >= 0 for z in zones)
        if quota is None and alike and remaining >= largest:
            step = size[first]
            total = min(
                (remaining - largest) // step + 1,  # nodes opened while >= largest pods are left
                budget.nodes_left,
                budget.new_left,
                budget.cores_left // max(1, int(enc.vcpus[first])),
                budget.memory_left // max(1, int(enc.memory[first])),
            )
            picks = np.array(active, dtype=np.int64)[spread_picks(counts, step, rooms, total)]
            return self._add(g, picks, step, remaining, per_zone, on_new, None)
        best = min(range(len(active)), key=lambda i: (counts[i], i))
        o = active[best]
        cap = size[o] if quota is None else min(size[o], quota[int(self.option_zone[o])])
        return self._add(g, np.array([o], dtype=np.int64), cap, remaining, per_zone, on_new, quota)

    def _add(
        self,
        g: int,
        opts: I64,
        per_node: int,
        remaining: int,
        per_zone: dict[int, int],
        on_new: dict[int, int],
        quota: dict[int, int] | None,
    ) -> int:
        """Open one node per entry of ``opts``, each taking up to ``per_node`` pods of g."""
        enc, t = self.enc, self.table
        pods = np.clip(remaining - per_node * np.arange(len(opts)), 0, per_node).astype(np.int64)
        zones = self.option_zone[opts]
        rows = t.append(opts, enc.alloc[opts] - pods[:, None] * enc.req[g], zones)
        t.record(rows, g, pods)
        nodes: dict[int, int] = {}
        for o, zi, k in zip(opts.tolist(), zones.tolist(), pods.tolist(), strict=True):
            nodes[o] = nodes.get(o, 0) + 1
            on_new[o] = on_new.get(o, 0) + k
            if zi >= 0:
                per_zone[zi] = per_zone.get(zi, 0) + k
                if quota is not None:
                    quota[zi] -= k
        for o, n in nodes.items():
            self.budget.take(o, n)
        return remaining - int(pods.sum())


def _tally(keys: I64, weights: I64) -> dict[int, int]:
    """Sum of ``weights`` per non-negative key, as a dict of the non-zero sums."""
    if len(keys) <= SMALL:
        out: dict[int, int] = {}
        for k, w in zip(keys.tolist(), weights.tolist(), strict=True):
            if k >= 0 and w:
                out[k] = out.get(k, 0) + w
        return out
    keep = keys >= 0
    sums = np.bincount(keys[keep], weights=weights[keep])
    return {int(k): int(v) for k, v in zip(np.flatnonzero(sums), sums[sums != 0], strict=True)}
