"""Prototype, not a planner: complementary pairs chosen once, for all groups at a time.

Callers: people, ``python -m benchmarks.prototypes.static_pairing`` (about 20 s). It scores the
third idea of benchmarks/README.md, "Where the cost gap to the LP is". ``pairing`` makes one
decision per new node block: its gain is real, but the decisions are sequential and cost
about 100 ms at 10k. This study asks whether the choice of partners can be made in bulk (numpy
over every pair of groups at once, then one greedy pass), so that its cost no longer grows with
the number of decisions. Omissions are those of ``pairing``: zones, zone spread, pool maxima,
cluster limits, backoff and policy tiers are ignored; one node per VM size and priority.

1. Registered nodes take pods first-fit, in visit order (as the planner).
2. Candidates: for every two groups ``g``, ``h`` of the same compatibility (the same VM sizes and
   priorities usable) and every size ``k`` both may use, where ``g`` is heavier in CPU than the
   node and ``h`` heavier in memory, the node holding ``a`` pods of ``g`` and ``b`` of ``h``:
   ``a`` where CPU and memory would both be full (rounded down; at most what a node of ``g``
   alone holds) and ``b`` as many of ``h`` as then fit on every axis. Its *ratio* is the node's
   price over its value (a pod's value is the price per pod of its own cheapest size, as in
   ``pairing``); below 1 it is cheaper than the two groups alone.
3. Candidates are taken by ascending ratio, greedily: each opens as many such nodes as both
   groups still have pods for. ``depth`` keeps only the best candidates of each group.
4. The pods left are packed by the planner's rule (``base``): in visit order, first-fit onto the
   new nodes so far, then new nodes of the group's cheapest size per pod it will hold.

It prints, per instance, ours/LP, base/LP, static/LP for each depth and the time the two
pairing steps took (candidates, greedy).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autoscaler.planner.encode import Encoded
from benchmarks.prototypes.bin_centric import kinds, registered_first
from benchmarks.prototypes.pairing import fits
from benchmarks.prototypes.scoring import parser, print_geomeans, scored

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]
DEPTHS = (None, 100, 30)  # None: every candidate


@dataclass(frozen=True, slots=True)
class Sizes:
    """The instance reduced to one option per (VM size, priority): ``alloc (K, R)``,
    ``price (K,)``, ``usable (G, K)``, ``per_node (G, K)`` pods of a group alone on a node,
    ``value (G,)`` the price per pod of the group's cheapest size (0: no size holds it)."""

    alloc: I64
    price: F64
    usable: BOOL
    per_node: I64
    value: F64


def sizes(enc: Encoded) -> Sizes:
    reps, usable = kinds(enc)
    alloc = enc.alloc[reps].astype(np.int64)
    price = enc.price[reps].astype(np.float64)
    cap = enc.pernode_cap.astype(np.int64)
    per_node = np.where(usable, np.minimum(fits(alloc, enc.req.astype(np.int64)).T,
                                           cap[:, None]), 0)
    value = np.where(per_node > 0, price[None] / np.maximum(per_node, 1), np.inf).min(axis=1)
    value[~np.isfinite(value)] = 0.0
    return Sizes(alloc, price, usable, per_node, value)


def candidates(enc: Encoded, s: Sizes, left: I64, depth: int | None) -> list[tuple[int, ...]]:
    """(g, h, k, a, b) by ascending ratio, only those below 1; at most ``depth`` per ``g``."""
    req = enc.req.astype(np.int64)
    cap = enc.pernode_cap.astype(np.int64)
    cpu, mem = req[:, 0].astype(np.float64), req[:, 1].astype(np.float64)
    classes: dict[bytes, list[int]] = {}
    for g in np.flatnonzero((left > 0) & (s.value > 0)).tolist():
        classes.setdefault(s.usable[g].tobytes(), []).append(g)
    parts: list[tuple[F64, I64, I64, I64, I64, I64]] = []
    for members in classes.values():
        m = np.array(members, dtype=np.int64)
        for k in np.flatnonzero(s.usable[m[0]]).tolist():
            room = s.alloc[k].astype(np.float64)
            heavier = cpu[m] * room[1] - mem[m] * room[0]  # > 0: heavier in CPU than the node
            p, q = m[heavier > 0], m[heavier < 0]
            if not len(p) or not len(q):
                continue
            g, h = p[:, None], q[None, :]
            det = cpu[g] * mem[h] - mem[g] * cpu[h]  # > 0 on every pair by the split above
            a = np.minimum(np.floor((room[0] * mem[h] - room[1] * cpu[h]) / det),
                           s.per_node[g, k]).astype(np.int64)
            gi, hi = np.nonzero(a >= 1)
            ga, hb, a1 = p[gi], q[hi], a[gi, hi]
            rest = s.alloc[k][None, :] - a1[:, None] * req[ga]
            b = np.minimum(pairwise_fits(rest, req[hb]), cap[hb])
            worth = a1 * s.value[ga] + b * s.value[hb]
            # A candidate needing more pods than a group has now can never open a node.
            ok = (b >= 1) & (a1 <= left[ga]) & (b <= left[hb])
            ratio = np.where(ok, s.price[k] / np.maximum(worth, 1e-12), np.inf)
            keep = np.flatnonzero(ratio < 1.0)
            parts.append((ratio[keep], ga[keep], hb[keep], np.full(len(keep), k, np.int64),
                          a1[keep], b[keep]))
    if not parts:
        return []
    ratio, ga, hb, ks, a1, b = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.lexsort((ratio, ga))  # by group, then ratio
    if depth is not None:
        start = np.searchsorted(ga[order], ga[order], side="left")
        order = order[np.arange(len(order)) - start < depth]
    order = order[np.argsort(ratio[order], kind="stable")]
    return list(zip(ga[order].tolist(), hb[order].tolist(), ks[order].tolist(),
                    a1[order].tolist(), b[order].tolist(), strict=True))


def pairwise_fits(rest: I64, req: I64) -> I64:
    """``(P,)``: how many of ``req[i]`` fit in ``rest[i]``."""
    big = np.int64(1 << 40)
    out: I64 = np.where(req > 0, rest // np.maximum(req, 1), big).min(axis=1)
    return np.maximum(out, 0)


def pack(enc: Encoded, demand: I64, depth: int | None, pairs: bool = True
         ) -> tuple[float, int, float, float]:
    """Cost per hour and new nodes of static pairing (``pairs=False``: ``base`` only), and the
    seconds of its two steps."""
    s = sizes(enc)
    req = enc.req.astype(np.int64)
    left = demand.astype(np.int64).copy()
    registered_first(enc, left)
    nodes: list[tuple[int, I64]] = []  # (size, free)
    cost = 0.0
    t0 = time.perf_counter()
    chosen = candidates(enc, s, left, depth) if pairs else []
    t1 = time.perf_counter()
    for g, h, k, a, b in chosen:
        n = min(int(left[g]) // a, int(left[h]) // b)
        if n > 0:
            left[g] -= n * a
            left[h] -= n * b
            nodes += [(k, s.alloc[k] - a * req[g] - b * req[h])] * n
            cost += n * float(s.price[k])
    t2 = time.perf_counter()
    cost += base_pack(enc, s, left, nodes)
    return cost, len(nodes), t1 - t0, t2 - t1


def base_pack(enc: Encoded, s: Sizes, left: I64, nodes: list[tuple[int, I64]]) -> float:
    req = enc.req.astype(np.int64)
    cap = enc.pernode_cap.astype(np.int64)
    cost = 0.0
    for g in enc.order:
        if not left[g] or s.value[g] == 0:
            continue
        need = req[g] > 0
        for i, (k, free) in enumerate(nodes):
            if not left[g]:
                break
            if s.usable[g, k]:
                n = min(int((free[need] // req[g][need]).min()), int(left[g]), int(cap[g]))
                if n > 0:
                    nodes[i] = (k, free - n * req[g])
                    left[g] -= n
        while left[g] > 0:
            top = np.minimum(s.per_node[g], left[g])
            k = int(np.argmin(np.where(top > 0, s.price / np.maximum(top, 1), np.inf)))
            left[g] -= top[k]
            nodes.append((k, s.alloc[k] - top[k] * req[g]))
            cost += float(s.price[k])
    return cost


def main(argv: Sequence[str]) -> int:
    args = parser("python -m benchmarks.prototypes.static_pairing", __doc__,
                  "1k,1k+nodes,10k,10k+nodes").parse_args(argv)
    names = ["ours", "base"] + [f"depth {d or 'all'}" for d in DEPTHS]
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for case in scored(args.sizes, args.seeds):
        line = f"{case.label:18s}: ours/LP {case.ours / case.bound:.4f}"
        ratios["ours"].append(case.ours / case.bound)
        base = pack(case.enc, case.demand, None, pairs=False)[0]
        ratios["base"].append(base / case.bound)
        line += f"  base {base / case.bound:.4f}"
        for depth in DEPTHS:
            cost, _, t_cand, t_greedy = pack(case.enc, case.demand, depth)
            ratios[f"depth {depth or 'all'}"].append(cost / case.bound)
            line += (f"  depth {depth or 'all'}: {cost / case.bound:.4f}"
                     f" ({t_cand * 1e3:.0f}+{t_greedy * 1e3:.0f} ms)")
        print(line, flush=True)
    print_geomeans(ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
