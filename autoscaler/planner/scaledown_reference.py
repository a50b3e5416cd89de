"""The scalar reference scale-down planner: the rules of ``planner.scaledown``, pod by pod.

Callers: property tests (the vectorized planner must choose exactly the same nodes, for the
same reasons) and benchmarks (speed baseline). Obviously correct and slow on purpose: no
arrays; for every pod it moves and every node it tries, every predicate is evaluated through
``autoscaler.model.constraints`` against the pods that node holds at that moment (its own, and
those earlier removals moved onto it). It shares only policy with the kernel
(``planner.scaledown_rules``: candidates, order, limits; ``planner.policy.hostname_cap``).
"""

from __future__ import annotations

from autoscaler.model.constraints import (
    anti_affinity_blocks,
    effective_requests,
    insufficient,
    node_mismatch,
    selects,
)
from autoscaler.model.disruption import ScaleDownPlan
from autoscaler.model.labels import HOSTNAME_LABEL
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod
from autoscaler.model.resources import Resources
from autoscaler.model.state import ClusterState
from autoscaler.planner.groups import PodGroup
from autoscaler.planner.policy import hostname_cap
from autoscaler.planner.scaledown_rules import (
    Candidate,
    Moves,
    ScaleDownParams,
    Survey,
    move_order,
    select,
    survey,
)


def plan_scale_down_reference(
    state: ClusterState, params: ScaleDownParams | None = None
) -> ScaleDownPlan:
    params = params or ScaleDownParams()
    found = survey(state, params)
    return select(state, params, found, _PodPacker(state, found))


class _PodPacker:
    def __init__(self, state: ClusterState, found: Survey) -> None:
        self.nodes: dict[str, Node] = {n.name: n for n in state.nodes}
        self.order = list(found.destinations)
        self.gone: set[str] = set()
        self.pods: dict[str, list[Pod]] = {
            name: sorted(found.usage.get(name, (Resources(), []))[1], key=lambda p: p.key)
            for name in self.order
        }
        self.free: dict[str, dict[str, int]] = {}
        for name in self.order:
            used = Resources()
            for pod in self.pods[name]:
                used = used + effective_requests(pod)
            alloc = self.nodes[name].allocatable
            self.free[name] = {
                axis: max(0, alloc.get_units(axis) - used.get_units(axis))
                for axis in set(alloc) | set(used)
            }

    def try_remove(self, candidate: Candidate) -> Moves | str:
        source = candidate.node
        pods = {name: list(held) for name, held in self.pods.items()}
        free = {name: dict(units) for name, units in self.free.items()}
        moves: list[tuple[str, str]] = []
        for pod in move_order(candidate.movable):
            for name in self.order:
                if name == source.name or name in self.gone:
                    continue
                if self._fits(pod, self.nodes[name], source, pods[name], free[name]):
                    pods[name].append(pod)
                    moves.append((pod.key, name))
                    for axis, units in effective_requests(pod).items():
                        free[name][axis] = free[name].get(axis, 0) - units
                    break
            else:
                return f"no room for pod {pod.key}"
        self.pods, self.free = pods, free
        self.gone.add(source.name)
        return tuple(sorted(moves))

    @staticmethod
    def _fits(pod: Pod, node: Node, source: Node, held: list[Pod], free: dict[str, int]) -> bool:
        labels = dict(node.labels)
        if node_mismatch(pod, labels, node.taints) is not None:
            return False
        origin = dict(source.labels)
        for spread in pod.topology_spread:
            key = spread.topology_key
            spreads = spread.when_unsatisfiable == "DoNotSchedule" and key != HOSTNAME_LABEL
            if spreads and labels.get(key) != origin.get(key):
                return False
        if anti_affinity_blocks(pod, held):
            return False
        requests = effective_requests(pod)
        cap = hostname_cap(PodGroup(pod.key, pod, (pod.name,), requests))
        if cap is not None:
            selector = cap.selector
            taken = 0
            if selector is not None:
                taken = sum(selects(p, selector, pod.namespace) for p in held)
            if taken >= cap.per_node:
                return False
        return insufficient(requests, Resources.of(free)) is None
