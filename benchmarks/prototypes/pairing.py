"""Prototype, not a planner: complementary pairs on the new nodes a group opens.

Callers: people, ``python -m benchmarks.prototypes.pairing``. Like ``bin_centric`` it scores one
idea for the cost gap to the LP bound (benchmarks/README.md, "Where the cost gap to the LP is")
before anyone writes it twice, and with the same optimistic omissions: zones, zone spread, pool
maxima, cluster limits, backoff and policy tiers are ignored (one node per VM size and priority,
the cheapest mix wins). It keeps the planner's structure instead of replacing it, to see how much
of the bin-centric gain survives in a group-centric planner:

1. Groups are visited in the planner's visit order; registered nodes take pods first-fit first,
   then each group's pods go first-fit onto the new nodes opened so far (as in the planner).
2. Pods left over open new nodes. Each new node holds ``a`` pods of the group and ``b`` pods of
   one *partner*: a group with pods left and the same compatibility (the same VM sizes and
   priorities usable), chosen with ``a`` to maximise the node's *value*, where a pod's value is
   the price per pod of its own cheapest option. ``b = 0`` (no partner) is a candidate.
3. Rule ``value`` picks the node's VM size by price per value of its best pairing; rule ``own``
   keeps the planner's rule (the group's own price per pod) and only adds the partner.
4. The same (size, partner, a, b) repeats while both groups have pods for it: one *decision*
   opens that block of nodes. The decision count is what a vectorised planner would pay for.
5. Rule ``short`` is the ``value`` rule with the search cut to what a fast
   planner could afford: per size, partners are the 4 groups whose pods are worth most in the
   slack a node full of the group leaves, plus the 4 worth most in a node half full of it;
   splits ``a`` are the vertices of the two-axis fluid problem (where two axes are both full,
   rounded down and up) and the split at which the partner's pods all fit, plus the full node.

It prints, per instance, ours/LP, pairing/LP for the three rules, and the decisions and nodes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from autoscaler.planner.encode import Encoded
from benchmarks.prototypes.bin_centric import kinds, registered_first
from benchmarks.prototypes.scoring import parser, print_geomeans, scored

I64 = npt.NDArray[np.int64]
BIG = 1 << 40


def fits(free: I64, req: I64) -> I64:
    """``(..., G)``: how many of each request row ``req`` (G, R) fit in ``free`` (..., R)."""
    need = req > 0
    q = np.where(need, free[..., None, :] // np.maximum(req, 1), BIG)
    out: I64 = q.min(axis=-1)
    return out


def pack(enc: Encoded, demand: I64, rule: str) -> tuple[float, int, int]:
    """Cost per hour, new nodes and decisions of pairing packing for ``demand``."""
    reps, usable = kinds(enc)
    alloc = enc.alloc[reps].astype(np.int64)  # (K, R)
    price = enc.price[reps]
    req = enc.req.astype(np.int64)  # (G, R)
    cap = enc.pernode_cap.astype(np.int64)
    left = demand.astype(np.int64).copy()
    registered_first(enc, left)
    per_node = np.where(usable, np.minimum(fits(alloc, req).T, cap[:, None]), 0)  # (G, K)
    value = np.where(per_node > 0, price[None] / np.maximum(per_node, 1), np.inf).min(axis=1)
    value[~np.isfinite(value)] = 0.0  # no size holds the group: never placed
    row_of = {g: usable[g].tobytes() for g in range(len(left))}
    free: list[tuple[int, I64]] = []  # new nodes: (kind, free capacity)
    cost, decisions = 0.0, 0
    for g in enc.order:
        if value[g] == 0:
            continue
        need = req[g] > 0
        for i, (k, f) in enumerate(free):  # first-fit onto the new nodes opened so far
            if not left[g]:
                break
            if usable[g, k]:
                n = min(int((f[need] // req[g][need]).min()), int(left[g]), int(cap[g]))
                if n > 0:
                    free[i] = (k, f - n * req[g])
                    left[g] -= n
        partners = [h for h in range(len(left)) if h != g and row_of[h] == row_of[g]]
        while left[g] > 0:
            k, h, a, b = _decide(g, partners, alloc, price, req, cap, left, per_node, value,
                                 rule)  # fmt: skip
            decisions += 1
            blocks = left[g] // a if h < 0 else min(left[g] // a, left[h] // b)
            for _ in range(max(1, int(blocks))):
                pa = min(a, int(left[g]))
                pb = min(b, int(left[h])) if h >= 0 else 0
                left[g] -= pa
                taken = pa * req[g] + (pb * req[h] if h >= 0 else 0)
                if h >= 0:
                    left[h] -= pb
                free.append((k, alloc[k] - taken))
                cost += float(price[k])
                if left[g] <= 0:
                    break
    return cost, len(free), decisions


def _decide(g: int, partners: list[int], alloc: I64, price: npt.NDArray[np.float64], req: I64,
            cap: I64, left: I64, per_node: I64, value: npt.NDArray[np.float64], rule: str
            ) -> tuple[int, int, int, int]:
    """(kind, partner or -1, pods of g, pods of the partner) of the next new node."""
    best: tuple[float, int, int, int, int] | None = None  # (price per value, k, h, a, b)
    own: tuple[float, int] | None = None  # the group's own best (price per pod, kind)
    for k in np.flatnonzero(per_node[g] > 0).tolist():
        top = int(min(per_node[g, k], left[g]))
        choice = (float(price[k]) / (top * value[g]), k, -1, top, 0)
        hs = np.array([h for h in partners if left[h] > 0 and per_node[h, k] > 0], np.int64)
        if len(hs) and rule == "short":
            hs = _short_list(hs, alloc[k], top, req, g, left, value)
        if len(hs):
            a = np.arange(1, top + 1, dtype=np.int64)
            if rule == "short":
                a = _vertex_splits(alloc[k], req, g, hs, top, np.minimum(left[hs], cap[hs]))
            rest = alloc[k][None, :] - a[:, None] * req[g][None, :]  # (A, R)
            b = np.minimum(fits(rest, req[hs]), np.minimum(left[hs], cap[hs])[None])  # (A, H)
            worth = a[:, None] * value[g] + b * value[hs][None]
            i, j = np.unravel_index(int(np.argmax(worth)), worth.shape)
            if worth[i, j] > top * value[g]:
                choice = (float(price[k]) / worth[i, j], k, int(hs[j]), int(a[i]), int(b[i, j]))
        if rule == "own":
            key = (float(price[k]) / top, k)
            if own is None or key < own:
                own, best = key, choice
        elif best is None or choice < best:
            best = choice
    assert best is not None  # value[g] > 0: some kind holds the group
    return best[1], best[2], best[3], best[4]


def _short_list(hs: I64, alloc: I64, top: int, req: I64, g: int, left: I64,
                value: npt.NDArray[np.float64]) -> I64:
    """The partners worth most in a node full of g's pods, and in one half full of them."""
    keep: list[int] = []
    for a in (top, top // 2):
        worth = value[hs] * np.minimum(fits(alloc - a * req[g], req[hs]), left[hs])
        keep += np.argsort(-worth, kind="stable")[:4].tolist()
    out: I64 = hs[sorted(set(keep))]
    return out


def _vertex_splits(alloc: I64, req: I64, g: int, hs: I64, top: int, most: I64) -> I64:
    """Candidate pods of g per node: ``top``, where two axes fill at once, where the partner's
    ``most`` pods all fit."""
    splits = {top}
    rg = req[g].astype(np.float64)
    axes = range(len(rg))
    for h, m in zip(hs.tolist(), most.tolist(), strict=True):
        rh = req[h].astype(np.float64)
        for r in axes:
            for t in axes[r + 1:]:
                det = rg[r] * rh[t] - rg[t] * rh[r]
                if det:
                    x = (alloc[r] * rh[t] - alloc[t] * rh[r]) / det
                    if 1 <= x <= top:
                        splits |= {math.floor(x), min(top, math.ceil(x))}
        rest = alloc - m * req[h]
        if (rest >= 0).all():
            a = int(fits(rest, req[g : g + 1])[0])
            if 1 <= a <= top:
                splits.add(a)
    return np.array(sorted(splits), dtype=np.int64)


def main(argv: Sequence[str]) -> int:
    args = parser("python -m benchmarks.prototypes.pairing", __doc__,
                  "1k,1k+nodes,10k,10k+nodes").parse_args(argv)
    ratios: dict[str, list[float]] = {"ours": [], "value": [], "own": [], "short": []}
    for case in scored(args.sizes, args.seeds):
        ratios["ours"].append(case.ours / case.bound)
        line = f"{case.label:18s}: ours/LP {case.ours / case.bound:.4f}"
        for rule in ("value", "own", "short"):
            cost, count, decisions = pack(case.enc, case.demand, rule)
            ratios[rule].append(cost / case.bound)
            line += f"  {rule}: /LP {cost / case.bound:.4f} ({count} nodes, {decisions} decisions)"
        print(line, flush=True)
    print_geomeans(ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
