"""Scale-down policy shared by the vectorized planner and its scalar reference.

Callers: ``planner.scaledown`` (vectorized packing) and ``planner.scaledown_reference`` (pod by
pod). What is decided here is policy: which nodes may be considered at all (blockers,
utilisation), the order in which they are tried, and the limits on a set (pool minimum,
PodDisruptionBudgets, the disruption budget). Whether a node's pods fit elsewhere is each
planner's own packing code, plugged in as a ``Packer``; the property tests require both to
choose the same set.

Rules (docs/scaledown.md):

- A node is considered when it is registered, Ready, schedulable, not leaving (Spot eviction
  notice), in a managed pool, not annotated ``scale-down-disabled=true``, its utilisation (the
  largest of requested/allocatable over cpu, memory and GPU, all bound pods counted) is below
  the threshold, and none of its pods blocks: safe-to-evict "false", a bare pod, local storage,
  or a kube-system pod no PodDisruptionBudget covers (the last three unless safe-to-evict
  "true"). DaemonSet and mirror pods are neither moved nor blocking.
- Order: empty nodes first, then the highest price per unit of utilisation; ties go to the
  node whose zone has the most nodes left (zones stay balanced as nodes go), then the name.
- A node is chosen when its pool stays at or above its minimum, every PodDisruptionBudget
  covering its pods still allows that many evictions, the plan's node cap is not reached,
  and the packer moves all its movable pods onto the nodes that stay. A candidate that takes
  some of those pods stays in this plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from autoscaler.model.constraints import effective_requests
from autoscaler.model.disruption import (
    EVICTION_NOTICE_TAINT,
    SAFE_TO_EVICT,
    SCALE_DOWN_DISABLED,
    NodeRemoval,
    PodDisruptionBudget,
    ScaleDownPlan,
    allowed_disruptions,
    annotation,
)
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod
from autoscaler.model.pool import NodeOption
from autoscaler.model.resources import CPU, GPU, MEMORY, Resources
from autoscaler.model.state import ClusterState
from autoscaler.planner.encode import Usage, bound_usage

KUBE_SYSTEM = "kube-system"
MIN_UTILISATION = 0.01  # floor of the divisor in price per utilisation: empty-ish nodes


@dataclass(frozen=True, slots=True)
class ScaleDownParams:
    """``eligible``: only these nodes may be removed (None: any); the others still take pods.
    ``max_nodes``: the most nodes this plan removes (None: no cap)."""

    threshold: float = 0.5
    max_nodes: int | None = None
    eligible: frozenset[str] | None = None


def ignored(pod: Pod) -> bool:
    """DaemonSet and mirror pods: they go with their node, and never block it."""
    return pod.daemonset or pod.mirror


def pod_blocker(pod: Pod, pdbs: Sequence[PodDisruptionBudget]) -> str | None:
    """Why ``pod`` keeps its node (None when it may be evicted)."""
    safe = annotation(pod.annotations, SAFE_TO_EVICT)
    if safe == "false":
        return f"pod {pod.key} is annotated safe-to-evict=false"
    if safe == "true":
        return None
    if not pod.owner:
        return f"pod {pod.key} has no controller"
    if pod.local_storage:
        return f"pod {pod.key} has local storage"
    if pod.namespace == KUBE_SYSTEM and not any(p.selects(pod) for p in pdbs):
        return f"pod {pod.key} is in kube-system without a PodDisruptionBudget"
    return None


def leaving(node: Node) -> bool:
    """A Spot node with an eviction notice: AKS deletes it, there is nothing to drain."""
    return any(t.key == EVICTION_NOTICE_TAINT for t in node.taints)


def utilisation(node: Node, requested: Resources) -> float:
    """The largest requested/allocatable share over cpu, memory and GPU (axes it has)."""
    shares = [
        requested.get_units(axis) / node.allocatable.get_units(axis)
        for axis in (CPU, MEMORY, GPU)
        if node.allocatable.get_units(axis) > 0
    ]
    return max(shares, default=0.0)


def disruption_budget(nodes: int, fraction: float) -> int:
    """Nodes that may be disrupted at once: ``fraction`` of ``nodes`` rounded up, at least 1
    when there is any node (a percentage budget rounds up, as Karpenter's does)."""
    if nodes <= 0:
        return 0
    return max(1, -(-round(fraction * 10_000) * nodes // 10_000))


@dataclass(slots=True)
class Candidate:
    node: Node
    pool: str
    utilisation: float
    price: float
    movable: list[Pod]  # pods to evict, by key

    @property
    def empty(self) -> bool:
        return not self.movable


@dataclass(slots=True)
class Survey:
    """Every registered node sorted into candidates (by first-order key) and kept ones."""

    candidates: list[Candidate]
    kept: dict[str, str]  # node -> why it is not considered
    destinations: list[str]  # nodes that may take pods, non-candidates first
    # ``encode.bound_usage`` of the state: requests and bound pods (in the state's order; the
    # candidates' ``movable`` are sorted by pod key) per node
    usage: Usage = field(default_factory=dict)


def _by_key(pod: Pod) -> str:
    return pod.key


def survey(state: ClusterState, params: ScaleDownParams) -> Survey:
    managed = {o.pool: o for o in state.options}
    usage = bound_usage(state)  # requests per node, computed once per distinct pod spec
    candidates: list[Candidate] = []
    kept: dict[str, str] = {}
    usable: list[str] = []
    for node in sorted(state.nodes, key=lambda n: n.name):
        requested, pods = usage.get(node.name, (Resources(), []))
        why, takes_pods = _node_blocker(node, managed, params)
        if takes_pods:
            usable.append(node.name)
        if why is not None:
            kept[node.name] = why
            continue
        share = utilisation(node, requested)
        if share >= params.threshold:
            kept[node.name] = f"utilisation {share:.2f} >= {params.threshold:g}"
            continue
        pods = sorted(pods, key=_by_key)  # blockers and moves in pod-key order; only here:
        # sorting every node's pods on every pass was most of a pass's cost
        blockers = [b for b in (pod_blocker(p, state.pdbs) for p in pods if not ignored(p)) if b]
        if blockers:
            kept[node.name] = blockers[0]
            continue
        movable = [p for p in pods if not ignored(p)]
        price = managed[node.pool or ""].price_per_hour
        candidates.append(Candidate(node, node.pool or "", share, price, movable))
    zones = _zone_counts(state.nodes, usable)
    candidates.sort(key=lambda c: _rank(c, zones))
    names = {c.node.name for c in candidates}
    destinations = [n for n in usable if n not in names]
    destinations += [c.node.name for c in reversed(candidates)]
    return Survey(candidates, kept, destinations, usage)


def _node_blocker(
    node: Node, managed: Mapping[str, NodeOption], params: ScaleDownParams
) -> tuple[str | None, bool]:
    """Why the node is not a candidate (None: it is one), and whether it may take pods."""
    if leaving(node):
        return "leaving: Spot eviction notice", False
    if not node.ready:
        return "not ready", False
    if node.unschedulable:
        return "cordoned", False
    if annotation(node.annotations, SCALE_DOWN_DISABLED) == "true":
        return "scale-down disabled by annotation", True
    if node.pool is None or node.pool not in managed:
        return "pool not managed", True
    if params.eligible is not None and node.name not in params.eligible:
        return "not unneeded long enough", True
    return None, True


def _zone_counts(nodes: Iterable[Node], usable: Iterable[str]) -> dict[str, int]:
    keep = set(usable)
    counts: dict[str, int] = {}
    for node in nodes:
        if node.name in keep:
            zone = node.zone or ""
            counts[zone] = counts.get(zone, 0) + 1
    return counts


def _rank(c: Candidate, zones: dict[str, int]) -> tuple[bool, float, int, str]:
    per_share = round(c.price / max(c.utilisation, MIN_UTILISATION), 6)
    return (not c.empty, -per_share, -zones.get(c.node.zone or "", 0), c.node.name)


Moves = tuple[tuple[str, str], ...]  # (pod key, node), sorted by pod key


class Packer(Protocol):
    def try_remove(self, candidate: Candidate) -> Moves | str:
        """Move the candidate's movable pods onto nodes that stay and keep the moves (returns
        where each pod went), or change nothing and say why they do not fit (a str)."""
        ...


def select(
    state: ClusterState, params: ScaleDownParams, found: Survey, packer: Packer
) -> ScaleDownPlan:
    """Try candidates in order (ties re-ranked by zone counts as nodes go) and build the plan."""
    pools = {p.name: p for p in state.pools}
    left = {name: pool.count for name, pool in pools.items()}
    budgets = {pdb.key: allowed_disruptions(pdb, state.pods) for pdb in state.pdbs}
    zones = _zone_counts(state.nodes, found.destinations)
    remaining = list(found.candidates)
    kept = dict(found.kept)
    chosen: list[NodeRemoval] = []
    cap = params.max_nodes
    while remaining:
        best = min(remaining, key=lambda c: _rank(c, zones))
        remaining.remove(best)
        name = best.node.name
        if cap is not None and len(chosen) >= cap:
            kept[name] = "disruption budget reached"
            continue
        pool = pools.get(best.pool)
        if pool is not None and left[best.pool] - 1 < pool.min_count:
            kept[name] = f"pool {best.pool} at min {pool.min_count}"
            continue
        hits: dict[str, int] = {}
        for pdb in state.pdbs:
            n = sum(pdb.selects(p) for p in best.movable)
            if n:
                hits[pdb.key] = n
        short = sorted(k for k, n in hits.items() if n > budgets[k])
        if short:
            kept[name] = f"PodDisruptionBudget {short[0]} allows {budgets[short[0]]} disruptions"
            continue
        moves = packer.try_remove(best)
        if isinstance(moves, str):
            kept[name] = moves
            continue
        # A node that took moved pods stays: removing it too would need those pods placed
        # again, and a plan places each pod once.
        receivers = {node for _, node in moves}
        for other in [c for c in remaining if c.node.name in receivers]:
            remaining.remove(other)
            kept[other.node.name] = f"takes pods of {name}"
        for key, n in hits.items():
            budgets[key] -= n
        if pool is not None:
            left[best.pool] -= 1
        zone = best.node.zone or ""
        zones[zone] = zones.get(zone, 0) - 1
        chosen.append(
            NodeRemoval(
                name,
                best.pool,
                round(best.utilisation, 6),
                best.price,
                tuple(p.key for p in best.movable),
                moves,
            )
        )
    return ScaleDownPlan(tuple(chosen), tuple(sorted(kept.items())))


def move_order(pods: Sequence[Pod]) -> list[Pod]:
    """The order a candidate's pods are placed in: higher priority, then larger cpu and
    memory requests first (first-fit decreasing), then owner, then name; identical replicas
    are therefore consecutive."""

    def key(pod: Pod) -> tuple[int, int, int, str, str]:
        req = effective_requests(pod)
        return (-pod.priority, -req.get_units(CPU), -req.get_units(MEMORY), pod.owner, pod.key)

    return sorted(pods, key=key)
