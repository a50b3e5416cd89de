"""Topology spread bookkeeping for the simulator's scheduler: domains and matching pods per slot.

Callers: ``simulator.scheduler.NodeTable`` only; it owns the node slots, tells this index when a
slot grows, gets a node, loses it or when a pod binds to or leaves it, and asks it which
topology domains may take one more pod (PodTopologySpread, DoNotSchedule).

Per topology key, every slot's domain id (-1: no node, or the node lacks the label); per
(namespace, selector), every slot's count of bound pods the selector matches. Both are built
on first use from the live slots and then kept up to date, so one filter costs a few array
operations over the nodes. Skew is ``constraints.spread_min`` / ``spread_headroom`` over the
domains of eligible nodes, as the planner computes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from autoscaler.model.constraints import selects, spread_headroom, spread_min
from autoscaler.model.labels import LabelSelector
from autoscaler.model.pod import Pod, TopologySpread

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]


class SlotView(Protocol):
    """What the index reads of a live node slot."""

    labels: dict[str, str]
    pods: dict[str, Pod]  # bound pods by key


class SpreadIndex:
    """Domain ids per topology key and matching-pod counts per selector, one entry per slot."""

    def __init__(self, live: Callable[[], Iterator[tuple[int, SlotView]]]) -> None:
        self._live = live  # the slots holding a node, lowest first
        self._cap = 0
        self._counts: dict[tuple[str, LabelSelector], I64] = {}
        self._domains: dict[str, tuple[I64, dict[str, int], list[str]]] = {}

    # -- slots -----------------------------------------------------------------------------

    def grow(self, cap: int) -> None:
        extra = cap - self._cap
        for selector, counts in self._counts.items():
            self._counts[selector] = np.concatenate([counts, np.zeros(extra, np.int64)])
        for topology_key, (ids, known, names) in self._domains.items():
            grown = np.concatenate([ids, np.full(extra, -1, np.int64)])
            self._domains[topology_key] = (grown, known, names)
        self._cap = cap

    def add(self, slot: int, labels: dict[str, str]) -> None:
        for key, (ids, known, names) in self._domains.items():
            ids[slot] = self._domain_id(labels.get(key), known, names)
        for counts in self._counts.values():
            counts[slot] = 0

    def remove(self, slot: int) -> None:
        for ids, _, _ in self._domains.values():
            ids[slot] = -1
        for counts in self._counts.values():
            counts[slot] = 0

    def pod_changed(self, slot: int, pod: Pod, sign: int) -> None:
        """``pod`` was bound to (+1) or left (-1) the node in ``slot``."""
        for (namespace, selector), counts in self._counts.items():
            if selects(pod, selector, namespace):
                counts[slot] += sign

    # -- lookups ---------------------------------------------------------------------------

    def _matching(self, namespace: str, selector: LabelSelector) -> I64:
        key = (namespace, selector)
        counts = self._counts.get(key)
        if counts is None:
            counts = np.zeros(self._cap, dtype=np.int64)
            for slot, held in self._live():
                counts[slot] = sum(selects(p, selector, namespace) for p in held.pods.values())
            self._counts[key] = counts
        return counts

    def domain_ids(self, key: str) -> tuple[I64, list[str]]:
        """Per slot, the id of its domain for ``key``; and the domain names by id."""
        found = self._domains.get(key)
        if found is None:
            ids = np.full(self._cap, -1, dtype=np.int64)
            known: dict[str, int] = {}
            names: list[str] = []
            for slot, held in self._live():
                ids[slot] = self._domain_id(held.labels.get(key), known, names)
            found = self._domains[key] = (ids, known, names)
        return found[0], found[2]

    @staticmethod
    def _domain_id(value: str | None, known: dict[str, int], names: list[str]) -> int:
        if value is None:
            return -1
        if value not in known:
            known[value] = len(names)
            names.append(value)
        return known[value]

    def allows(self, pod: Pod, spreads: Sequence[TopologySpread], eligible: BOOL) -> list[BOOL]:
        """Per DoNotSchedule constraint: which domain ids may take one more ``pod``, counting
        over the slots ``eligible`` marks (its length: the slots in use)."""
        n = len(eligible)
        out: list[BOOL] = []
        for spread in spreads:
            ids, names = self.domain_ids(spread.topology_key)
            counts = self._matching(pod.namespace, spread.label_selector)
            inside = eligible & (ids[:n] >= 0)
            present = ids[:n][inside]
            weights = counts[:n][inside]
            per_domain = np.bincount(present, weights=weights, minlength=len(names))
            domains = np.unique(present).tolist()
            by_name = {names[d]: int(per_domain[d]) for d in domains}
            floor = spread_min(by_name, by_name.keys(), spread.min_domains)
            # spread_headroom counts the incoming pod; one that its own selector does not
            # match adds nothing to the domain (kube's selfMatchNum = 0).
            own = 0 if selects(pod, spread.label_selector, pod.namespace) else 1
            allowed = np.zeros(len(names), dtype=bool)
            for d in domains:
                allowed[d] = spread_headroom(spread.max_skew, int(per_domain[d]) - own, floor) >= 1
            out.append(allowed)
        return out
