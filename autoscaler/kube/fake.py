"""A ClusterSource for tests: a settable view, and lists of the events, cordons and evictions.

Callers: unit tests of ``control.loop`` and ``control.scaledown``. ``cordon`` changes the node in
the view, marking it as surge's (``SCALE_DOWN_MARK``, stamped with ``now``) as the real cache
does, and uncordoning removes the mark; ``evict`` answers from ``eviction_results`` (pod key ->
queued answers, default EVICTED) and, when the answer is EVICTED, removes the pod from the view,
as a pod whose grace period ran out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from autoscaler.kube.source import EvictionResult, NotSynced, Observation
from autoscaler.model.disruption import SCALE_DOWN_MARK, PodDisruptionBudget
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod


class FakeSource:
    def __init__(
        self,
        pods: Sequence[Pod] = (),
        nodes: Sequence[Node] = (),
        pdbs: Sequence[PodDisruptionBudget] = (),
        now: Callable[[], datetime] = lambda: datetime(2026, 1, 1, tzinfo=UTC),
    ) -> None:
        self.now = now
        self.pods = list(pods)
        self.nodes = list(nodes)
        self.pdbs = list(pdbs)
        self.synced = True
        self.events: list[tuple[str, str, str]] = []  # (pod key, reason, message)
        self.cordons: list[tuple[str, bool]] = []  # (node, unschedulable)
        self.evictions: list[tuple[str, int | None, EvictionResult]] = []  # (pod, grace, answer)
        self.eviction_results: dict[str, list[EvictionResult]] = {}

    def observe(self) -> Observation:
        if not self.synced:
            raise NotSynced("fake source not synced")
        return Observation(tuple(self.pods), tuple(self.nodes), tuple(self.pdbs))

    def record_event(self, pod: Pod, reason: str, message: str) -> None:
        self.events.append((pod.key, reason, message))

    def cordon(self, node: str, unschedulable: bool) -> None:
        self.cordons.append((node, unschedulable))
        mark = self.now().strftime("%Y-%m-%dT%H:%M:%SZ") if unschedulable else None
        self.nodes = [_cordoned(n, unschedulable, mark) if n.name == node else n
                      for n in self.nodes]

    def evict(self, pod: Pod, grace_seconds: int | None) -> EvictionResult:
        queued = self.eviction_results.get(pod.key)
        answer = queued.pop(0) if queued else EvictionResult.EVICTED
        if not any(p.key == pod.key for p in self.pods) and answer is EvictionResult.EVICTED:
            answer = EvictionResult.GONE
        self.evictions.append((pod.key, grace_seconds, answer))
        if answer is EvictionResult.EVICTED:
            self.pods = [p for p in self.pods if p.key != pod.key]
        return answer


def _cordoned(node: Node, unschedulable: bool, mark: str | None) -> Node:
    notes = {k: v for k, v in node.annotations if k != SCALE_DOWN_MARK}
    if mark is not None:
        notes[SCALE_DOWN_MARK] = mark
    return replace(node, unschedulable=unschedulable, annotations=tuple(sorted(notes.items())))
