"""Inputs beyond pods/nodes/pools (limits, backoff, policy) and the scale-up plan, as values.

Callers: ``planner.scaleup`` and ``planner.reference`` return ``ScaleUpPlan``; the CLI prints it;
the control loop acts on ``pool_targets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from autoscaler.model.pool import Priority


@dataclass(frozen=True, slots=True)
class ClusterLimits:
    """Cluster-wide caps on totals (existing + upcoming + new); None means unlimited."""

    max_nodes: int | None = None
    max_cores: int | None = None
    max_memory_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """No new nodes of (vm_size, zone, priority) until ``until``; zone None matches any zone."""

    vm_size: str
    zone: str | None
    priority: Priority
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Policy:
    """Choice policy. Each tier is a tuple of selectors: ``Spot``, ``Regular`` or a pool name;
    options in an earlier tier are always preferred. Options matching no tier come last."""

    priority_tiers: tuple[tuple[str, ...], ...] = (("Spot",), ("Regular",))
    max_new_nodes: int | None = None  # cap on nodes added by one plan


@dataclass(frozen=True, slots=True)
class NewNodes:
    """``count`` identical new nodes of ``option`` each holding ``pods_per_node`` of the group."""

    option: str
    nodes: int
    pods: int


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    """Where the pods of one equivalence group go, or why some cannot go anywhere."""

    group: str
    pods: int
    on_existing: int = 0
    on_upcoming: int = 0
    on_new: tuple[tuple[str, int], ...] = ()  # (option, pods) in option order
    unplaced: int = 0
    reason: str | None = None
    first_pod: str = ""  # "namespace/name" of the group's first pod, for events


    @property
    def placed(self) -> int:
        return self.pods - self.unplaced


@dataclass(frozen=True, slots=True)
class PoolTarget:
    pool: str
    current: int
    target: int

    @property
    def delta(self) -> int:
        return self.target - self.current


@dataclass(frozen=True, slots=True)
class PlannedNode:
    """One new node in the plan with its pods, per group: ``((group, pods), ...)``."""

    option: str
    pods: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ScaleUpPlan:
    pool_targets: tuple[PoolTarget, ...]
    groups: tuple[GroupOutcome, ...]
    new_nodes: tuple[PlannedNode, ...] = ()
    cost_per_hour: float = 0.0  # of the new nodes
    notes: tuple[str, ...] = field(default=())
