"""What may still be added in one plan: pool headroom, cluster limits, backoff, plan cap.

Callers: ``planner.scaleup`` and ``planner.reference`` (one implementation of the limits, so
both planners refuse exactly the same nodes for the same reason); ``Rooms`` is the kernel's
all-options view of the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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


class Rooms:
    """``Budget.room`` of every option at once, kept current as nodes are taken.

    The kernel asks for the room of many options per node it opens; asking ``Budget`` each
    time was a large share of its cost. While the cluster-wide counters allow more nodes than
    any pool's headroom (always, without cluster limits), an option's room is its headroom and
    one take changes one entry; otherwise every entry is recomputed.
    """

    def __init__(self, budget: Budget, vcpus: npt.NDArray[np.int64],
                 memory: npt.NDArray[np.int64]) -> None:
        self.budget = budget
        self.vcpus = np.maximum(vcpus, 1)
        self.memory = np.maximum(memory, 1)
        self.blocked = np.array([why is not None for why in budget.backoff], dtype=bool)
        self.widest = max(budget.headroom, default=0)  # headroom only ever shrinks
        self.most_vcpus = int(self.vcpus.max(initial=1))
        self.most_memory = int(self.memory.max(initial=1))
        # Loose: even after every pool is filled to its max, the cluster-wide counters allow
        # more than any headroom, so no take can make them bind.
        self.loose = self._global(sum(budget.headroom)) >= self.widest
        self.left: list[int] = []
        self._recompute()

    def take(self, o: int, nodes: int) -> None:
        self.budget.take(o, nodes)
        if self.loose or self._global(0) >= self.widest:
            self.left[o] = 0 if self.blocked[o] else max(0, self.budget.headroom[o])
        else:
            self._recompute()

    def _global(self, later: int) -> int:
        """A lower bound of the nodes the cluster-wide counters allow any option, once
        ``later`` more nodes of any size have been taken."""
        b = self.budget
        return min(
            b.nodes_left - later,
            b.new_left - later,
            (b.cores_left - later * self.most_vcpus) // self.most_vcpus,
            (b.memory_left - later * self.most_memory) // self.most_memory,
        )

    def _recompute(self) -> None:
        b = self.budget
        room = np.minimum(np.array(b.headroom, dtype=np.int64), min(b.nodes_left, b.new_left))
        np.minimum(room, b.cores_left // self.vcpus, out=room)
        np.minimum(room, b.memory_left // self.memory, out=room)
        room[self.blocked] = 0
        self.left = np.maximum(room, 0).tolist()
