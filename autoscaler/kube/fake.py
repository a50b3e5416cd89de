"""A ClusterSource for tests: a settable view, and lists of the events, cordons and evictions.

Callers: unit tests of ``control.loop`` and ``control.scaledown``. ``cordon`` changes the node in
the view; ``evict`` answers from ``eviction_results`` (pod key -> queued answers, default
EVICTED) and, when the answer is EVICTED, removes the pod from the view, as a pod whose grace
period ran out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from autoscaler.kube.source import EvictionResult, NotSynced, Observation
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod


class FakeSource:
    def __init__(
        self,
        pods: Sequence[Pod] = (),
        nodes: Sequence[Node] = (),
        pdbs: Sequence[PodDisruptionBudget] = (),
    ) -> None:
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
        self.nodes = [replace(n, unschedulable=unschedulable) if n.name == node else n
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
