"""A ClusterSource for tests: a settable view, and a list of the events recorded.

Callers: unit tests of ``control.loop``.
"""

from __future__ import annotations

from collections.abc import Sequence

from autoscaler.kube.source import NotSynced, Observation
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod


class FakeSource:
    def __init__(self, pods: Sequence[Pod] = (), nodes: Sequence[Node] = ()) -> None:
        self.pods = list(pods)
        self.nodes = list(nodes)
        self.synced = True
        self.events: list[tuple[str, str, str]] = []  # (pod key, reason, message)

    def observe(self) -> Observation:
        if not self.synced:
            raise NotSynced("fake source not synced")
        return Observation(tuple(self.pods), tuple(self.nodes))

    def record_event(self, pod: Pod, reason: str, message: str) -> None:
        self.events.append((pod.key, reason, message))
