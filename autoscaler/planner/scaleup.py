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
so a group's first-fit is one comparison per axis over the node table, then a walk over the
first nodes that fit (each takes at least one pod); the best class for each new node comes from
``choice.best_class`` without re-sorting; the nodes a class opens while its ranking cannot
change are computed in closed form (``packing.spread_picks``). Per group the kernel costs a
few dozen numpy calls, which is what the 10k-pod benchmark measures: keep it that way.
"""

from __future__ import annotations

import numpy as np

from autoscaler.model.plan import GroupOutcome, PoolTarget, ScaleUpPlan
from autoscaler.model.state import ClusterState
from autoscaler.planner.budget import Budget, Rooms
from autoscaler.planner.choice import Choice, best_class
from autoscaler.planner.encode import I64, UNLIMITED, Encoded, encode
from autoscaler.planner.nodetable import NodeTable
from autoscaler.planner.packing import BIG, first_fit, spread_picks
from autoscaler.planner.policy import name_ranks
from autoscaler.planner.reasons import explain


def plan_scale_up(state: ClusterState) -> ScaleUpPlan:
    return _Kernel(encode(state), state).run()


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
        self.rooms = Rooms(self.budget, enc.vcpus, enc.memory)
        self.current = {p.name: p.count for p in state.pools}
        self.zones = sorted(
            {z for z in enc.option_zone if z} | {n.zone for n in enc.nodes if n.zone}
        )
        index = {z: i for i, z in enumerate(self.zones)}
        self.option_zone = np.array([index.get(z or "", -1) for z in enc.option_zone], np.int64)
        node_zone = np.array([index.get(n.zone or "", -1) for n in enc.nodes], np.int64)
        # Axes some pending pod requests: the others never bind, the node table skips them.
        kept = np.flatnonzero((enc.req > 0).any(axis=0))
        self.req = enc.req[:, kept]  # (G, K)
        self.alloc = enc.alloc[:, kept]  # (O, K)
        self.table = NodeTable(enc, kept, self.option_zone, node_zone)
        self.zone_list = self.table.option_zone_list  # zone index of each option
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
        self.usable = enc.compat & (self.per_node > 0)
        # Axes each group requests (the only ones that can bind), shared by equal patterns.
        self.req_col = self.req[:, :, None]  # (G, K, 1): requests against free columns
        axis_bits = 1 << np.arange(len(kept), dtype=np.int64)
        self.pattern: list[int] = ((self.req > 0) @ axis_bits).tolist()
        self.need_of = {p: np.flatnonzero(p & axis_bits) for p in set(self.pattern)}
        self.largest = np.where(self.usable, self.per_node, 0).max(axis=1, initial=0)
        self.name_rank = name_ranks(enc.options)
        self.rank_list = self.name_rank.tolist()
        self.choice = Choice(
            self.usable, self.per_node, enc.alloc, enc.tier, enc.price, self.name_rank
        )

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

    def _candidates(self, g: int, want: int | None) -> tuple[I64, I64]:
        """Rows of the nodes group g may use that fit at least one of its pods, and how many
        each can take now; with ``want``, only the first ``want`` of them (first-fit never
        needs more: each takes at least one pod)."""
        enc, t = self.enc, self.table
        n = t.n
        # Comparing every row is cheaper than dividing: divide only the rows first-fit uses.
        ok = self.compat[g][t.cls[:n]] & (t.free[:, :n] >= self.req_col[g]).all(axis=0)
        rows = np.flatnonzero(ok)
        cap: I64 | None = None
        if self.capped[g]:
            cap = np.full(len(rows), enc.pernode_cap[g], dtype=np.int64)
            registered = rows < t.n_reg
            cap[registered] = enc.node_cap[g][rows[registered]]
            rows, cap = rows[cap > 0], cap[cap > 0]
        if want is not None:
            rows = rows[:want]
        need = self.need_of[self.pattern[g]]
        fit: I64 = (t.free.take(rows, axis=1)[need] // self.req_col[g][need]).min(
            axis=0, initial=BIG
        )
        if cap is not None:
            np.minimum(fit, cap[: len(rows)], out=fit)
        return rows, fit

    def _place_group(self, g: int) -> GroupOutcome:
        enc, t = self.enc, self.table
        group = enc.groups[g]
        remaining = int(enc.count[g])
        spread = enc.zone_spread[g]
        rows, fit = self._candidates(g, None if spread else remaining)
        quota: dict[int, int] | None = None
        rows_used: list[int] = []
        took: list[int] = []
        if spread is None:  # each candidate takes >= 1 pod: at most ``remaining`` of them
            for row, f in zip(rows.tolist(), fit.tolist(), strict=True):
                k = f if f < remaining else remaining
                rows_used.append(row)
                took.append(k)
                remaining -= k
                if not remaining:
                    break
        else:
            zones = t.zone[rows]
            # Pods of the group the known nodes of each zone take: where an odd pod goes.
            room = np.zeros(len(self.zones), dtype=np.int64)
            np.add.at(room, zones[zones >= 0], fit[zones >= 0])
            room_of = {z: int(room[i]) for i, z in enumerate(self.zones)}
            index = {z: i for i, z in enumerate(self.zones)}
            quota = {index[z]: q for z, q in spread.quotas(remaining, room_of).items()}
            take = np.zeros(len(rows), dtype=np.int64)
            for zi, q in quota.items():
                here = zones == zi
                take[here] = first_fit(fit[here], q)
                quota[zi] = q - int(take[here].sum())
            used = np.flatnonzero(take)
            rows_used, took = rows[used].tolist(), take[used].tolist()
            remaining -= sum(took)
        on_existing = on_upcoming = 0
        on_new: dict[int, int] = {}
        per_zone: dict[int, int] = {}
        if len(rows_used) == 1:  # the common case, in fewer numpy calls
            t.free[:, rows_used[0]] -= took[0] * self.req[g]
        elif rows_used:
            used_rows = np.array(rows_used, dtype=np.int64)
            t.free[:, used_rows] -= np.array(took, dtype=np.int64) * self.req_col[g]
        if rows_used:
            n_reg, n_fixed = t.n_reg, t.n_fixed
            new_rows: list[int] = []
            new_pods: list[int] = []
            for row, k in zip(rows_used, took, strict=True):
                zi = t.zone_list[row]
                if zi >= 0:
                    per_zone[zi] = per_zone.get(zi, 0) + k
                if row < n_reg:
                    on_existing += k
                elif row < n_fixed:
                    on_upcoming += k
                else:
                    o = t.opt_list[row]
                    new_rows.append(row)
                    new_pods.append(k)
                    on_new[o] = on_new.get(o, 0) + k
            if new_rows:
                t.record(new_rows, g, new_pods)
        if remaining:
            remaining = _Opener(self, g, quota, per_zone, on_new).run(remaining)
        reason = None
        if remaining:
            left = [self.zones[z] for z, q in sorted((quota or {}).items()) if q > 0]
            reason = explain(
                group,
                enc.options,
                np.flatnonzero(self.usable[g]).tolist(),
                self.budget.room,
                bool(enc.node_compat[g].any()),
                left,
                spread.max_skew if spread else 0,
            )
        return GroupOutcome(
            group=group.key,
            pods=int(enc.count[g]),
            on_existing=on_existing,
            on_upcoming=on_upcoming,
            on_new=tuple((enc.options[o].pool, k) for o, k in sorted(on_new.items())),
            unplaced=remaining,
            reason=reason,
            first_pod=group.pod.key,
        )


class _Opener:
    """Opens the new nodes of one group: each goes to the best class with room (``choice``),
    to the option of that class whose zone holds the fewest of the group's pods. The nodes
    are appended to the table once, at the end: the group never reuses its own new nodes
    (each takes as many of its pods as fit)."""

    def __init__(
        self,
        k: _Kernel,
        g: int,
        quota: dict[int, int] | None,
        per_zone: dict[int, int],
        on_new: dict[int, int],
    ) -> None:
        self.k, self.g, self.quota = k, g, quota
        self.per_zone, self.on_new = per_zone, on_new
        self.opts: list[int] = []  # option of each new node, in opening order
        self.pods: list[int] = []  # pods of the group on it

    def run(self, remaining: int) -> int:
        """Place up to ``remaining`` pods on new nodes; returns the pods still unplaced."""
        k, g = self.k, self.g
        if not k.choice.n_usable[g]:
            return remaining
        choice = k.choice
        lists = choice.scan_lists(g)
        usable = k.usable[g].tolist()
        size = k.per_node[g].tolist()
        largest = int(k.largest[g])
        while remaining > 0:
            members = best_class(
                lists, choice.members, usable, remaining, k.rooms.left, self.quota,
                k.zone_list, choice.kind_tier, choice.kind_price, k.rank_list,
            )  # fmt: skip
            if not members:
                break
            remaining = self._open_in(members, remaining, largest, size)
        if self.opts:
            pods = np.array(self.pods, dtype=np.int64)
            free = k.alloc[self.opts] - pods[:, None] * k.req[g]
            t = k.table
            t.record(t.append(self.opts, free), g, self.pods)
        return remaining

    def _count(self, o: int) -> int:
        zi = self.k.zone_list[o]
        return self.per_zone.get(zi, 0) if zi >= 0 else self.on_new.get(o, 0)

    def _open_in(self, active: list[int], remaining: int, largest: int, size: list[int]) -> int:
        """Open nodes of one class: a block while the ranking cannot change, else one node."""
        k = self.k
        enc, budget = k.enc, k.budget
        counts = [self._count(o) for o in active]
        first = active[0]
        if self.quota is None and remaining >= largest and _alike(k, active, size):
            step = size[first]
            total = min(
                (remaining - largest) // step + 1,  # nodes opened while >= largest pods are left
                budget.nodes_left,
                budget.new_left,
                budget.cores_left // max(1, int(enc.vcpus[first])),
                budget.memory_left // max(1, int(enc.memory[first])),
            )
            rooms = [k.rooms.left[o] for o in active]
            picks = np.array(active, dtype=np.int64)[spread_picks(counts, step, rooms, total)]
            return self._add(picks.tolist(), step, remaining)
        o = active[counts.index(min(counts))]  # fewest pods in its zone; ties: class order
        cap = size[o] if self.quota is None else min(size[o], self.quota[k.zone_list[o]])
        return self._add([o], cap, remaining)

    def _add(self, opts: list[int], per_node: int, remaining: int) -> int:
        """Open one node per entry of ``opts``, each taking up to ``per_node`` pods."""
        k, quota = self.k, self.quota
        nodes: dict[int, int] = {}
        for o in opts:
            pods = min(per_node, remaining)
            remaining -= pods
            zi = k.zone_list[o]
            self.opts.append(o)
            self.pods.append(pods)
            nodes[o] = nodes.get(o, 0) + 1
            self.on_new[o] = self.on_new.get(o, 0) + pods
            if zi >= 0:
                self.per_zone[zi] = self.per_zone.get(zi, 0) + pods
                if quota is not None:
                    quota[zi] -= pods
        for o, n in nodes.items():
            k.rooms.take(o, n)
        return remaining


def _alike(k: _Kernel, active: list[int], size: list[int]) -> bool:
    """Whether the closed form applies: same pods per node and VM size, one option per zone."""
    enc = k.enc
    first = active[0]
    if not all(
        size[o] == size[first]
        and enc.vcpus[o] == enc.vcpus[first]
        and enc.memory[o] == enc.memory[first]
        for o in active
    ):
        return False
    zones = [k.zone_list[o] for o in active]
    return len({z for z in zones if z >= 0}) == len([z for z in zones if z >= 0])
