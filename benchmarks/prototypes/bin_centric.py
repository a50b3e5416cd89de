"""Prototype, not a planner: bin-centric packing, to measure what it would save.

Callers: people, ``python -m benchmarks.prototypes.bin_centric``. It scores one idea for
closing the cost gap to the LP bound (benchmarks/README.md, "Where the cost gap to the LP is")
on the benchmark's own instances, before anyone writes it twice (kernel and scalar reference)
with every constraint. What it leaves out makes it optimistic: zones (one node per VM size and
priority, zone spread and zone balance ignored), pool maxima and cluster limits, backoff, the
policy's spot-first tiers (it takes the cheapest mix, which is spot wherever pods allow).

The idea: instead of visiting groups and giving each the VM size best for itself alone, open
one node at a time and fill it with whatever pending pods match its remaining capacity best:
the pod with the largest dot product of its requests and the node's free capacity (both
scaled by the largest allocatable per axis), one pod at a time, until nothing fits. The size
of each new node is the one whose fill costs least per unit of *value* placed, a pod's value
being the price per pod of its own cheapest option. Registered nodes take pods first-fit first,
as in the planner. Slow (pure Python over groups per pod): about 10 s for the 10k instance.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from autoscaler.planner.encode import Encoded
from benchmarks.prototypes.scoring import parser, print_geomeans, scored

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def kinds(enc: Encoded) -> tuple[list[int], npt.NDArray[np.bool_]]:
    """One option per (VM size, tier), the cheapest; (G, K) whether a group may use a kind."""
    cheapest: dict[tuple[str, int], int] = {}
    for o, option in enumerate(enc.options):
        key = (option.vm_size, int(enc.tier[o]))
        if key not in cheapest or enc.price[o] < enc.price[cheapest[key]]:
            cheapest[key] = o
    keys = sorted(cheapest, key=cheapest.__getitem__)
    usable = np.zeros((len(enc.groups), len(keys)), dtype=bool)
    for k, key in enumerate(keys):
        members = [o for o, opt in enumerate(enc.options) if (opt.vm_size, int(enc.tier[o])) == key]
        usable[:, k] = enc.compat[:, members].any(axis=1)
    return [cheapest[k] for k in keys], usable


def registered_first(enc: Encoded, left: I64) -> None:
    """Pods that fit registered nodes go there first-fit, in visit order (as the planner)."""
    free = enc.node_free.copy()
    for g in enc.order:
        need = enc.req[g] > 0
        for n in range(len(enc.nodes)):
            if not left[g]:
                break
            if not enc.node_compat[g, n]:
                continue
            k = min(int((free[n][need] // enc.req[g][need]).min()), int(left[g]),
                    int(enc.node_cap[g, n]))
            if k > 0:
                free[n] -= k * enc.req[g]
                left[g] -= k


def pack(enc: Encoded, demand: I64) -> tuple[float, int]:
    """Cost per hour and count of the new nodes bin-centric packing opens for ``demand``."""
    reps, usable = kinds(enc)
    alloc = enc.alloc[reps].astype(np.float64)
    price = enc.price[reps]
    req = enc.req.astype(np.float64)
    left = demand.astype(np.int64).copy()
    registered_first(enc, left)
    with np.errstate(divide="ignore", invalid="ignore"):
        fits = np.where(req[:, None, :] > 0, alloc[None] / req[:, None, :], np.inf).min(axis=2)
    per_node = np.where(usable, np.minimum(np.floor(fits), enc.pernode_cap[:, None]), 0)
    solo = np.where(per_node > 0, price[None] / np.maximum(per_node, 1), np.inf).min(axis=1)
    solo[~np.isfinite(solo)] = 0.0  # groups no kind can hold: worth nothing, never placed
    scale = alloc.max(axis=0, initial=1.0)
    scale[scale == 0] = 1.0

    def fill(k: int) -> I64:
        free = alloc[k].copy()
        placed = np.zeros(len(left), dtype=np.int64)
        while True:
            ok = (usable[:, k] & (left > placed) & (placed < enc.pernode_cap)
                  & (req <= free).all(axis=1))
            if not ok.any():
                return placed
            g = int(np.argmax(np.where(ok, (req / scale) @ (free / scale), -1.0)))
            placed[g] += 1
            free -= req[g]

    cost, nodes = 0.0, 0
    while left.sum() > 0:
        best: tuple[float, int, I64] | None = None
        for k in range(len(reps)):
            if not (usable[left > 0, k] & (per_node[left > 0, k] > 0)).any():
                continue
            placed = fill(k)
            value = float(placed @ solo)
            if value > 0 and (best is None or price[k] / value < best[0]):
                best = (price[k] / value, k, placed)
        if best is None:
            break
        left -= best[2]
        cost += float(price[best[1]])
        nodes += 1
    return cost, nodes


def main(argv: Sequence[str]) -> int:
    args = parser("python -m benchmarks.prototypes.bin_centric", __doc__,
                  "1k,1k+nodes,10k").parse_args(argv)
    ratios: dict[str, list[float]] = {"ours": [], "bin-centric": []}
    for case in scored(args.sizes, args.seeds):
        cost, count = pack(case.enc, case.demand)
        ratios["ours"].append(case.ours / case.bound)
        ratios["bin-centric"].append(cost / case.bound)
        print(f"{case.label:18s}: ours/LP {case.ours / case.bound:.4f}  "
              f"bin-centric/LP {cost / case.bound:.4f} ({count} new nodes)", flush=True)
    print_geomeans(ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
