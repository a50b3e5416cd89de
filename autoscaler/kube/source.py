"""The ClusterSource protocol: what the control loop reads from Kubernetes and writes back.

Callers: ``control.loop``. Implemented by ``kube.client`` (the real watch-backed cache),
``kube.fake`` (tests) and ``simulator.cluster.SimCluster``. ``observe`` returns a consistent
view or raises ``NotSynced``: the loop never acts on a state it could not fully read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from autoscaler.model.node import Node
from autoscaler.model.pod import Pod


class NotSynced(Exception):
    """The cache has not (re)synced: there is no trustworthy view to act on."""


@dataclass(frozen=True, slots=True)
class Observation:
    """Pending pods (``node_name is None``) and bound pods, and registered nodes."""

    pods: tuple[Pod, ...]
    nodes: tuple[Node, ...]


class ClusterSource(Protocol):
    def observe(self) -> Observation:
        """The current pods and nodes; raises NotSynced when the view is not trustworthy."""
        ...

    def record_event(self, pod: Pod, reason: str, message: str) -> None:
        """Tell the pod's owner what the autoscaler did about it (a Kubernetes Event)."""
        ...
