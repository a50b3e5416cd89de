"""Closed forms of two greedy loops the planners' packing is made of.

Callers: ``planner.scaleup`` (first-fit onto known nodes, nodes opened in blocks) and
``planner.scaledown`` (first-fit of a node's pods onto the others). Pure integer arithmetic.
"""

from __future__ import annotations

import numpy as np

from autoscaler.planner.encode import I64

BIG = 1 << 40  # "fits any number": for a group without positive requests (never: pods=1)
SMALL = 32  # below this many items, plain Python beats numpy's per-call overhead


def first_fit(fit: I64, pods: int) -> I64:
    """Pods per node when ``pods`` identical pods go first-fit onto nodes that fit ``fit``."""
    before = np.cumsum(fit) - fit
    take: I64 = np.minimum(np.maximum(pods - before, 0), fit)
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
