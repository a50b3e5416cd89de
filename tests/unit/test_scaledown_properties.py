"""Property tests over random clusters: the scale-down planners' invariants.

The vectorized planner must choose exactly the nodes the scalar reference chooses pod by pod
(so it never removes a node whose pods cannot be placed elsewhere); a plan never spends more
of a PodDisruptionBudget than it allows, never takes a pool below its minimum, never exceeds
its node cap, and never removes a node that a blocker protects. The blocker checks are
restated here from the rules, not taken from the planner's code.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.model.constraints import effective_requests
from autoscaler.model.disruption import (
    EVICTION_NOTICE_TAINT,
    PodDisruptionBudget,
    ScaleDownPlan,
    allowed_disruptions,
)
from autoscaler.model.labels import HOSTNAME_LABEL, ZONE_LABEL, LabelSelector
from autoscaler.model.node import Taint
from autoscaler.model.pod import MIRROR_ANNOTATION, AntiAffinity, Pod, TopologySpread
from autoscaler.model.resources import Resources
from autoscaler.model.state import ClusterState
from autoscaler.planner.scaledown import plan_scale_down
from autoscaler.planner.scaledown_reference import plan_scale_down_reference
from autoscaler.planner.scaledown_rules import ScaleDownParams
from tests.builders import GiB, MiB, node, option, pod, pool, state

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SAFE = "cluster-autoscaler.kubernetes.io/safe-to-evict"


@st.composite
def clusters(draw: st.DrawFn) -> tuple[ClusterState, ScaleDownParams]:
    pools, options = [], []
    for i in range(draw(st.integers(1, 3))):
        zone = str(draw(st.integers(1, 2)))
        p = pool(
            f"p{i}",
            count=0,
            min_count=draw(st.sampled_from([0, 0, 1, 2])),
            zones=(zone,),
            labels=(("disk", "ssd"),) if draw(st.integers(0, 3)) == 0 else (),
        )
        pools.append(p)
    managed = [p for p in pools if draw(st.integers(0, 5))]
    options = [option(p, price=draw(st.sampled_from([0.1, 0.2, 0.4]))) for p in managed]
    nodes = []
    pods: list[Pod] = []
    counts: dict[str, int] = {}
    apps = [f"app{g}" for g in range(draw(st.integers(1, 4)))]
    specs = {}
    for app in apps:
        sel = LabelSelector((("app", app),))
        fields: dict[str, object] = {}
        kind = draw(st.integers(0, 8))
        if kind == 0:
            fields["anti_affinity"] = (AntiAffinity(HOSTNAME_LABEL, sel),)
        elif kind == 1:
            fields["topology_spread"] = (
                TopologySpread(draw(st.integers(1, 2)), HOSTNAME_LABEL, label_selector=sel),
            )
        elif kind == 2:
            fields["topology_spread"] = (TopologySpread(1, ZONE_LABEL, label_selector=sel),)
        elif kind == 3:
            fields["node_selector"] = (("disk", "ssd"),)
        elif kind == 4:  # keeps away from another app's pods (and they from it)
            other = LabelSelector((("app", apps[0]),))
            fields["anti_affinity"] = (AntiAffinity(HOSTNAME_LABEL, other),)
        namespace = "kube-system" if draw(st.integers(0, 6)) == 0 else "default"
        owner = draw(st.sampled_from(["ReplicaSet", "ReplicaSet", "DaemonSet", "", "StatefulSet"]))
        notes: tuple[tuple[str, str], ...] = ()
        if draw(st.integers(0, 6)) == 0:
            notes = ((SAFE, draw(st.sampled_from(["true", "false"]))),)
        specs[app] = dict(
            cpu=draw(st.integers(1, 10)) * 100,
            mem=draw(st.integers(1, 8)) * 256 * MiB,
            owner=f"{owner}/{app}" if owner else "",
            namespace=namespace,
            annotations=notes,
            local_storage=draw(st.integers(0, 8)) == 0,
            fields=fields,
        )
    for i in range(draw(st.integers(1, 8))):
        p = draw(st.sampled_from(pools))
        counts[p.name] = counts.get(p.name, 0) + 1
        taints = (Taint(EVICTION_NOTICE_TAINT, "true"),) if draw(st.integers(0, 20)) == 0 else ()
        notes = (("surge.io/scale-down-disabled", "true"),) if draw(st.integers(0, 10)) == 0 else ()
        n = node(
            f"node-{i}",
            draw(st.sampled_from([2000, 4000])),
            8 * GiB,
            pool=p.name,
            zone=f"eastus-{p.zones[0]}",
            labels=dict(p.labels),
            taints=taints,
            ready=draw(st.integers(0, 15)) > 0,
            unschedulable=draw(st.integers(0, 15)) == 0,
        )
        nodes.append(type(n)(**{**_fields(n), "annotations": notes}))
        for j in range(draw(st.integers(0, 5))):
            app = draw(st.sampled_from(apps))
            spec = specs[app]
            extra = dict(spec["fields"])  # type: ignore[call-overload]
            annotations = spec["annotations"]
            if spec["owner"] == "" and draw(st.integers(0, 3)) == 0:
                annotations = ((MIRROR_ANNOTATION, "x"),)
            pods.append(
                pod(
                    f"{app}-{i}-{j}",
                    spec["cpu"],  # type: ignore[arg-type]
                    spec["mem"],  # type: ignore[arg-type]
                    owner=spec["owner"],  # type: ignore[arg-type]
                    namespace=spec["namespace"],  # type: ignore[arg-type]
                    labels={"app": app},
                    node_name=n.name,
                    annotations=annotations,
                    local_storage=spec["local_storage"],
                    **extra,
                )
            )
    pools = [type(p)(**{**_fields(p), "count": counts.get(p.name, 0)}) for p in pools]
    pdbs = []
    for app in apps:
        if draw(st.integers(0, 2)) == 0:
            budget = draw(st.sampled_from([0, 1, 2, "50%"]))
            min_side = draw(st.booleans())
            pdbs.append(
                PodDisruptionBudget(
                    f"pdb-{app}",
                    specs[app]["namespace"],  # type: ignore[arg-type]
                    LabelSelector((("app", app),)),
                    min_available=budget if min_side else None,
                    max_unavailable=None if min_side else budget,
                )
            )
    cluster = state(pools, options, pods, nodes, pdbs=tuple(pdbs), now=NOW)
    names = [n.name for n in nodes]
    eligible = None
    if draw(st.integers(0, 3)) == 0:
        eligible = frozenset(n for n in names if draw(st.booleans()))
    params = ScaleDownParams(
        threshold=draw(st.sampled_from([0.3, 0.5, 0.5, 0.8, 1.01])),
        max_nodes=draw(st.none() | st.integers(0, 4)),
        eligible=eligible,
    )
    return cluster, params


def _fields(value: object) -> dict[str, object]:
    return {name: getattr(value, name) for name in type(value).__dataclass_fields__}


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(clusters())
def test_the_vectorized_scale_down_chooses_exactly_what_the_scalar_reference_chooses(
    case: tuple[ClusterState, ScaleDownParams],
) -> None:
    cluster, params = case
    assert plan_scale_down(cluster, params) == plan_scale_down_reference(cluster, params)


def _requested(pods: list[Pod]) -> Resources:
    total = Resources()
    for p in pods:
        total = total + effective_requests(p)
    return total


def _check(cluster: ClusterState, params: ScaleDownParams, plan: ScaleDownPlan) -> None:
    removed = set(plan.names)
    assert len(removed) == len(plan.remove)
    if params.max_nodes is not None:
        assert len(removed) <= params.max_nodes
    if params.eligible is not None:
        assert removed <= params.eligible
    by_name = {n.name: n for n in cluster.nodes}
    on: dict[str, list[Pod]] = {}
    for p in cluster.pods:
        if p.node_name is not None:
            on.setdefault(p.node_name, []).append(p)
    managed = {o.pool for o in cluster.options}
    for removal in plan.remove:
        n = by_name[removal.node]
        assert n.ready and not n.unschedulable and n.pool in managed
        assert not any(t.key == EVICTION_NOTICE_TAINT for t in n.taints)
        assert dict(n.annotations).get("surge.io/scale-down-disabled") != "true"
        held = on.get(n.name, [])
        requested = _requested(held)
        for axis in ("cpu", "memory"):
            assert requested.get_units(axis) < params.threshold * n.allocatable.get_units(axis)
        moved = []
        for p in held:
            if p.owner.startswith("DaemonSet/") or MIRROR_ANNOTATION in dict(p.annotations):
                continue
            moved.append(p.key)
            safe = dict(p.annotations).get(SAFE)
            assert safe != "false"
            if safe != "true":
                assert p.owner and not p.local_storage
                if p.namespace == "kube-system":
                    assert any(b.selects(p) for b in cluster.pdbs)
        assert sorted(moved) == list(removal.evict)
    evicted = [p for p in cluster.pods if p.key in {k for r in plan.remove for k in r.evict}]
    for pdb in cluster.pdbs:
        assert sum(pdb.selects(p) for p in evicted) <= allowed_disruptions(pdb, cluster.pods)
    for p in cluster.pools:
        gone = sum(by_name[name].pool == p.name for name in removed)
        if gone:
            assert p.count - gone >= p.min_count
    # A necessary condition of "every moved pod has a place": the nodes that stay can hold
    # the requests of every pod that stays or moves, axis by axis.
    stay = [
        n for n in cluster.nodes
        if n.name not in removed and n.ready and not n.unschedulable
        and not any(t.key == EVICTION_NOTICE_TAINT for t in n.taints)
    ]
    moving = _requested(evicted)
    for axis in ("cpu", "memory", "pods"):
        room = sum(
            max(0, n.allocatable.get_units(axis) - _requested(on.get(n.name, [])).get_units(axis))
            for n in stay
        )
        assert moving.get_units(axis) <= room


@SETTINGS
@given(clusters())
def test_scale_down_plans_keep_budgets_minimums_caps_and_every_blocker(
    case: tuple[ClusterState, ScaleDownParams],
) -> None:
    cluster, params = case
    _check(cluster, params, plan_scale_down(cluster, params))
