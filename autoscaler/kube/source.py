"""The ClusterSource protocol: what the control loop reads from Kubernetes and writes back.

Callers: ``control.loop`` (observe, events) and ``control.scaledown`` (cordon, evict).
Implemented by ``kube.client`` (the real watch-backed cache), ``kube.fake`` (tests) and
``simulator.cluster.SimCluster``. ``observe`` returns a consistent view or raises ``NotSynced``:
the loop never acts on a state it could not fully read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod


class NotSynced(Exception):
    """The cache has not (re)synced: there is no trustworthy view to act on."""


class EvictionResult(StrEnum):
    """The answer of the Eviction API (``POST .../pods/<name>/eviction``)."""

    EVICTED = "Evicted"  # 201: the pod is being deleted (its grace period runs)
    BLOCKED_BY_PDB = "BlockedByPDB"  # 429: a PodDisruptionBudget allows no disruption now
    GONE = "Gone"  # 404: the pod no longer exists
    ERROR = "Error"  # anything else (500 for a pod under several budgets, 403, ...)


@dataclass(frozen=True, slots=True)
class Observation:
    """Pending pods (``node_name is None``) and bound pods, registered nodes, and the
    PodDisruptionBudgets (scale-down only; empty when the source does not watch them)."""

    pods: tuple[Pod, ...]
    nodes: tuple[Node, ...]
    pdbs: tuple[PodDisruptionBudget, ...] = ()


class ClusterSource(Protocol):
    def observe(self) -> Observation:
        """The current pods and nodes; raises NotSynced when the view is not trustworthy."""
        ...

    def record_event(self, pod: Pod, reason: str, message: str) -> None:
        """Tell the pod's owner what the autoscaler did about it (a Kubernetes Event)."""
        ...

    def cordon(self, node: str, unschedulable: bool) -> None:
        """Set the node's ``spec.unschedulable`` (True: cordon, False: uncordon). Idempotent;
        raises an exception only when the request could not be made.

        Only scale-down calls it, so a cordon is surge's: a source whose cordons can outlive
        the process (``kube.cache``, ``kube.fake``) marks the node in the same write
        (``model.disruption.SCALE_DOWN_MARK``, the time the drain started), and an uncordon
        removes the mark, so that a later leader can undo a drain left half-way
        (``control.scaledown_recovery``). A source that dies with the loop (the simulator)
        need not mark."""
        ...

    def evict(self, pod: Pod, grace_seconds: int | None) -> EvictionResult:
        """Ask the Eviction API to evict ``pod``; ``grace_seconds`` None keeps the pod's own
        terminationGracePeriodSeconds. Never raises for an answer of the API server."""
        ...
