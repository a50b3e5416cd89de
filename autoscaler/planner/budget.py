"""What may still be added in one plan: pool headroom, cluster limits, backoff, plan cap.

Callers: ``planner.scaleup`` and ``planner.reference`` (one implementation of the limits, so
both planners refuse exactly the same nodes for the same reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.model.plan import ClusterLimits, Policy
from autoscaler.model.pool import NodeOption
from autoscaler.planner.reasons import at_max, limit_reached


@dataclass(slots=True)
class Budget:
    """Mutable counters for one plan; ``room`` says how many nodes of an option fit now."""

    options: Sequence[NodeOption]
    max_count: Sequence[int]
    headroom: list[int]
    backoff: Sequence[str | None]
    nodes_left: int
    cores_left: int
    memory_left: int
    new_left: int
    limits: ClusterLimits
    policy: Policy

    def room(self, o: int) -> tuple[int, str | None]:
        """Nodes of option ``o`` that may be added now, and why not when that is 0."""
        option = self.options[o]
        if self.backoff[o] is not None:
            return 0, self.backoff[o]
        if self.headroom[o] <= 0:
            return 0, at_max(option, self.max_count[o])
        vcpus = max(1, option.template.vcpus)
        memory = max(1, option.template.memory_bytes)
        checks = (
            (self.nodes_left, "nodes", self.limits.max_nodes),
            (self.cores_left // vcpus, "cores", self.limits.max_cores),
            (self.memory_left // memory, "memory", self.limits.max_memory_bytes),
            (self.new_left, "new nodes", self.policy.max_new_nodes),
        )
        room = self.headroom[o]
        for left, what, limit in checks:
            if left <= 0:
                return 0, limit_reached(what, limit or 0)
            room = min(room, left)
        return room, None

    def take(self, o: int, nodes: int) -> None:
        option = self.options[o]
        self.headroom[o] -= nodes
        self.nodes_left -= nodes
        self.cores_left -= nodes * option.template.vcpus
        self.memory_left -= nodes * option.template.memory_bytes
        self.new_left -= nodes
