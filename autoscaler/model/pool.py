"""AKS agent pools, the template node a pool would add, and node options.

Callers: the snapshot loader and the AKS adapter build ``AgentPool``; ``planner.options`` turns
pools into ``NodeOption`` values (one per pool: a pool has one priority and either one zone or
is zone-unknown, so pool x zone x priority is the pool itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from autoscaler.model.labels import Labels
from autoscaler.model.node import Taint
from autoscaler.model.resources import Resources


class Priority(StrEnum):
    """``scaleSetPriority`` of an agent pool."""

    SPOT = "Spot"
    REGULAR = "Regular"


class PoolMode(StrEnum):
    SYSTEM = "System"
    USER = "User"


@dataclass(frozen=True, slots=True)
class AgentPool:
    """An agent pool as AKS reports it. ``zones`` are AKS zone numbers ("1", "2", "3")."""

    name: str
    vm_size: str
    count: int
    min_count: int = 0
    max_count: int = 0
    zones: tuple[str, ...] = ()
    priority: Priority = Priority.REGULAR
    mode: PoolMode = PoolMode.USER
    labels: Labels = ()  # nodeLabels set on the pool
    taints: tuple[Taint, ...] = ()  # nodeTaints set on the pool
    max_pods: int = 30
    kubernetes_version: str = "1.30"
    os_type: str = "Linux"
    enable_autoscaling: bool = False
    os_disk_size_gb: int = 128  # osDiskSizeGB; sizes the template's ephemeral-storage


@dataclass(frozen=True, slots=True)
class TemplateNode:
    """What one new node of a pool looks like to the scheduler, plus its VM shape for limits."""

    labels: Labels
    taints: tuple[Taint, ...]
    allocatable: Resources
    vcpus: int
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class NodeOption:
    """A way to add one node: a pool (its zone, or None when zone-unknown) and its price."""

    pool: str
    vm_size: str
    zone: str | None  # full zone label value, e.g. "eastus-1"; None when the pool spans zones
    priority: Priority
    template: TemplateNode
    price_per_hour: float  # USD per node-hour

    @property
    def name(self) -> str:
        return self.pool
