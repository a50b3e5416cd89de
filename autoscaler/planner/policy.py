"""Choice policy and topology rules shared by the vectorized and the scalar planner.

Callers: ``planner.encode``, ``planner.scaleup`` and ``planner.reference``. What is decided here
(tiers, the ranking of options for a group, backoff, per-node and per-zone topology limits) is
policy; how pods are then packed is each planner's own code, so that the scalar planner checks
the vectorized one.

Topology simplifications, documented in docs/planner.md: for hostname spread and self
anti-affinity, the global minimum is taken as 0 (a new node starts empty), so a node takes at
most ``maxSkew`` (resp. 1) pods of the group; zone spread is planned by giving each eligible
zone a quota, lowest count first, as kube-scheduler would place pods one at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from autoscaler.model.constraints import (
    label_selector_matches,
    selects,
    spread_headroom,
    spread_min,
)
from autoscaler.model.labels import HOSTNAME_LABEL, ZONE_LABEL, Labels, LabelSelector
from autoscaler.model.plan import Backoff, Policy
from autoscaler.model.pod import Pod
from autoscaler.model.pool import NodeOption
from autoscaler.planner.groups import PodGroup


def option_tiers(options: Sequence[NodeOption], policy: Policy) -> list[int]:
    """Tier index of each option: the first tier naming its priority or its pool."""
    tiers: list[int] = []
    for option in options:
        names = {option.priority.value.lower(), option.pool.lower()}
        tier = next(
            (i for i, sel in enumerate(policy.priority_tiers) if names & {s.lower() for s in sel}),
            len(policy.priority_tiers),
        )
        tiers.append(tier)
    return tiers


def backoff_reason(option: NodeOption, backoffs: Sequence[Backoff], now: datetime) -> str | None:
    """Reason text if ``option`` is in backoff at ``now`` (the latest-ending entry wins)."""
    active = [
        b
        for b in backoffs
        if b.until > now
        and b.vm_size.lower() == option.vm_size.lower()
        and b.priority == option.priority
        and (b.zone is None or b.zone == option.zone)
    ]
    if not active:
        return None
    last = max(active, key=lambda b: (b.until, b.reason))
    return f"pool {option.pool} in backoff until {last.until:%H:%M:%S} ({last.reason})"


@dataclass(frozen=True, slots=True)
class HostCap:
    per_node: int
    selector: LabelSelector | None  # pods counted against the cap on existing nodes


def hostname_cap(group: PodGroup) -> HostCap | None:
    """Pods of the group one node may hold, from self anti-affinity and hostname spread."""
    pod = group.pod
    own = dict(pod.labels)
    caps: list[HostCap] = []
    for term in pod.anti_affinity:
        if term.topology_key == HOSTNAME_LABEL and label_selector_matches(term.label_selector, own):
            caps.append(HostCap(1, term.label_selector))
    for spread in pod.topology_spread:
        if (
            spread.topology_key == HOSTNAME_LABEL
            and spread.when_unsatisfiable == "DoNotSchedule"
            and label_selector_matches(spread.label_selector, own)
        ):
            caps.append(HostCap(spread_headroom(spread.max_skew, 0, 0), spread.label_selector))
    return min(caps, key=lambda c: c.per_node) if caps else None


@dataclass(frozen=True, slots=True)
class ZoneSpread:
    """A required zone spread: eligible zones (sorted) and matching pods already in each."""

    max_skew: int
    min_domains: int
    zones: tuple[str, ...]
    existing: tuple[int, ...]

    def quotas(self, pods: int, room: Mapping[str, int] | None = None) -> dict[str, int]:
        """Pods of the group each zone should receive, as the scheduler would place them.

        Pods go to the zones with the fewest first. When they cannot be shared evenly, the
        zones level at the end take one more each, in an order given by ``room``: the pods of
        the group that nodes the plan already knows in each zone can take. First come zones
        with room left after their share, where the extra pod needs no node. Next come zones
        whose share opens new nodes anyway, which usually have space for one more. Last come
        zones whose room the share fills exactly, where the extra pod would open a node for
        itself. Ties go by zone order. That is also where the scheduler, placing pods one at a
        time, ends up: in the zone whose nodes have space.
        """
        counts = dict(zip(self.zones, self.existing, strict=True))
        floor = spread_min(counts, self.zones, self.min_domains)
        bounded = floor == 0 and len(self.zones) < self.min_domains
        caps = [spread_headroom(self.max_skew, c, 0) if bounded else pods for c in self.existing]
        tie = None
        if room is not None:
            free = [room.get(z, 0) for z in self.zones]

            def tie(i: int, share: int) -> int:
                return 0 if free[i] > share else 1 if free[i] < share else 2

        given = waterfill(list(self.existing), caps, pods, tie)
        return dict(zip(self.zones, given, strict=True))


class BoundIndex:
    """Bound pods counted by (namespace, labels) per zone: a selector is then evaluated once
    per distinct label set instead of once per pod (clusters run many replicas of few specs).
    """

    def __init__(self, zone_pods: Iterable[tuple[str | None, Sequence[Pod]]]) -> None:
        self._source: Iterable[tuple[str | None, Sequence[Pod]]] | None = zone_pods
        self.example: dict[tuple[str, Labels], Pod] = {}
        self.counts: dict[tuple[str, Labels], dict[str, int]] = {}

    def _build(self) -> None:
        """Index on first use: most plans have no zone-spread group and never need it."""
        if self._source is None:
            return
        zone_pods, self._source = self._source, None
        for zone, pods in zone_pods:
            if zone is None:
                continue
            for pod in pods:
                key = (pod.namespace, pod.labels)
                self.example.setdefault(key, pod)
                per_zone = self.counts.setdefault(key, {})
                per_zone[zone] = per_zone.get(zone, 0) + 1

    def per_zone(self, selector: LabelSelector, namespace: str) -> dict[str, int]:
        """Bound pods ``selector`` (of a pod in ``namespace``) counts, per zone."""
        self._build()
        out: dict[str, int] = {}
        for key, pod in self.example.items():
            if selects(pod, selector, namespace):
                for zone, n in self.counts[key].items():
                    out[zone] = out.get(zone, 0) + n
        return out


def zone_spread_of(
    group: PodGroup,
    node_zones: Sequence[str | None],
    node_ok: Sequence[bool],
    bound: BoundIndex,
    options: Sequence[NodeOption],
    option_ok: Sequence[bool],
) -> ZoneSpread | None:
    """The tightest required zone spread whose selector counts the group's own pods.

    Eligible zones are those of nodes and options the group may use (nodeAffinityPolicy
    Honor); existing counts are the selected pods bound to nodes of those zones.
    """
    pod = group.pod
    own = dict(pod.labels)
    spreads = [
        s
        for s in pod.topology_spread
        if s.topology_key == ZONE_LABEL
        and s.when_unsatisfiable == "DoNotSchedule"
        and label_selector_matches(s.label_selector, own)
    ]
    if not spreads:
        return None
    spread = min(spreads, key=lambda s: (s.max_skew, -s.min_domains))
    zones = {z for z in itertools.compress(node_zones, node_ok) if z}
    zones.update(o.zone for o in itertools.compress(options, option_ok) if o.zone)
    counted = bound.per_zone(spread.label_selector, pod.namespace)
    ordered = tuple(sorted(zones))
    return ZoneSpread(
        spread.max_skew,
        spread.min_domains,
        ordered,
        tuple(counted.get(z, 0) for z in ordered),
    )


def waterfill(
    levels: list[int],
    caps: list[int],
    total: int,
    tie: Callable[[int, int], int] | None = None,
) -> list[int]:
    """Give ``total`` units one at a time to the lowest level, within caps.

    Closed form of that greedy loop: find the highest water level L that the units fill
    completely, then hand the remainder to the slots sitting at L, one each, in the order of
    ``tie(slot, units given so far)`` (lowest first), then index.
    """

    def given(level: int) -> list[int]:
        return [min(c, max(0, level - v)) for v, c in zip(levels, caps, strict=True)]

    total = min(total, sum(caps))
    low, high = min(levels, default=0), max(levels, default=0) + total
    while low < high:  # largest level whose fill does not exceed total
        mid = (low + high + 1) // 2
        if sum(given(mid)) <= total:
            low = mid
        else:
            high = mid - 1
    out = given(low)
    rest = total - sum(out)
    at_level = [i for i, (v, c) in enumerate(zip(levels, caps, strict=True))
                if v + out[i] == low and out[i] < c]
    if tie is not None:
        at_level.sort(key=lambda i: (tie(i, out[i]), i))
    for i in at_level[:rest]:
        out[i] += 1
    return out


def pods_per_node(req: Sequence[int], alloc: Sequence[int], cap: int) -> int:
    """How many pods with requests ``req`` fit one empty node with ``alloc``, at most ``cap``."""
    fit = cap
    for need, have in zip(req, alloc, strict=True):
        if need > 0:
            fit = min(fit, have // need)
    return max(0, fit)


def name_ranks(options: Sequence[NodeOption]) -> npt.NDArray[np.int64]:
    """``(n_options,)`` rank of each option's pool name: the last tie-breaker everywhere."""
    ranks = {name: i for i, name in enumerate(sorted(o.pool for o in options))}
    return np.array([ranks[o.pool] for o in options], dtype=np.int64)


def rank_row(
    candidates: Sequence[int],
    tiers: Sequence[int],
    prices: Sequence[float],
    per_node: Sequence[int] | Mapping[int, int],
    name_rank: Sequence[int],
) -> list[list[int]]:
    """The options of one group best first, cut into classes of equal (tier, price per pod).

    Sort key: tier, then ``price / per_node``, then pool name; ``candidates`` are the options
    the group is compatible with, ``per_node`` (indexed by option) the pods a new node will
    hold, options holding none are left out. The options of one class differ only in zone
    (or name): the planners spread a group's new nodes over a class, lowest zone count first.
    This is the definition; the scalar reference applies it literally for every pod it
    places, and ``planner.choice`` finds the same best class faster for the kernel.
    """
    usable = [o for o in candidates if per_node[o] > 0]
    usable.sort(key=lambda o: (tiers[o], prices[o] / per_node[o], name_rank[o]))
    classes: list[list[int]] = []
    last: tuple[int, float] | None = None
    for o in usable:
        key = (tiers[o], prices[o] / per_node[o])
        if key == last:
            classes[-1].append(o)
        else:
            classes.append([o])
            last = key
    return classes
