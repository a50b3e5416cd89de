"""The vectorized scale-down planner: which nodes can go now, all their pods placed elsewhere.

Callers: ``control.scaledown`` (each loop pass: once for the unneeded set, once for the set to
remove now), ``surge`` tools and benchmarks. Pure: same state and parameters, same plan.

Policy (candidates, order, pool minimum, PodDisruptionBudgets, disruption budget) is
``planner.scaledown_rules``; this module is the packing. It reuses the scale-up encoding: the
movable pods of every candidate are added to the state as pending copies of themselves, so
``planner.encode`` groups them and evaluates every predicate (``model.constraints``) once per
(group, node), while the originals stay bound and the nodes' free capacity, hostname caps and
anti-affinity verdicts are those of the cluster as it is. Removing a candidate then places its
pods, in ``move_order``, on the nodes that stay, first-fit with the same cumulative
``packing.first_fit`` as scale-up, runs of identical pods at once. Moves are kept while the
plan goes on, so later candidates see the capacity earlier ones' pods took, and the caps and
anti-affinity those pods bring.

Topology: hostname anti-affinity and hostname spread are per-node caps as in scale-up; a pod
with a DoNotSchedule spread on any other key (zone, ...) only moves within its node's domain,
so every domain keeps its count and no skew changes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from autoscaler.model.constraints import anti_affinity_blocks, selects
from autoscaler.model.disruption import ScaleDownPlan
from autoscaler.model.labels import HOSTNAME_LABEL
from autoscaler.model.pod import Pod
from autoscaler.model.state import ClusterState
from autoscaler.planner.encode import BOOL, I64, UNLIMITED, encode
from autoscaler.planner.packing import BIG, first_fit
from autoscaler.planner.policy import hostname_cap
from autoscaler.planner.scaledown_rules import (
    Candidate,
    Moves,
    ScaleDownParams,
    Survey,
    move_order,
    select,
    survey,
)


def plan_scale_down(state: ClusterState, params: ScaleDownParams | None = None) -> ScaleDownPlan:
    params = params or ScaleDownParams()
    found = survey(state, params)
    if not found.candidates:
        return ScaleDownPlan((), tuple(sorted(found.kept.items())))
    return select(state, params, found, _ArrayPacker(state, found))


def domain_keys(pod: Pod) -> tuple[str, ...]:
    """Topology keys (other than hostname) of the pod's DoNotSchedule spread constraints."""
    return tuple(
        sorted(
            {
                s.topology_key
                for s in pod.topology_spread
                if s.when_unsatisfiable == "DoNotSchedule" and s.topology_key != HOSTNAME_LABEL
            }
        )
    )


class _ArrayPacker:
    def __init__(self, state: ClusterState, found: Survey) -> None:
        takers = set(found.destinations)
        movable = [p for c in found.candidates for p in c.movable]
        # Only nodes that may take pods are schedulable in the encoded state; the candidates'
        # pods appear twice: bound (capacity, caps, verdicts) and pending (groups, arrays).
        nodes = tuple(
            n if n.name in takers else replace(n, unschedulable=True) for n in state.nodes
        )
        bound = tuple(p for p in state.pods if p.node_name is not None)
        copies = tuple(replace(p, node_name=None) for p in movable)
        # The same bound pods as the survey's state: its bound usage is this state's too.
        enc = encode(replace(state, options=(), nodes=nodes, pods=bound + copies), found.usage)
        self.enc = enc
        row = {n.name: i for i, n in enumerate(enc.nodes)}
        self.row = row
        self.names = [n.name for n in enc.nodes]
        self.order = np.array([row[name] for name in found.destinations], dtype=np.int64)
        self.alive = np.ones(len(enc.nodes), dtype=bool)
        self.free = enc.node_free.copy()  # (N, R)
        self.cap = enc.node_cap.copy()  # (G, N)
        self.labels = [dict(n.labels) for n in enc.nodes]
        groups = enc.groups
        self.group_of: dict[str, int] = {}
        for g, group in enumerate(groups):
            for name in group.pods:
                self.group_of[f"{group.pod.namespace}/{name}"] = g
        n = len(groups)
        # counts[g, h]: a pod of h placed on a node uses one of g's per-node slots there;
        # clash[g, h]: it forbids g on that node (required anti-affinity, either direction).
        self.counts = np.zeros((n, n), dtype=bool)
        self.clash = np.zeros((n, n), dtype=bool)
        for g, group in enumerate(groups):
            cap = hostname_cap(group)
            for h, other in enumerate(groups):
                if cap is not None and cap.selector is not None:
                    self.counts[g, h] = selects(other.pod, cap.selector, group.pod.namespace)
                self.clash[g, h] = anti_affinity_blocks(group.pod, [other.pod])
        self.keys = [domain_keys(group.pod) for group in groups]

    def _runs(self, candidate: Candidate) -> list[tuple[int, list[str]]]:
        """Consecutive pods of one group in ``move_order``: (group, pod keys)."""
        runs: list[tuple[int, list[str]]] = []
        for pod in move_order(candidate.movable):
            g = self.group_of[pod.key]
            if runs and runs[-1][0] == g:
                runs[-1][1].append(pod.key)
            else:
                runs.append((g, [pod.key]))
        return runs

    def _domain(self, g: int, source: dict[str, str], rows: I64) -> BOOL:
        ok = np.ones(len(rows), dtype=bool)
        for key in self.keys[g]:
            want = source.get(key)
            ok &= np.array([self.labels[r].get(key) == want for r in rows.tolist()], dtype=bool)
        return ok

    def try_remove(self, candidate: Candidate) -> Moves | str:
        enc = self.enc
        me = self.row[candidate.node.name]
        source = self.labels[me]
        rows = self.order[self.alive[self.order] & (self.order != me)]
        free = self.free.copy()
        cap = self.cap.copy()
        moves: list[tuple[str, str]] = []
        for g, keys in self._runs(candidate):
            req = enc.req[g]
            fit = np.full(len(rows), BIG, dtype=np.int64)
            for a in np.flatnonzero(req > 0).tolist():
                np.minimum(fit, free[rows, a] // req[a], out=fit)
            np.minimum(fit, cap[g, rows], out=fit)
            usable = enc.node_compat[g, rows]
            if self.keys[g]:
                usable = usable & self._domain(g, source, rows)
            fit[~usable] = 0
            take = first_fit(fit, len(keys))
            placed = int(take.sum())
            if placed < len(keys):
                return f"no room for pod {keys[placed]}"
            used = take > 0
            dest, k = rows[used], take[used]
            targets = np.repeat(dest, k).tolist()
            moves += [(key, self.names[r]) for key, r in zip(keys, targets, strict=True)]
            free[dest] -= k[:, None] * req
            counted = np.flatnonzero(self.counts[:, g])
            if len(counted):
                reduced = cap[np.ix_(counted, dest)] - k[None, :]
                capped = cap[np.ix_(counted, dest)] < UNLIMITED
                cap[np.ix_(counted, dest)] = np.where(capped, np.maximum(reduced, 0), UNLIMITED)
            blocked = np.flatnonzero(self.clash[:, g])
            if len(blocked):
                cap[np.ix_(blocked, dest)] = 0
        self.free, self.cap = free, cap
        self.alive[me] = False
        return tuple(sorted(moves))
