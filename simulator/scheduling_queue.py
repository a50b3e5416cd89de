"""The simulator's scheduling queue: groups of identical pending pods and coalesced passes.

Callers: ``simulator.cluster.SimCluster`` only. It owns the pods (``Entry`` records, by key), adds
pending ones here, binds the pod a pass places (the ``bind`` callback) and says when something
changed that may let a blocked group bind (``activate``, ``spread_changed``). Which node a pod
gets is ``simulator.scheduler.NodeTable.place``.

Scheduling passes are coalesced: any change that can let a pod bind asks for one pass at the
current instant (engine priority SCHEDULE), however many changes happened. A pass visits
pending pods in kube-scheduler's queue order (priority desc, creation time, name) through
groups of identical pods: once a pod fails, the rest of its group is skipped, and the group
stays *blocked*, not retried, until something it could use changes (a node at which it may
fit becomes ready or frees capacity, or for topology spread a matching pod binds or leaves).
A failed pod never holds back other pods (no preemption, no head-of-line blocking).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from autoscaler.model.constraints import selects
from autoscaler.model.pod import Pod
from simulator.engine import SCHEDULE, Engine
from simulator.scheduler import Need, NodeTable


@dataclass(slots=True)
class Entry:
    """A live pod of the cluster, pending or bound."""

    pod: Pod
    workload: str
    ident: int  # its group's Need
    seq: int  # submission order; tells a live queue entry from a stale one
    lineage: tuple[str, str]  # (name, uid) of the first pod this one replaces
    pending: bool = True


@dataclass(slots=True)
class _Group:
    need: Need
    queue: list[tuple[float, str, int]]  # heap of (created, name, seq); may hold stale entries
    members: int = 0  # live pending pods


class SchedulingQueue:
    """Pending pods by group; runs the scheduling passes."""

    def __init__(
        self,
        engine: Engine,
        table: NodeTable,
        pods: Mapping[str, Entry],
        bind: Callable[[Entry, int], None],
    ) -> None:
        self._engine = engine
        self._table = table
        self._pods = pods  # the cluster's live pods by key
        self._bind = bind
        self._groups: dict[tuple[object, ...], _Group] = {}
        self._by_ident: list[_Group] = []
        self._active: set[int] = set()  # groups with pending pods to try in the next pass
        self._spread_blocked: set[int] = set()
        self._pass_due = False
        self.passes = 0

    # -- pending pods ----------------------------------------------------------------------

    def ident_of(self, pod: Pod) -> int:
        """The group of ``pod``: pods equal in everything but identity and binding schedule
        alike."""
        key = (
            pod.namespace,
            pod.owner,
            pod.labels,
            pod.containers,
            pod.init_containers,
            pod.overhead,
            pod.node_selector,
            pod.required_affinity,
            pod.tolerations,
            pod.topology_spread,
            pod.anti_affinity,
            pod.volume_zones,
            pod.priority,
        )
        group = self._groups.get(key)
        if group is None:
            group = _Group(self._table.register(pod), [])
            self._groups[key] = group
            self._by_ident.append(group)
        return group.need.ident

    def push(self, entry: Entry, created: float) -> None:
        """Queue the pending pod ``entry`` (already among the cluster's pods)."""
        group = self._by_ident[entry.ident]
        heapq.heappush(group.queue, (created, entry.pod.name, entry.seq))
        group.members += 1

    def drop(self, ident: int) -> None:
        """A pending pod of group ``ident`` went away; its queue entry goes stale."""
        self._by_ident[ident].members -= 1

    def need(self, ident: int) -> Need:
        return self._by_ident[ident].need

    # -- retries ---------------------------------------------------------------------------

    def activate(self, idents: list[int]) -> None:
        """Unblock the groups ``idents``; a pass comes at the current instant."""
        for ident in idents:
            self._table.blocked[ident] = False
            self._spread_blocked.discard(ident)
            if self._by_ident[ident].members > 0:
                self._active.add(ident)
        if self._active and not self._pass_due:
            self._pass_due = True
            self._engine.at(self._engine.now, self._pass, SCHEDULE)

    def activate_spread_blocked(self) -> None:
        """Retry every group topology spread blocks (a domain and its pods went away)."""
        self.activate(sorted(self._spread_blocked))

    def spread_changed(self, pod: Pod) -> None:
        """A pod bound or left: retry spread-blocked groups whose selectors count it."""
        if not self._spread_blocked:
            return
        retry = []
        for ident in sorted(self._spread_blocked):
            need = self._by_ident[ident].need
            namespace = need.pod.namespace
            if any(selects(pod, s.label_selector, namespace) for s in need.spreads):
                retry.append(ident)
        self.activate(retry)

    # -- passes ----------------------------------------------------------------------------

    def _head(self, group: _Group) -> Entry | None:
        namespace = group.need.pod.namespace
        while group.queue:
            _, name, seq = group.queue[0]
            entry = self._pods.get(f"{namespace}/{name}")
            if entry is not None and entry.seq == seq and entry.pending:
                return entry
            heapq.heappop(group.queue)  # finished, or a reused name
        return None

    def _pass(self) -> None:
        self._pass_due = False
        self.passes += 1
        todo = sorted(self._active)
        self._active.clear()
        heap: list[tuple[int, float, str, int]] = []
        for ident in todo:
            self._push_head(heap, ident)
        while heap:
            ident = heapq.heappop(heap)[3]
            group = self._by_ident[ident]
            entry = self._head(group)
            if entry is None:
                continue
            slot = self._table.place(group.need)
            if slot is None:
                self._table.blocked[ident] = True
                if group.need.spreads:
                    self._spread_blocked.add(ident)
                continue
            heapq.heappop(group.queue)
            group.members -= 1
            self._bind(entry, slot)
            self._push_head(heap, ident)

    def _push_head(self, heap: list[tuple[int, float, str, int]], ident: int) -> None:
        group = self._by_ident[ident]
        entry = self._head(group)
        if entry is not None:
            created, name, _ = group.queue[0]
            heapq.heappush(heap, (-group.need.pod.priority, created, name, ident))
