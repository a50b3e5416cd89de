"""Prototype, not a planner: ``static_pairing``'s two steps compiled with numba, to time them.

Callers: people deciding whether a compiled kernel is worth a dependency. numba is *not* a
dependency of this project: run it in a separate environment,

    python -m venv /tmp/nb && /tmp/nb/bin/pip install -e '.[bench]' numba
    /tmp/nb/bin/python -m benchmarks.prototypes.static_pairing_numba

The same candidates and the same greedy as ``static_pairing`` (every candidate, ties broken the
same way: ratio, then the group, then the order of generation), with one pruning that changes no
result: a candidate needing more pods of a group than the group has at the start can never open
a node, so it is not kept. The script checks that the cost equals the numpy version's and prints
the median time of each compiled step (after a first call that compiles them).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.prototypes.bin_centric import registered_first
from benchmarks.prototypes.scoring import parser, scored
from benchmarks.prototypes.static_pairing import I64, base_pack, pack, sizes

REPEAT = 7


def _kernels() -> tuple[Callable[..., Any], Callable[..., Any]]:
    try:
        import numba
    except ImportError:
        sys.exit("numba is not installed (it is not a dependency of surge): see this module's "
                 "docstring")

    @numba.njit
    def candidates(req, cap, alloc, price, usable, per_node, value, left, members, starts):
        n_groups, n_axes = req.shape
        n_max = 0
        for c in range(len(starts) - 1):
            size = starts[c + 1] - starts[c]
            n_max += (size * size // 4 + 1) * alloc.shape[0]
        ratio = np.empty(n_max)
        out = np.empty((n_max, 5), np.int64)  # g, h, size, a, b
        n = 0
        heavy_cpu = np.empty(n_groups, np.int64)
        heavy_mem = np.empty(n_groups, np.int64)
        for c in range(len(starts) - 1):
            m = members[starts[c]:starts[c + 1]]
            if len(m) < 2:
                continue
            for k in range(alloc.shape[0]):
                if not usable[m[0], k]:
                    continue
                room_c, room_m = float(alloc[k, 0]), float(alloc[k, 1])
                n_p = n_q = 0
                for g in m:
                    side = req[g, 0] * room_m - req[g, 1] * room_c
                    if side > 0:
                        heavy_cpu[n_p] = g
                        n_p += 1
                    elif side < 0:
                        heavy_mem[n_q] = g
                        n_q += 1
                for i in range(n_p):
                    g = heavy_cpu[i]
                    for j in range(n_q):
                        h = heavy_mem[j]
                        det = float(req[g, 0]) * req[h, 1] - float(req[g, 1]) * req[h, 0]
                        a = min(np.floor((room_c * req[h, 1] - room_m * req[h, 0]) / det),
                                float(per_node[g, k]))
                        if a < 1 or a > left[g]:
                            continue
                        b = cap[h]
                        for r in range(n_axes):
                            if req[h, r] > 0:
                                b = min(b, (alloc[k, r] - np.int64(a) * req[g, r]) // req[h, r])
                        if b < 1 or b > left[h]:
                            continue
                        worth = a * value[g] + b * value[h]
                        if price[k] / worth < 1.0:  # the numpy version's test, to the bit
                            ratio[n] = price[k] / worth
                            out[n, 0], out[n, 1], out[n, 2] = g, h, k
                            out[n, 3], out[n, 4] = np.int64(a), b
                            n += 1
        return ratio[:n], out[:n]

    @numba.njit
    def greedy(ratio, cand, left):
        by_group = np.argsort(cand[:, 0], kind="mergesort")
        order = by_group[np.argsort(ratio[by_group], kind="mergesort")]
        opened = np.zeros(len(ratio), np.int64)
        for i in order:
            g, h, a, b = cand[i, 0], cand[i, 1], cand[i, 3], cand[i, 4]
            n = min(left[g] // a, left[h] // b)
            if n > 0:
                left[g] -= n * a
                left[h] -= n * b
                opened[i] = n
        return order, opened

    return candidates, greedy


def main(argv: Sequence[str]) -> int:
    args = parser("python -m benchmarks.prototypes.static_pairing_numba", __doc__,
                  "1k,10k,10k+nodes").parse_args(argv)
    candidates, greedy = _kernels()
    for case in scored(args.sizes, args.seeds):
        enc, s = case.enc, sizes(case.enc)
        req = enc.req.astype(np.int64)
        left = case.demand.astype(np.int64).copy()
        registered_first(enc, left)
        classes: dict[bytes, list[int]] = {}
        for g in np.flatnonzero((left > 0) & (s.value > 0)).tolist():
            classes.setdefault(s.usable[g].tobytes(), []).append(g)
        members = np.array([g for m in classes.values() for g in m], dtype=np.int64)
        starts = np.cumsum([0] + [len(m) for m in classes.values()]).astype(np.int64)
        inputs = (req, enc.pernode_cap.astype(np.int64), s.alloc, s.price, s.usable, s.per_node,
                  s.value, left, members, starts)
        t_cand, t_greedy = [], []
        for _ in range(REPEAT + 1):  # the first call compiles
            t0 = time.perf_counter()
            ratio, cand = candidates(*inputs)
            t1 = time.perf_counter()
            rest: I64 = left.copy()
            order, opened = greedy(ratio, cand, rest)
            t_cand.append(t1 - t0)
            t_greedy.append(time.perf_counter() - t1)
        nodes: list[tuple[int, I64]] = []
        cost = 0.0
        for i in order[opened[order] > 0].tolist():
            g, h, k, a, b = cand[i].tolist()
            nodes += [(k, s.alloc[k] - a * req[g] - b * req[h])] * int(opened[i])
            cost += int(opened[i]) * float(s.price[k])
        cost += base_pack(enc, s, rest, nodes)
        numpy_cost = pack(enc, case.demand, None)[0]
        same = "same as numpy" if abs(cost - numpy_cost) < 1e-6 else f"numpy {numpy_cost:.4f}!"
        print(f"{case.label:18s}: static/LP {cost / case.bound:.4f} ({same}); {len(ratio)} "
              f"candidates; compiled scoring {statistics.median(t_cand[1:]) * 1e3:.2f} ms, "
              f"greedy {statistics.median(t_greedy[1:]) * 1e3:.2f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
