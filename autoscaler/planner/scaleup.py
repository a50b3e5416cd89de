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
so each group is placed with a cumulative sum over nodes, and new nodes are opened in blocks.
"""

from __future__ import annotations

import numpy as np

from autoscaler.model.plan import GroupOutcome, PlannedNode, PoolTarget, ScaleUpPlan
from autoscaler.model.state import ClusterState
from autoscaler.planner.budget import Budget
from autoscaler.planner.encode import I64, Encoded, encode
from autoscaler.planner.policy import ranked_classes
from autoscaler.planner.reasons import join, no_pool_fits, zone_blocked

REGISTERED, UPCOMING, NEW = 0, 1, 2


def plan_scale_up(state: ClusterState) -> ScaleUpPlan:
    return _Kernel(encode(state), state).run()


def first_fit(fit: I64, pods: int) -> I64:
    """Pods per node when ``pods`` identical pods go first-fit onto nodes that fit ``fit``."""
    before = np.cumsum(fit) - fit
    take: I64 = np.clip(pods - before, 0, fit)
    return take


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
        zone_index = {z: i for i, z in enumerate(self.zones)}
        self.option_zone = np.array(
            [zone_index.get(z, -1) if z else -1 for z in enc.option_zone], dtype=np.int64
        )
        n_reg = len(enc.nodes)
        upcoming_opts = np.repeat(np.arange(len(enc.options), dtype=np.int64), enc.upcoming)
        self.n_fixed = n_reg + len(upcoming_opts)
        capacity = max(16, 2 * self.n_fixed)
        n_res = len(enc.axes)
        self.free = np.zeros((capacity, n_res), dtype=np.int64)
        self.opt = np.full(capacity, -1, dtype=np.int64)
        self.zone = np.full(capacity, -1, dtype=np.int64)
        self.free[:n_reg] = enc.node_free
        self.opt[:n_reg] = enc.node_option
        self.zone[:n_reg] = [zone_index.get(n.zone, -1) if n.zone else -1 for n in enc.nodes]
        self.free[n_reg : self.n_fixed] = enc.alloc[upcoming_opts]
        self.opt[n_reg : self.n_fixed] = upcoming_opts
        self.zone[n_reg : self.n_fixed] = self.option_zone[upcoming_opts]
        self.n = self.n_fixed
        self.n_reg = n_reg
        self.contents: list[list[tuple[int, int]]] = []  # per new node: (group, pods)

    def _grow(self, extra: int) -> None:
        need = self.n + extra
        if need <= len(self.free):
            return
        size = max(need, 2 * len(self.free))
        self.free = np.concatenate(
            [self.free, np.zeros((size - len(self.free), self.free.shape[1]), np.int64)]
        )
        self.opt = np.concatenate([self.opt, np.full(size - len(self.opt), -1, np.int64)])
        self.zone = np.concatenate([self.zone, np.full(size - len(self.zone), -1, np.int64)])

    def _fit(self, g: int) -> I64:
        """Pods of group g each known node can take now (0 where incompatible)."""
        enc, n, n_reg = self.enc, self.n, self.n_reg
        req = enc.req[g]
        axes = np.flatnonzero(req > 0)
        fit = (self.free[:n, axes] // req[axes]).min(axis=1) if len(axes) else np.full(n, 1 << 40)
        ok = np.empty(n, dtype=bool)
        ok[:n_reg] = enc.node_compat[g]
        ok[n_reg:] = enc.compat[g][self.opt[n_reg:n]]
        cap = np.empty(n, dtype=np.int64)
        cap[:n_reg] = enc.node_cap[g]
        cap[n_reg:] = enc.pernode_cap[g]
        return np.where(ok, np.minimum(fit, cap), 0).astype(np.int64)

    def run(self) -> ScaleUpPlan:
        enc = self.enc
        outcomes: dict[int, GroupOutcome] = {}
        for g in enc.order:
            outcomes[g] = self._place_group(g)
        added = np.bincount(self.opt[self.n_fixed : self.n], minlength=len(enc.options))
        targets = tuple(
            PoolTarget(o.pool, self.current[o.pool], self.current[o.pool] + int(added[i]))
            for i, o in enumerate(enc.options)
        )
        keys = [grp.key for grp in enc.groups]
        new_nodes = tuple(
            PlannedNode(
                enc.options[int(self.opt[self.n_fixed + i])].pool,
                tuple((keys[g], k) for g, k in content),
            )
            for i, content in enumerate(self.contents)
        )
        cost = float(np.dot(added, enc.price)) if len(enc.options) else 0.0
        return ScaleUpPlan(
            pool_targets=targets,
            groups=tuple(outcomes[g] for g in range(len(enc.groups))),
            new_nodes=new_nodes,
            cost_per_hour=round(cost, 6),
        )

    def _place_group(self, g: int) -> GroupOutcome:
        enc = self.enc
        group = enc.groups[g]
        remaining = int(enc.count[g])
        fit = self._fit(g)
        spread = enc.zone_spread[g]
        quota: dict[int, int] | None = None
        if spread is None:
            take = first_fit(fit, remaining)
        else:
            zone_index = {z: i for i, z in enumerate(self.zones)}
            quota = {zone_index[z]: q for z, q in spread.quotas(remaining).items()}
            take = np.zeros(self.n, dtype=np.int64)
            for zi, q in quota.items():
                in_zone = self.zone[: self.n] == zi
                take[in_zone] = first_fit(fit[in_zone], q)
                quota[zi] = q - int(take[in_zone].sum())
        placed = np.flatnonzero(take)
        self.free[placed] -= take[placed, None] * enc.req[g]
        remaining -= int(take.sum())
        on_new: dict[int, int] = {}
        for i in placed[placed >= self.n_fixed]:
            self.contents[i - self.n_fixed].append((g, int(take[i])))
            o = int(self.opt[i])
            on_new[o] = on_new.get(o, 0) + int(take[i])
        counts = np.bincount(
            self.zone[placed][self.zone[placed] >= 0],
            weights=take[placed][self.zone[placed] >= 0],
            minlength=len(self.zones),
        ).astype(np.int64)
        per_zone = {z: int(c) for z, c in enumerate(counts) if c}
        blockers: list[str] = []
        if remaining:
            remaining = self._open(g, remaining, quota, per_zone, on_new, blockers)
        reason = None
        if remaining:
            if quota:
                blockers += [
                    zone_blocked(self.zones[z], spread.max_skew)  # type: ignore[union-attr]
                    for z, left in sorted(quota.items())
                    if left > 0
                ]
            if not enc.compat[g].any():
                reason = no_pool_fits(group, enc.options)
                if enc.node_compat[g].any():
                    reason = "existing nodes full; " + reason
            else:
                reason = join(blockers, "no capacity")
        return GroupOutcome(
            group=group.key,
            pods=int(enc.count[g]),
            on_existing=int(take[: self.n_reg].sum()),
            on_upcoming=int(take[self.n_reg : self.n_fixed].sum()),
            on_new=tuple((enc.options[o].pool, k) for o, k in sorted(on_new.items())),
            unplaced=remaining,
            reason=reason,
        )

    def _open(
        self,
        g: int,
        remaining: int,
        quota: dict[int, int] | None,
        per_zone: dict[int, int],
        on_new: dict[int, int],
        blockers: list[str],
    ) -> int:
        """Open new nodes for group g; returns the pods still unplaced."""
        enc = self.enc
        req = enc.req[g]
        axes = np.flatnonzero(req > 0)
        if len(axes):
            ppn = (enc.alloc[:, axes] // req[axes]).min(axis=1)
        else:
            ppn = np.full(len(enc.options), 1 << 40, dtype=np.int64)
        ppn = np.minimum(ppn, enc.pernode_cap[g]).tolist()
        names = [o.pool for o in enc.options]
        classes = ranked_classes(
            enc.compat[g].tolist(), enc.tier.tolist(), enc.price.tolist(), ppn, names
        )

        def balance_key(o: int) -> tuple[str, int]:
            zi = int(self.option_zone[o])
            return ("z", zi) if zi >= 0 else ("o", o)

        def count_of(o: int) -> int:
            zi = int(self.option_zone[o])
            return per_zone.get(zi, 0) if zi >= 0 else on_new.get(o, 0)

        for members in classes:
            while remaining > 0:
                active: list[tuple[int, int]] = []
                for o in members:
                    room, why = self.budget.room(o)
                    if quota is not None and quota.get(int(self.option_zone[o]), 0) <= 0:
                        continue
                    if room > 0:
                        active.append((o, room))
                    elif why:
                        blockers.append(why)
                if not active:
                    break
                counts = [count_of(o) for o, _ in active]
                same_size = len({ppn[o] for o, _ in active}) == 1
                distinct = len({balance_key(o) for o, _ in active}) == len(active)
                if quota is None and len(active) == 1:
                    o, room = active[0]
                    nodes = min(room, -(-remaining // ppn[o]))
                    remaining = self._add(g, [o] * nodes, ppn[o], remaining, per_zone, on_new)
                    continue
                if quota is None and same_size and distinct and len(set(counts)) == 1:
                    size = ppn[active[0][0]]
                    width = len(active)
                    rounds = min(
                        remaining // size // width,
                        min(room for _, room in active),
                        self.budget.nodes_left // width,
                        self.budget.new_left // width,
                        self.budget.cores_left // max(1, sum(enc.vcpus[o] for o, _ in active)),
                        self.budget.memory_left // max(1, sum(enc.memory[o] for o, _ in active)),
                    )
                    if rounds > 0:
                        order = [o for o, _ in active] * int(rounds)
                        remaining = self._add(g, order, size, remaining, per_zone, on_new)
                        continue
                best = min(range(len(active)), key=lambda i: (counts[i], i))
                o = active[best][0]
                cap = ppn[o]
                if quota is not None:
                    cap = min(cap, quota[int(self.option_zone[o])])
                remaining = self._add(g, [o], cap, remaining, per_zone, on_new, quota)
            if remaining == 0:
                break
        return remaining

    def _add(
        self,
        g: int,
        options: list[int],
        per_node: int,
        remaining: int,
        per_zone: dict[int, int],
        on_new: dict[int, int],
        quota: dict[int, int] | None = None,
    ) -> int:
        """Open one node per entry of ``options``, each taking up to ``per_node`` pods of g."""
        enc = self.enc
        count = len(options)
        self._grow(count)
        opts = np.array(options, dtype=np.int64)
        pods = np.clip(remaining - per_node * np.arange(count), 0, per_node)
        lo, hi = self.n, self.n + count
        self.free[lo:hi] = enc.alloc[opts] - pods[:, None] * enc.req[g]
        self.opt[lo:hi] = opts
        self.zone[lo:hi] = self.option_zone[opts]
        self.n = hi
        for o, k in zip(options, pods.tolist(), strict=True):
            self.contents.append([(g, k)])
            on_new[o] = on_new.get(o, 0) + k
            zi = int(self.option_zone[o])
            if zi >= 0:
                per_zone[zi] = per_zone.get(zi, 0) + k
                if quota is not None:
                    quota[zi] -= k
        for o in set(options):
            self.budget.take(o, options.count(o))
        return remaining - int(pods.sum())
