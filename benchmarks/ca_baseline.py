"""A Cluster-Autoscaler-like scale-up, re-implemented from its public description, as a baseline.

Callers: ``benchmarks.planner_bench`` (time and cost next to ``plan_scale_up``) and
``benchmarks.optimum`` (a feasible packing per option bounds the exact ILP's bin count).

What it models, from Cluster Autoscaler's documentation and its estimator and expander sources
(kubernetes/autoscaler, ``cluster-autoscaler/estimator/binpacking_estimator.go``,
``decreasing_pod_orderer.go``, ``expander/waste/waste.go``):

* Pods that fit free capacity of registered nodes are taken off first (CA's "filter out
  schedulable" step), first fit over nodes in name order.
* One *loop* = one node-group scale-up (CA's default, no ``--balance-similar-node-groups``). In
  each loop every node group (here: every node option) gets a binpacking estimate of the whole
  remaining backlog on its template node:
  - pod groups are sorted by cpu share + memory share of the template, largest first;
  - each group first goes first-fit onto nodes the estimate has already added, then next-fit
    onto fresh template nodes; a pod that does not fit an empty template is skipped;
  - the estimate stops adding nodes at the pool's headroom and at ``max_nodes_per_scaleup``
    (CA's ``--max-nodes-per-scaleup``, default 1000).
* The expander picks one estimate: the ``priority`` expander first (spot tiers before regular,
  the usual AKS spot-first configuration ``--expander=priority,least-waste``), then least waste
  (wasted cpu fraction + wasted memory fraction of the new nodes' *capacity*), then name (CA
  would pick randomly among ties; a name keeps runs reproducible).
* The chosen scale-up is applied, the pods it covers leave the backlog, and the next loop
  starts; loops end when no option can place a pod.

Generous simplifications (they can only make the baseline look better): required zone spread
uses the planner's per-zone quotas (``Encoded.zone_spread``) rather than CA's one-pod-at-a-time
behaviour, and nothing here costs the 10 s between CA loops. Pods of one equivalence group are
identical, so placing them by counts is the same as CA's pod-by-pod first fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autoscaler.model.resources import CPU, MEMORY
from autoscaler.planner.encode import UNLIMITED, Encoded

I64 = npt.NDArray[np.int64]

CA_MAX_NODES_PER_SCALEUP = 1000


@dataclass(frozen=True, slots=True)
class Estimate:
    """One option's binpacking estimate: nodes it would add and pods per group it would host."""

    option: int
    nodes: int
    placed: I64  # (G,) pods of each group on the new nodes
    used: I64  # (R,) total requests of those pods


@dataclass(frozen=True, slots=True)
class CaResult:
    """Outcome of the loop-by-loop scale-up. ``nodes`` lists (option name, new nodes)."""

    nodes: tuple[tuple[str, int], ...]
    placed: I64  # (G,) pods placed (existing + new nodes)
    on_existing: int  # on registered or upcoming nodes
    on_new: int
    unplaced: int
    cost_per_hour: float
    loops: int

    @property
    def new_nodes(self) -> int:
        return sum(n for _, n in self.nodes)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Per-instance facts the estimates reuse: each group's requested axes, pods per empty node
    of each option, and CA's pod order for each option's template."""

    axes: tuple[I64, ...]  # (G,) indices of the axes group g requests
    need: tuple[I64, ...]  # (G,) req[g, axes[g]]
    per_node: I64  # (G, O)
    orders: tuple[I64, ...]  # (O,) group indices, CA's decreasing order for that template


def pods_per_empty_node(enc: Encoded) -> I64:
    """(G, O) pods of a group one empty node of an option holds, per-node cap included."""
    req = enc.req[:, None, :]
    fits = np.where(req > 0, enc.alloc[None, :, :] // np.maximum(req, 1), UNLIMITED).min(axis=2)
    out: I64 = np.minimum(fits, enc.pernode_cap[:, None]).astype(np.int64)
    return out


def order_for(enc: Encoded, option: int) -> I64:
    """CA's decreasing pod order for one template: cpu share + memory share, ties by key."""
    axes = list(enc.axes)
    alloc = enc.alloc[option]
    score = np.zeros(len(enc.groups), dtype=np.float64)
    for name in (CPU, MEMORY):
        r = axes.index(name)
        if alloc[r] > 0:
            score += enc.req[:, r] / alloc[r]
    keys = sorted(range(len(enc.groups)), key=lambda g: (-score[g], enc.groups[g].key))
    return np.array(keys, dtype=np.int64)


def prepare(enc: Encoded) -> Prepared:
    axes = tuple(np.flatnonzero(row > 0) for row in enc.req)
    return Prepared(
        axes=axes,
        need=tuple(enc.req[g, a] for g, a in enumerate(axes)),
        per_node=pods_per_empty_node(enc) if len(enc.options) else np.zeros((len(axes), 0),
                                                                             dtype=np.int64),
        orders=tuple(order_for(enc, o) for o in range(len(enc.options))),
    )


def _first_fit(free: I64, req: I64, axes: I64, need: I64, cap: int | I64, want: int) -> int:
    """Place up to ``want`` identical pods first-fit over the rows of ``free`` (updated).

    Identical pods under first fit fill the first row that fits until it is full, then the next:
    the count per row is a clipped prefix sum, so one pass of array arithmetic does it.
    """
    if not len(free) or want <= 0:
        return 0
    fits = (free[:, axes] // need).min(axis=1) if len(axes) else np.full(len(free), UNLIMITED)
    if not isinstance(cap, int) or cap < UNLIMITED:
        np.minimum(fits, cap, out=fits)
    total = int(fits.sum())
    if total == 0:
        return 0
    if total > want:
        fits = np.clip(want - (np.cumsum(fits) - fits), 0, fits)
        total = want
    free -= fits[:, None] * req[None, :]
    return total


def estimate(enc: Encoded, option: int, want: I64, limit: int, prep: Prepared | None = None
             ) -> Estimate:
    """Binpack ``want[g]`` pods of each group onto at most ``limit`` new nodes of ``option``.

    ``prep`` is ``prepare(enc)``, passed in by callers that estimate many times.
    """
    prep = prep or prepare(enc)
    order = prep.orders[option]
    free_rows = np.zeros((limit, len(enc.axes)), dtype=np.int64)
    n = 0  # nodes added so far; free_rows[:n] is their free capacity
    placed = np.zeros(len(enc.groups), dtype=np.int64)
    alloc = enc.alloc[option]
    per_node = prep.per_node[:, option]
    todo = order[((want > 0) & enc.compat[:, option] & (per_node > 0))[order]]
    for g in todo.tolist():
        req = enc.req[g]
        cap = int(enc.pernode_cap[g])
        left = int(want[g])
        left -= _first_fit(free_rows[:n], req, prep.axes[g], prep.need[g], cap, left)
        fill = int(per_node[g])
        if left > 0 and n < limit:
            # Next fit on fresh templates: every new node but the last is filled to ``fill``.
            new = min(-(-left // fill), limit - n)
            counts = np.full(new, fill, dtype=np.int64)
            counts[-1] = min(fill, left - fill * (new - 1))
            free_rows[n : n + new] = alloc[None, :] - counts[:, None] * req[None, :]
            n += new
            left -= int(counts.sum())
        placed[g] = want[g] - left
    used = placed @ enc.req
    return Estimate(option, n, placed, used)


def waste_score(enc: Encoded, est: Estimate) -> float:
    """Least-waste score: unused fraction of the new nodes' cpu plus that of their memory."""
    axes = list(enc.axes)
    cap_cpu = float(enc.vcpus[est.option] * 1000 * est.nodes)
    cap_mem = float(enc.memory[est.option] * est.nodes)
    used_cpu = float(est.used[axes.index(CPU)])
    used_mem = float(est.used[axes.index(MEMORY)])
    return (cap_cpu - used_cpu) / cap_cpu + (cap_mem - used_mem) / cap_mem


Quotas = dict[int, dict[str, int]]  # group -> zone -> pods it may still place there


def _zone_quotas(enc: Encoded) -> Quotas:
    return {
        g: spread.quotas(int(enc.count[g]))
        for g, spread in enumerate(enc.zone_spread)
        if spread is not None
    }


def _place_on_existing(enc: Encoded, left: I64, quotas: Quotas) -> int:
    """CA's filter-out-schedulable step: first fit of pending pods on registered nodes, then on
    upcoming ones (CA keeps nodes it asked for in its snapshot as template nodes).

    Updates ``left`` and the zone quotas; returns the pods placed.
    """
    ups = np.repeat(np.arange(len(enc.options)), enc.upcoming)
    free = np.vstack([enc.node_free, enc.alloc[ups]]).astype(np.int64)
    caps = np.hstack([np.where(enc.node_compat, enc.node_cap, 0),
                      np.where(enc.compat[:, ups], enc.pernode_cap[:, None], 0)])
    zone_of = [n.zone or "" for n in enc.nodes] + [enc.option_zone[o] or "" for o in ups]
    zones = np.array(zone_of, dtype=object)
    total = 0
    for g in enc.order:
        if left[g] <= 0 or not free.shape[0]:
            continue
        req = enc.req[g]
        axes = np.flatnonzero(req > 0)
        cap = caps[g]
        quota = quotas.get(g)
        if quota is None:
            got = _first_fit(free, req, axes, req[axes], cap, int(left[g]))
            left[g] -= got
            total += got
            continue
        for zone, allowed in list(quota.items()):  # a zone-spread group: each zone its quota
            got = _fit_rows(free, zones == zone, req, axes, cap, min(allowed, int(left[g])))
            quota[zone] = allowed - got
            left[g] -= got
            total += got
    return total


def _fit_rows(free: I64, rows: npt.NDArray[np.bool_], req: I64, axes: I64, cap: I64,
              want: int) -> int:
    """First fit on the selected rows of ``free`` (updated in place); returns pods placed."""
    sub = free[rows]
    took = _first_fit(sub, req, axes, req[axes], cap[rows], want)
    free[rows] = sub
    return took


def run_ca(enc: Encoded, *, max_nodes_per_scaleup: int = CA_MAX_NODES_PER_SCALEUP,
           priority_expander: bool = True) -> CaResult:
    """Scale up loop by loop, one option per loop, until nothing more can be placed."""
    left = enc.count.copy()
    quotas = _zone_quotas(enc)
    on_existing = _place_on_existing(enc, left, quotas)
    headroom = enc.headroom.copy()
    headroom[[o for o, why in enumerate(enc.backoff) if why is not None]] = 0
    added = np.zeros(len(enc.options), dtype=np.int64)
    names = [o.name for o in enc.options]
    prep = prepare(enc)
    usable = enc.compat & (prep.per_node > 0)
    tiers = enc.tier if priority_expander else np.zeros(len(names), dtype=np.int64)
    # Result-identical shortcuts CA does not take: an option whose inputs did not change since
    # the last loop keeps its estimate, and a worse tier is skipped once a better one can help.
    cache: dict[int, tuple[bytes, Estimate]] = {}
    loops = 0
    while left.any():
        best: tuple[tuple[int, float, str], Estimate] | None = None
        for o in sorted(range(len(names)), key=lambda o: (int(tiers[o]), names[o])):
            limit = min(int(headroom[o]), max_nodes_per_scaleup)
            if limit <= 0 or (best is not None and tiers[o] > best[0][0]):
                continue
            want = _want_in_zone(left, quotas, enc.option_zone[o])
            key_in = want[usable[:, o]].tobytes() + limit.to_bytes(8, "little")
            hit = cache.get(o)
            if hit is not None and hit[0] == key_in:
                est = hit[1]
            else:
                est = estimate(enc, o, want, limit, prep)
                cache[o] = (key_in, est)
            if est.nodes == 0:
                continue
            key = (int(tiers[o]), waste_score(enc, est), names[o])
            if best is None or key < best[0]:
                best = (key, est)
        if best is None:
            break
        est = best[1]
        loops += 1
        added[est.option] += est.nodes
        headroom[est.option] -= est.nodes
        left -= est.placed
        _spend_quota(quotas, est.placed, enc.option_zone[est.option])
    nodes = tuple((names[o], int(added[o])) for o in range(len(names)) if added[o] > 0)
    on_new = int(enc.count.sum() - left.sum()) - on_existing
    return CaResult(
        nodes=nodes,
        placed=enc.count - left,
        on_existing=on_existing,
        on_new=on_new,
        unplaced=int(left.sum()),
        cost_per_hour=float((added * enc.price).sum()),
        loops=loops,
    )


def _want_in_zone(left: I64, quotas: Quotas, zone: str | None) -> I64:
    """Pods of each group an option in ``zone`` may take: zone-spread groups only their quota."""
    want = left.copy()
    for g, quota in quotas.items():
        want[g] = min(int(left[g]), quota.get(zone, 0)) if zone is not None else 0
    return want


def _spend_quota(quotas: Quotas, placed: I64, zone: str | None) -> None:
    for g, quota in quotas.items():
        if placed[g] > 0 and zone is not None:
            quota[zone] -= int(placed[g])
