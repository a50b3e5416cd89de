"""The simulator's kube-scheduler: registered nodes as arrays, and the node one pending pod gets.

Callers: ``simulator.cluster.SimCluster`` (it owns the table, the pods and their lifecycles) and
``simulator.scheduling_queue.SchedulingQueue`` (the pass order: it registers groups of pending
pods, places them and marks the groups that failed blocked).
Topology spread's domains and matching-pod counts are kept by ``simulator.spread.SpreadIndex``.

Filters (kube-scheduler plugin in brackets), every predicate from ``autoscaler.model.constraints``
so that the simulator refuses exactly what the planner believes is refused: Ready and not
cordoned; ``node_mismatch`` [NodeAffinity, TaintToleration, VolumeZone, PodTopologySpread's key
check]; ``insufficient(effective_requests, free)`` [NodeResourcesFit] (an equivalent vectorised
compare narrows the candidates, ``insufficient`` confirms the node chosen);
``anti_affinity_blocks`` [InterPodAffinity, hostname terms]; topology spread DoNotSchedule for
any key [PodTopologySpread]: pods ``selects`` counts per domain over eligible nodes, then
``spread_min`` / ``spread_headroom``. Eligible nodes are registered ones, Ready or not, passing
the pod's selector and required affinity with taints ignored (kube's defaults
``nodeAffinityPolicy: Honor``, ``nodeTaintsPolicy: Ignore``): ``node_mismatch`` without taints.

Score: "MostAllocated" bin-packing, what an autoscaled cluster wants (nodes empty out and can go):
the sum over cpu and memory of (requested + pod) / allocatable, highest first, ties by node name.
kube's default is LeastAllocated with integer 0-100 scores and random tie-breaks; exact float
fractions (IEEE division is correctly rounded) and the name tie-break keep runs reproducible.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from autoscaler.model.constraints import (
    anti_affinity_blocks,
    effective_requests,
    insufficient,
    node_mismatch,
)
from autoscaler.model.labels import HOSTNAME_LABEL
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod, TopologySpread
from autoscaler.model.resources import BASE_AXES, CPU, MEMORY, Resources
from autoscaler.planner.groups import placement_signature
from simulator.spread import BOOL, I64, SpreadIndex

_SCORED = [BASE_AXES.index(CPU), BASE_AXES.index(MEMORY)]  # axes the score reads


@dataclass(slots=True)
class Need:
    """What every pod of one group of identical pending pods asks of a node."""

    ident: int
    pod: Pod  # representative: scheduling-relevant fields equal those of every member
    requests: Resources
    signature: tuple[object, ...]  # constraints.node_mismatch reads only these fields
    spreads: tuple[TopologySpread, ...]  # DoNotSchedule constraints
    hostname_terms: bool  # required anti-affinity on kubernetes.io/hostname


def need_of(ident: int, pod: Pod) -> Need:
    spreads = tuple(s for s in pod.topology_spread if s.when_unsatisfiable == "DoNotSchedule")
    terms = any(t.topology_key == HOSTNAME_LABEL for t in pod.anti_affinity)
    return Need(ident, pod, effective_requests(pod), placement_signature(pod), spreads, terms)


@dataclass(slots=True)
class _Slot:
    node: Node
    labels: dict[str, str]
    pods: dict[str, Pod] = field(default_factory=dict)  # bound pods by key
    version: int = 0  # changes whenever the node's pod set changes (cache key)


class NodeTable:
    """Registered nodes in reusable slots; per-slot int64 vectors of allocatable and free.

    Slots hold one node each; a removed node's slot is reused (lowest first), so arrays stay as
    large as the most nodes alive at once. Static predicate verdicts are cached per
    (placement signature, node class), matching-pod counts per (namespace, selector) are kept
    up to date on every bind, so one placement costs a few array operations over the nodes.
    """

    def __init__(self) -> None:
        self.axes: list[str] = list(BASE_AXES)
        self._cap = 0
        self.used = 0  # high-water mark of slots in use
        self._slots: list[_Slot | None] = []
        self._spare: list[int] = []
        self.index: dict[str, int] = {}
        # (n_resources, slots): one contiguous row per axis makes the fit test a few compares.
        self.alloc = np.zeros((len(self.axes), 0), dtype=np.int64)
        self.free = np.zeros((len(self.axes), 0), dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.ready = np.zeros(0, dtype=bool)
        self.usable = np.zeros(0, dtype=bool)  # ready and not cordoned
        self.rank = np.zeros(0, dtype=np.int64)  # position by node name among alive nodes
        self.guard = np.zeros(0, dtype=np.int64)  # bound pods with hostname anti-affinity
        self.inv = np.zeros((0, len(_SCORED)), dtype=np.float64)  # 1 / allocatable, 0 if none
        self.taken = np.zeros(0, dtype=np.float64)  # sum of requested / allocatable (scored)
        self._clock = 0  # global counter for slot versions
        self._masks: dict[tuple[bool, tuple[object, ...]], tuple[Pod, BOOL]] = {}
        self._verdicts: dict[tuple[object, ...], bool] = {}
        self._spread = SpreadIndex(self._live)
        self._blocks: dict[tuple[int, int], tuple[int, bool]] = {}
        self._needs: list[Need] = []
        self._need_axes: list[list[tuple[int, int]]] = []  # (axis, amount) with amount > 0
        self._need_score: list[npt.NDArray[np.float64]] = []  # scored axes of the request
        self._need_req = np.zeros((0, len(self.axes)), dtype=np.int64)
        self.blocked = np.zeros(0, dtype=bool)  # by need ident: failed, nothing changed since

    # -- growth ----------------------------------------------------------------------------

    def _grow(self) -> None:
        cap = max(16, 2 * self._cap)
        extra = cap - self._cap
        self.alloc = np.hstack([self.alloc, np.zeros((len(self.axes), extra), np.int64)])
        self.free = np.hstack([self.free, np.zeros((len(self.axes), extra), np.int64)])
        self.inv = np.vstack([self.inv, np.zeros((extra, len(_SCORED)), np.float64)])
        for name in ("alive", "ready", "usable", "rank", "guard", "taken"):
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.zeros(extra, old.dtype)]))
        for signature, (pod, mask) in self._masks.items():
            self._masks[signature] = (pod, np.concatenate([mask, np.zeros(extra, bool)]))
        self._spread.grow(cap)
        self._slots.extend([None] * extra)
        self._cap = cap

    def _ensure_axes(self, names: Sequence[str]) -> None:
        missing = sorted(set(names) - set(self.axes))
        if not missing:
            return
        self.axes.extend(missing)
        pad = np.zeros((len(missing), self._cap), np.int64)
        self.alloc = np.vstack([self.alloc, pad])
        self.free = np.vstack([self.free, pad])
        self._need_req = np.hstack(
            [self._need_req, np.zeros((len(self._need_req), len(missing)), np.int64)]
        )
        for need in self._needs:
            self._need_req[need.ident] = self.vector(need.requests)

    def vector(self, values: Resources) -> I64:
        return np.array([values.get_units(axis) for axis in self.axes], dtype=np.int64)

    # -- needs (groups of pending pods) ----------------------------------------------------

    def register(self, pod: Pod) -> Need:
        need = need_of(len(self._needs), pod)
        self._ensure_axes(list(need.requests))
        if need.ident == len(self.blocked):
            extra = max(16, len(self.blocked))
            pad = np.zeros((extra, len(self.axes)), np.int64)
            self._need_req = np.vstack([self._need_req, pad])
            self.blocked = np.concatenate([self.blocked, np.zeros(extra, bool)])
        self._needs.append(need)
        vector = self.vector(need.requests)
        self._need_req[need.ident] = vector
        self._need_axes.append([(r, int(v)) for r, v in enumerate(vector.tolist()) if v > 0])
        self._need_score.append(vector[_SCORED].astype(np.float64))
        return need

    def unblock_fitting(self, slot: int) -> list[int]:
        """Clear and return the blocked needs that may now fit ``slot`` (it changed)."""
        if not self.usable[slot] or not self.blocked.any():
            return []
        fits = (self._need_req <= self.free[:, slot]).all(axis=1)
        maybe = np.flatnonzero(self.blocked & fits)
        out = [int(i) for i in maybe if self._static(self._needs[i], True)[slot]]
        self.blocked[out] = False
        return out

    # -- nodes -----------------------------------------------------------------------------

    def add(self, node: Node) -> int:
        if not self._spare and self.used == self._cap:
            self._grow()
        slot = heapq.heappop(self._spare) if self._spare else self.used
        self.used = max(self.used, slot + 1)
        self._ensure_axes(list(node.allocatable))
        labels = dict(node.labels)
        self._slots[slot] = _Slot(node, labels, version=self._tick())
        self.index[node.name] = slot
        self.alloc[:, slot] = self.free[:, slot] = self.vector(node.allocatable)
        scored = self.alloc[_SCORED, slot].astype(np.float64)
        self.inv[slot] = np.where(scored > 0, 1.0 / np.where(scored > 0, scored, 1.0), 0.0)
        self.taken[slot] = 0.0
        self.alive[slot] = True
        self.ready[slot] = node.ready
        self.usable[slot] = node.ready and not node.unschedulable
        for (honor, _), (pod, mask) in self._masks.items():
            mask[slot] = self._verdict(pod, honor, node, labels)
        self._spread.add(slot, labels)
        self._rerank()
        return slot

    def update(self, slot: int, node: Node) -> None:
        """The node's spec changed (cordon, taints): same name, labels and allocatable."""
        held = self._slot(slot)
        held.node = node
        self.usable[slot] = self.ready[slot] and not node.unschedulable
        for (honor, _), (pod, mask) in self._masks.items():
            mask[slot] = self._verdict(pod, honor, node, held.labels)

    def set_ready(self, slot: int) -> None:
        node = self.node(slot)
        self._slot(slot).node = replace(node, ready=True)
        self.ready[slot] = True
        self.usable[slot] = not node.unschedulable

    def remove(self, slot: int) -> list[Pod]:
        """Forget the node in ``slot``; its bound pods, by key."""
        gone = self._slot(slot)
        pods = [gone.pods[key] for key in sorted(gone.pods)]
        del self.index[gone.node.name]
        self._slots[slot] = None
        self.alive[slot] = self.ready[slot] = self.usable[slot] = False
        self.alloc[:, slot] = self.free[:, slot] = 0
        self.guard[slot] = 0
        self._spread.remove(slot)
        heapq.heappush(self._spare, slot)
        self._rerank()
        return pods

    def node(self, slot: int) -> Node:
        return self._slot(slot).node

    def nodes(self) -> list[Node]:
        return [self.node(self.index[name]) for name in sorted(self.index)]

    def _live(self) -> Iterator[tuple[int, _Slot]]:
        for slot in range(self.used):
            held = self._slots[slot]
            if held is not None:
                yield slot, held

    def _slot(self, slot: int) -> _Slot:
        found = self._slots[slot]
        if found is None:
            raise KeyError(f"slot {slot} holds no node")
        return found

    def _rerank(self) -> None:
        for position, name in enumerate(sorted(self.index)):
            self.rank[self.index[name]] = position

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    # -- pods on nodes ---------------------------------------------------------------------

    def bind(self, slot: int, pod: Pod, need: Need) -> None:
        self.free[:, slot] -= self._need_req[need.ident]
        self._on_pods_changed(slot, pod, +1)

    def unbind(self, slot: int, pod: Pod, ident: int) -> None:
        self.free[:, slot] += self._need_req[ident]
        self._on_pods_changed(slot, pod, -1)

    def _on_pods_changed(self, slot: int, pod: Pod, sign: int) -> None:
        held = self._slot(slot)
        if sign > 0:
            held.pods[pod.key] = pod
        else:
            del held.pods[pod.key]
        held.version = self._tick()
        self._rescore(slot)
        if any(t.topology_key == HOSTNAME_LABEL for t in pod.anti_affinity):
            self.guard[slot] += sign
        self._spread.pod_changed(slot, pod, sign)

    def pods_on(self, slot: int) -> list[Pod]:
        held = self._slot(slot)
        return [held.pods[key] for key in sorted(held.pods)]

    def free_resources(self, slot: int) -> Resources:
        return Resources.of(zip(self.axes, self.free[:, slot].tolist(), strict=True))

    # -- static predicates, cached ---------------------------------------------------------

    def _static(self, need: Need, honor_taints: bool) -> BOOL:
        """Per slot: ``node_mismatch`` is None (taints ignored when not ``honor_taints``)."""
        key = (honor_taints, need.signature)
        found = self._masks.get(key)
        if found is None:
            mask = np.zeros(self._cap, dtype=bool)
            for slot, held in self._live():
                mask[slot] = self._verdict(need.pod, honor_taints, held.node, held.labels)
            found = self._masks[key] = (need.pod, mask)
        return found[1]

    def _verdict(self, pod: Pod, honor: bool, node: Node, labels: dict[str, str]) -> bool:
        # Nodes differing only in hostname get the same answer unless the pod names a host.
        reads_host = any(k == HOSTNAME_LABEL for k, _ in pod.node_selector) or any(
            e.key == HOSTNAME_LABEL for t in pod.required_affinity for e in t.match_expressions
        )
        shown = node.labels
        if not reads_host:
            shown = tuple(kv for kv in node.labels if kv[0] != HOSTNAME_LABEL)
        key = (placement_signature(pod), honor, shown, HOSTNAME_LABEL in labels, node.taints)
        verdict = self._verdicts.get(key)
        if verdict is None:
            taints = node.taints if honor else ()
            verdict = self._verdicts[key] = node_mismatch(pod, labels, taints) is None
        return verdict

    # -- filters that read bound pods ------------------------------------------------------

    def _spread_allows(self, need: Need) -> list[BOOL]:
        """Per DoNotSchedule constraint: which domain ids may take one more pod of ``need``."""
        eligible = self._static(need, False)[: self.used] & self.alive[: self.used]
        return self._spread.allows(need.pod, need.spreads, eligible)

    def _anti_affinity_blocks(self, need: Need, slot: int) -> bool:
        held = self._slot(slot)
        cached = self._blocks.get((need.ident, slot))
        if cached is not None and cached[0] == held.version:
            return cached[1]
        blocked = anti_affinity_blocks(need.pod, held.pods.values())
        self._blocks[(need.ident, slot)] = (held.version, blocked)
        return blocked

    # -- placement -------------------------------------------------------------------------

    def place(self, need: Need) -> int | None:
        """The slot a pod of ``need`` binds to now, or None if no node passes every filter."""
        n = self.used
        ok = self._static(need, True)[:n] & self.usable[:n]
        for axis, amount in self._need_axes[need.ident]:
            ok &= self.free[axis, :n] >= amount
        score = self.taken[:n] + self.inv[:n] @ self._need_score[need.ident]
        score[~ok] = -1.0  # real scores are >= 0
        top = score.max(initial=-1.0)
        if top < 0:
            return None
        best = np.flatnonzero(score == top)
        first = int(best[0]) if best.size == 1 else int(best[np.argmin(self.rank[best])])
        allows = self._spread_allows(need) if need.spreads else []
        if self._admits(need, first, allows):
            return first
        idx = np.flatnonzero(ok)
        for slot in idx[np.lexsort((self.rank[idx], -score[idx]))].tolist():
            if slot != first and self._admits(need, slot, allows):
                return int(slot)
        return None

    def _admits(self, need: Need, slot: int, allows: list[BOOL]) -> bool:
        """The filters that depend on other pods, then the authoritative resource check."""
        for spread, ok in zip(need.spreads, allows, strict=True):
            if not ok[self._spread.domain_ids(spread.topology_key)[0][slot]]:
                return False
        pods_matter = need.hostname_terms or self.guard[slot] > 0
        if pods_matter and self._anti_affinity_blocks(need, slot):
            return False
        return insufficient(need.requests, self.free_resources(slot)) is None

    def _rescore(self, slot: int) -> None:
        # Requested share of cpu and memory, kept per node so a placement scores in one pass.
        cpu, memory = _SCORED
        inv_cpu, inv_memory = self.inv[slot].tolist()
        taken_cpu = int(self.alloc[cpu, slot] - self.free[cpu, slot])
        taken_memory = int(self.alloc[memory, slot] - self.free[memory, slot])
        self.taken[slot] = taken_cpu * inv_cpu + taken_memory * inv_memory

    # -- totals ----------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        n = self.used
        ready = self.ready[:n]
        alloc = self.alloc[:, :n][:, ready]
        taken = alloc - self.free[:, :n][:, ready]
        cpu, memory = _SCORED
        return {
            "nodes": len(self.index),
            "ready_nodes": int(ready.sum()),
            "requested_cpu_m": int(taken[cpu].sum()),
            "allocatable_cpu_m": int(alloc[cpu].sum()),
            "requested_memory": int(taken[memory].sum()),
            "allocatable_memory": int(alloc[memory].sum()),
        }
