"""Which options a group's next new node may go to: the best class with room, fast.

Callers: ``planner.scaleup`` only. The rule is ``policy.rank_row``'s, which the scalar
reference applies literally: rank the group's usable options by (tier, price per pod the new
node will hold, pool name), where a node holds ``min(pods per node, pods left)``; the first
class of equal (tier, price per pod) with an option that has room (and zone quota) wins.

Re-ranking every option for every node the kernel opens was its largest cost. Two facts make
it cheap:

* Options with the same tier, price and allocatable (one VM size and priority in several
  zones) hold the same pods of any group, so they always rank together: the scan runs over
  these *kinds*, not over options.
* ``price / min(size, left) == max(price / size, price / left)``. Kinds whose node holds all
  ``left`` pods cost ``price / left``: the best of them is the first with room in (tier, price)
  order. The others cost ``price / size``: the first with room in (tier, price / size) order,
  and that scan stops as soon as an entry cannot beat the best found.

Both orders are sorted once for every group at once. Ties are collected from both scans and
sorted by pool name: exactly the reference's class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autoscaler.planner.encode import BOOL, F64, I64

Lists = tuple[list[int], list[int], list[int], list[float], list[int]]


class Choice:
    """Per-group orders of option kinds, built once per plan; ``best_class`` per node."""

    def __init__(
        self, usable: BOOL, per_node: I64, alloc: I64, tier: I64, price: F64, name_rank: I64
    ) -> None:
        """``usable``, ``per_node``: ``(G, O)``; ``alloc`` ``(O, R)``; the rest ``(O,)``."""
        n_groups, n_options = usable.shape
        kinds: dict[tuple[object, ...], list[int]] = {}
        for o in np.argsort(name_rank, kind="stable").tolist():
            kinds.setdefault((int(tier[o]), float(price[o]), alloc[o].tobytes()), []).append(o)
        self.members = list(kinds.values())  # options of each kind, by pool name
        rep = np.array([m[0] for m in self.members], dtype=np.int64).reshape(-1)
        self.kind_tier: list[int] = tier[rep].tolist()
        self.kind_price: list[float] = price[rep].tolist()
        n_kinds = len(rep)
        kind_of = np.zeros(n_options, dtype=np.int64)
        for c, m in enumerate(self.members):
            kind_of[m] = c
        # (G, K): a kind is usable by a group when one of its options is.
        any_usable = np.zeros((n_groups, n_kinds), dtype=bool)
        if n_options:
            np.logical_or.at(any_usable.T, kind_of, usable.T)
        self.size = per_node[:, rep] if n_kinds else np.zeros((n_groups, 0), np.int64)
        big = np.iinfo(np.int64).max
        ktier = np.where(any_usable, tier[rep][None, :], big)
        kprice = np.broadcast_to(price[rep], (n_groups, n_kinds))
        per_pod = np.where(any_usable, kprice / np.maximum(self.size, 1), np.inf)
        self.by_price = np.lexsort((kprice, ktier), axis=-1) if n_kinds else self.size
        self.by_pod = np.lexsort((per_pod, ktier), axis=-1) if n_kinds else self.size
        self.pod_tier = np.take_along_axis(ktier, self.by_pod, axis=1)
        self.pod_key = np.take_along_axis(per_pod, self.by_pod, axis=1)
        self.n_usable = any_usable.sum(axis=1).tolist()

    def scan_lists(self, g: int) -> Lists:
        """Group g's usable kinds by (tier, price) and by (tier, price per pod), the tier and
        price per pod of the latter, and the pods per node of every kind."""
        n = self.n_usable[g]
        return (
            self.by_price[g, :n].tolist(),
            self.by_pod[g, :n].tolist(),
            self.pod_tier[g, :n].tolist(),
            self.pod_key[g, :n].tolist(),
            self.size[g].tolist(),
        )


def best_class(
    lists: Lists,
    members_of: Sequence[Sequence[int]],
    usable: Sequence[bool],
    left: int,
    rooms: Sequence[int],
    quota: dict[int, int] | None,
    zones: Sequence[int],
    kind_tier: Sequence[int],
    kind_price: Sequence[float],
    name_rank: Sequence[int],
) -> list[int]:
    """The options of the best class with room, in pool-name order; empty when none has room.

    ``lists``: ``Choice.scan_lists`` of the group; ``usable[o]``: the group may use option
    ``o``; ``rooms[o]``: nodes of ``o`` the budget allows now; ``quota``: pods each zone index
    may still take under a required zone spread (None: no spread); ``zones[o]``: the option's
    zone index, -1 when it has none (then it gets no quota). Keys are (tier, price per pod),
    compared as pairs; ``best_t is None`` until a kind with room is found.
    """
    by_price, by_pod, pod_tier, pod_key, size = lists

    def open_now(c: int) -> list[int]:
        return [
            o
            for o in members_of[c]
            if usable[o]
            and rooms[o] > 0
            and (quota is None or quota.get(zones[o], 0) > 0)
        ]

    best_t: int | None = None
    best_k = 0.0
    members: list[int] = []
    for c in by_price:  # kinds holding every pod left: price / left, by price
        if size[c] < left:
            continue
        t, key = kind_tier[c], kind_price[c] / left
        if best_t is not None and (t > best_t or (t == best_t and key > best_k)):
            break
        here = open_now(c)
        if not here:
            continue
        if best_t is None:
            best_t, best_k = t, key
        members += here
    for c, t, key in zip(by_pod, pod_tier, pod_key, strict=True):  # the others: price / size
        if best_t is not None and (t > best_t or (t == best_t and key > best_k)):
            break  # sorted: no later entry can reach the best
        if size[c] >= left:
            continue
        here = open_now(c)
        if not here:
            continue
        if best_t is None or t < best_t or key < best_k:
            best_t, best_k, members = t, key, here
        else:
            members += here
    members.sort(key=name_rank.__getitem__)
    return members
