"""Equivalence groups of pending pods, and the order in which the planners visit them.

Callers: ``planner.encode`` (vectorized planner) and ``planner.reference`` (scalar planner) both
group and order pods through this module, so the two planners differ only in how they place.

Two pending pods are equivalent when they have the same owner and the same scheduling-relevant
spec: effective requests, node selector, required node affinity, tolerations, required
topology spread and anti-affinity, volume zones, priority, and the labels their own selectors
look at. A StatefulSet's per-pod labels therefore do not split it, unless a selector reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from autoscaler.model.constraints import effective_requests, label_selector_matches
from autoscaler.model.labels import Labels
from autoscaler.model.pod import Pod
from autoscaler.model.resources import Resources


@dataclass(frozen=True, slots=True)
class PodGroup:
    """Pending pods that the scheduler cannot tell apart. ``pod`` is the first by name."""

    key: str
    pod: Pod
    pods: tuple[str, ...]  # pod names, sorted; all pods of a group share its namespace
    requests: Resources  # effective requests of one pod (includes pods=1)

    @property
    def count(self) -> int:
        return len(self.pods)

    @property
    def self_selecting(self) -> bool:
        """Whether a required anti-affinity term selects the group's own pods."""
        own = dict(self.pod.labels)
        return any(
            label_selector_matches(term.label_selector, own) for term in self.pod.anti_affinity
        )


def _selector_keys(pod: Pod) -> frozenset[str]:
    keys: set[str] = set()
    selectors = [c.label_selector for c in pod.topology_spread]
    selectors += [t.label_selector for t in pod.anti_affinity]
    for selector in selectors:
        keys.update(k for k, _ in selector.match_labels)
        keys.update(e.key for e in selector.match_expressions)
    return frozenset(keys)


# The spec fields that make two pods of one owner schedule differently (with the priority and,
# for pods whose selectors read them, their labels): the signature reads them, and the run
# check in ``group_pending`` compares them.
SPEC_FIELDS = (
    "containers",
    "init_containers",
    "overhead",
    "node_selector",
    "required_affinity",
    "tolerations",
    "topology_spread",
    "anti_affinity",
    "volume_zones",
)
_SPEC = attrgetter(*SPEC_FIELDS)


def _signature(pod: Pod) -> tuple[object, ...]:
    """Everything that makes two pods of one owner schedule differently.

    Containers stand in for effective requests (equal containers give equal requests), so
    requests are computed once per group, not once per pod.
    """
    relevant: Labels = ()
    if pod.topology_spread or pod.anti_affinity:
        keys = _selector_keys(pod)
        relevant = tuple((k, v) for k, v in pod.labels if k in keys)
    return (*_SPEC(pod), pod.priority, relevant)


def placement_signature(pod: Pod) -> tuple[object, ...]:
    """The fields ``constraints.node_mismatch`` reads: pods with equal signatures pass or fail
    the static predicates on every node alike, so callers may evaluate them once."""
    return (
        pod.node_selector,
        pod.required_affinity,
        pod.tolerations,
        pod.volume_zones,
        tuple(
            s.topology_key for s in pod.topology_spread if s.when_unsatisfiable == "DoNotSchedule"
        ),
    )


_by_name = attrgetter("name")
_LINEAR = 8  # signatures per owner compared one by one before switching to a hash table


def group_pending(pods: Iterable[Pod]) -> tuple[PodGroup, ...]:
    """Group the pending pods (``node_name is None``) of ``pods``; groups sorted by key.

    Pods are bucketed by (namespace, owner) first, whose string hashes are cached, and then
    compared with the few signatures their owner has: tuple equality stops at shared objects,
    so grouping 100k pods stays linear with a small constant.
    """
    owners: dict[tuple[str, str], list[tuple[tuple[object, ...], list[Pod]]]] = {}
    hashed: dict[tuple[str, str], dict[tuple[object, ...], list[Pod]]] = {}
    last: Pod | None = None  # the previous pending pod, and the members list it went to
    last_members: list[Pod] = []
    for pod in pods:
        if pod.node_name is not None:
            continue
        # Replicas usually come in runs sharing spec objects: pointer comparisons of the
        # ``SPEC_FIELDS`` (spelled out: twice as fast as comparing attrgetter tuples;
        # tests/unit/test_groups.py checks that every one of them splits a run).
        if (
            last is not None
            and pod.containers is last.containers
            and pod.init_containers is last.init_containers
            and pod.overhead is last.overhead
            and pod.node_selector is last.node_selector
            and pod.required_affinity is last.required_affinity
            and pod.tolerations is last.tolerations
            and pod.topology_spread is last.topology_spread
            and pod.anti_affinity is last.anti_affinity
            and pod.volume_zones is last.volume_zones
            and pod.priority == last.priority
            and pod.owner == last.owner
            and pod.namespace == last.namespace
            and (not (pod.topology_spread or pod.anti_affinity) or pod.labels is last.labels)
        ):
            last_members.append(pod)  # so it has last's signature: same group
            continue
        owner = (pod.namespace, pod.owner)
        signature = _signature(pod)
        table = hashed.get(owner)
        if table is not None:
            last, last_members = pod, table.setdefault(signature, [])
            last_members.append(pod)
            continue
        entries = owners.setdefault(owner, [])
        for known, members in entries:
            if known == signature:
                members.append(pod)
                break
        else:
            members = [pod]
            entries.append((signature, members))
            if len(entries) > _LINEAR:
                hashed[owner] = dict(entries)
                del owners[owner]
        last, last_members = pod, members

    buckets = [members for entries in owners.values() for _, members in entries]
    buckets += [members for table in hashed.values() for members in table.values()]
    named: list[tuple[str, list[Pod]]] = []
    for members in buckets:
        members.sort(key=_by_name)
        first = members[0]
        named.append((f"{first.namespace}/{first.owner}" if first.owner else first.key, members))
    named.sort(key=lambda item: (item[0], item[1][0].namespace, item[1][0].name))

    groups: list[PodGroup] = []
    seen: dict[str, int] = {}
    for base, members in named:
        n = seen.get(base, 0)
        seen[base] = n + 1
        key = base if n == 0 else f"{base}#{n + 1}"
        requests = effective_requests(members[0])
        groups.append(PodGroup(key, members[0], tuple(map(_by_name, members)), requests))
    return tuple(groups)


def visit_order(
    groups: Sequence[PodGroup],
    req: Sequence[Sequence[int]],
    scale: Sequence[int],
    best_tier: Sequence[int],
    pinned: Sequence[bool],
) -> list[int]:
    """Indices of ``groups`` in the order both planners place them.

    Higher pod priority first (the scheduler serves it first); then the less flexible groups,
    whose best usable option sits in a later policy tier (pods that cannot use spot open the
    regular nodes, whose slack spot-tolerant pods then fill, not the other way round); then
    pinned groups, which a predicate keeps off an option of their best tier that their pods
    would fit (a node selector on a labelled pool): their pods fill the nodes they open before
    flexible pods take that room, for the same reason; then larger size, the sum over axes of
    the share of the largest option (first-fit *decreasing*: big pods open nodes, small ones
    fill gaps; the sum, unlike the dominant share alone, puts a pod large on two axes ahead of
    one large on one); then key. ``req[g][r]`` are group requests, ``scale[r]`` the largest
    allocatable per axis (0 when no option has the axis), ``best_tier[g]`` the lowest tier
    among the group's usable options, ``pinned[g]`` as above.
    """

    axes = [r for r in range(len(scale)) if scale[r] > 0]
    size = [sum(row[r] / scale[r] for r in axes) for row in req]
    return sorted(
        range(len(groups)),
        key=lambda g: (
            -groups[g].pod.priority,
            -best_tier[g],
            not pinned[g],
            -size[g],
            groups[g].key,
        ),
    )
