"""Voluntary disruption: PodDisruptionBudgets, the annotations scale-down honours, and its plan.

Callers: the snapshot loader and the kube adapter build ``PodDisruptionBudget`` values into
``ClusterState.pdbs``; ``planner.scaledown`` (and its scalar reference) return a
``ScaleDownPlan``; ``control.scaledown`` acts on it; the simulator's cluster answers evictions
with ``allowed_disruptions`` as the API server does (HTTP 429 once a budget is spent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from autoscaler.model.constraints import label_selector_matches
from autoscaler.model.labels import LabelSelector
from autoscaler.model.pod import Pod

# Node annotations that keep a node out of scale-down: ours, and Cluster Autoscaler's (users
# already set it on nodes they protect).
SCALE_DOWN_DISABLED = (
    "surge.io/scale-down-disabled",
    "cluster-autoscaler.kubernetes.io/scale-down-disabled",
)
# Node annotation surge sets in the patch that cordons a node for scale-down (value: when the
# drain started, RFC 3339) and removes in the patch that uncordons it: a later leader tells
# surge's cordons, which it may undo, from a person's, which it never touches (Cluster
# Autoscaler's ToBeDeletedByClusterAutoscaler taint plays this part).
SCALE_DOWN_MARK = "surge.io/scale-down-drain-started"
# Pod annotations: "false" blocks the pod's node from scale-down, "true" allows evicting a pod
# that would otherwise block it (bare pod, local storage, kube-system without a budget).
SAFE_TO_EVICT = ("surge.io/safe-to-evict", "cluster-autoscaler.kubernetes.io/safe-to-evict")
# AKS node auto-drain taints a Spot node that received a Preempt scheduled event
# (learn.microsoft.com/azure/aks/node-auto-drain): the VM is going away on its own.
EVICTION_NOTICE_TAINT = "remediator.kubernetes.azure.com/unschedulable"


IntOrPercent = int | str  # an integer, or "N%"


@dataclass(frozen=True, slots=True)
class PodDisruptionBudget:
    """A ``policy/v1`` PodDisruptionBudget: at most one of ``min_available`` and
    ``max_unavailable``; ``disruptions_allowed`` is ``status.disruptionsAllowed`` when known
    (it then wins over what the pods in view would give)."""

    name: str
    namespace: str = "default"
    selector: LabelSelector = LabelSelector()
    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None
    disruptions_allowed: int | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and label_selector_matches(
            self.selector, dict(pod.labels)
        )


def scaled(value: IntOrPercent, total: int) -> int:
    """An int-or-percent against ``total``; percentages round up, as the disruption
    controller does for both fields."""
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * total / 100)


def allowed_disruptions(pdb: PodDisruptionBudget, pods: Iterable[Pod]) -> int:
    """How many of the budget's pods may be evicted now.

    From ``status`` when given; otherwise as the disruption controller computes it from the
    pods in view: expected = pods the budget selects (pending ones included: their controller
    wants them), healthy = those bound to a node, and disruptionsAllowed = healthy - desired
    healthy, never negative. A budget with neither field allows nothing (the safe reading).
    """
    if pdb.disruptions_allowed is not None:
        return max(0, pdb.disruptions_allowed)
    matching = [p for p in pods if pdb.selects(p)]
    expected = len(matching)
    healthy = sum(p.node_name is not None for p in matching)
    if pdb.min_available is not None:
        desired = scaled(pdb.min_available, expected)
    elif pdb.max_unavailable is not None:
        desired = max(0, expected - scaled(pdb.max_unavailable, expected))
    else:
        return 0
    return max(0, healthy - desired)


def annotation(pairs: Iterable[tuple[str, str]], keys: Iterable[str]) -> str | None:
    """The value of the first of ``keys`` present in ``pairs`` (annotation key order)."""
    found = dict(pairs)
    for key in keys:
        if key in found:
            return found[key]
    return None


@dataclass(frozen=True, slots=True)
class NodeRemoval:
    """One node a scale-down plan removes; ``evict`` are the pods to move (keys, sorted) and
    ``moves`` where the plan found room for each, ``(pod key, node)`` in the same order. The
    scheduler makes its own choice when the evicted pods come back; the plan only shows that
    a place exists."""

    node: str
    pool: str
    utilisation: float
    price_per_hour: float
    evict: tuple[str, ...] = ()
    moves: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.evict


@dataclass(frozen=True, slots=True)
class ScaleDownPlan:
    """``remove`` in the order chosen; ``kept`` says, for every other registered node (by
    name), why it stays."""

    remove: tuple[NodeRemoval, ...] = ()
    kept: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.node for r in self.remove)

    @property
    def saving_per_hour(self) -> float:
        return round(math.fsum(r.price_per_hour for r in self.remove), 6)
