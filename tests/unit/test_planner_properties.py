"""Property tests over thousands of random clusters: the planners' invariants.

The vectorized planner must make exactly the plan the scalar reference makes pod by pod; plans
never exceed a pool max or a cluster limit; every planned node holds what it was given; every
pending pod is placed or has a reason; the plan does not depend on input order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.model.constraints import effective_requests
from autoscaler.model.labels import HOSTNAME_LABEL, ZONE_LABEL, LabelSelector
from autoscaler.model.node import Taint
from autoscaler.model.plan import Backoff, ClusterLimits, Policy, ScaleUpPlan
from autoscaler.model.pod import AntiAffinity, Pod, Toleration, TopologySpread
from autoscaler.model.pool import Priority
from autoscaler.model.resources import Resources
from autoscaler.model.state import ClusterState
from autoscaler.planner.groups import group_pending
from autoscaler.planner.reference import plan_reference
from autoscaler.planner.scaleup import plan_scale_up
from tests.builders import SPOT_TOLERATION, GiB, MiB, node, option, pod, pool, state

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GPU_TAINT = Taint("nvidia.com/gpu", "true")
SIZES = [
    (2000, 4 * GiB, 0.10),
    (4000, 16 * GiB, 0.19),
    (8000, 32 * GiB, 0.38),
    (16000, 64 * GiB, 0.77),
]


@st.composite
def clusters(draw: st.DrawFn) -> ClusterState:
    zones = draw(st.integers(1, 3))
    pools, options = [], []
    for i in range(draw(st.integers(1, 5))):
        cpu, mem, price = draw(st.sampled_from(SIZES))
        spot = draw(st.booleans())
        zone_set = (str(draw(st.integers(1, zones))),) if draw(st.integers(0, 4)) else ("1", "2")
        p = pool(
            f"p{i}",
            f"Standard_S{cpu // 1000}",
            zones=zone_set,
            priority=Priority.SPOT if spot else Priority.REGULAR,
            count=draw(st.integers(0, 2)),
            max_count=draw(st.integers(0, 8)),
            labels=(("disk", "ssd"),) if draw(st.integers(0, 4)) == 0 else (),
            taints=(GPU_TAINT,) if draw(st.integers(0, 5)) == 0 else (),
            max_pods=draw(st.sampled_from([8, 30, 110])),
        )
        pools.append(p)
        gpus = 1 if p.taints else 0
        options.append(
            option(
                p,
                cpu - 200,
                mem - GiB,
                price=price * (0.3 if spot else 1.0),
                vcpus=cpu // 1000,
                gpus=gpus,
            )
        )
    pods: list[Pod] = []
    for g in range(draw(st.integers(1, 5))):
        app = f"app{g}"
        sel = LabelSelector((("app", app),))
        fields: dict[str, object] = {}
        tolerations = []
        if draw(st.booleans()):
            tolerations.append(SPOT_TOLERATION)
        if draw(st.integers(0, 4)) == 0:
            tolerations.append(Toleration("nvidia.com/gpu", "Exists"))
        fields["tolerations"] = tuple(tolerations)
        if draw(st.integers(0, 5)) == 0:
            fields["node_selector"] = (("disk", "ssd"),)
        kind = draw(st.integers(0, 9))
        if kind == 0:
            fields["anti_affinity"] = (AntiAffinity(HOSTNAME_LABEL, sel),)
        elif kind == 1:
            fields["topology_spread"] = (
                TopologySpread(draw(st.integers(1, 3)), HOSTNAME_LABEL, label_selector=sel),
            )
        elif kind in (2, 3):
            fields["topology_spread"] = (
                TopologySpread(
                    draw(st.integers(1, 2)),
                    ZONE_LABEL,
                    label_selector=sel,
                    min_domains=draw(st.integers(1, 4)),
                ),
            )
        elif kind == 4:
            fields["volume_zones"] = (f"eastus-{draw(st.integers(1, zones))}",)
        cpu = draw(st.integers(1, 60)) * 100
        mem = draw(st.integers(1, 80)) * 256 * MiB
        priority = draw(st.sampled_from([0, 0, 100]))
        gpu = 1 if draw(st.integers(0, 5)) == 0 else 0
        for i in range(draw(st.integers(0, 25))):
            pods.append(
                pod(
                    f"{app}-{i}",
                    cpu,
                    mem,
                    owner=f"ReplicaSet/{app}",
                    gpu=gpu,
                    labels={"app": app},
                    priority=priority,
                    **fields,
                )
            )
    nodes = []
    for i in range(draw(st.integers(0, 4))):
        p = draw(st.sampled_from(pools))
        cpu, mem, _ = next(s for s in SIZES if f"Standard_S{s[0] // 1000}" == p.vm_size)
        zone = f"eastus-{p.zones[0]}" if len(p.zones) == 1 else None
        n = node(
            f"node-{i}",
            cpu - 200,
            mem - GiB,
            pool=p.name,
            zone=zone,
            labels=dict(p.labels),
            taints=option(p).template.taints,
            unschedulable=draw(st.integers(0, 6)) == 0,
        )
        nodes.append(n)
        for j in range(draw(st.integers(0, 4))):
            app = f"app{draw(st.integers(0, 4))}"
            pods.append(
                pod(
                    f"bound-{i}-{j}",
                    draw(st.integers(1, 20)) * 100,
                    GiB // 2,
                    owner=f"ReplicaSet/{app}",
                    labels={"app": app},
                    node_name=n.name,
                )
            )
    backoffs = ()
    if draw(st.integers(0, 3)) == 0:
        p = draw(st.sampled_from(pools))
        zone = f"eastus-{p.zones[0]}" if len(p.zones) == 1 else None
        backoffs = (
            Backoff(p.vm_size, zone, p.priority, NOW + timedelta(minutes=5), "QuotaExceeded"),
        )
    limits = ClusterLimits(
        max_nodes=draw(st.none() | st.integers(0, 12)),
        max_cores=draw(st.none() | st.integers(0, 80)),
        max_memory_bytes=draw(st.none() | st.integers(0, 300).map(lambda x: x * GiB)),
    )
    policy = Policy(max_new_nodes=draw(st.none() | st.integers(0, 10)))
    return state(
        pools, options, pods, nodes, backoffs=backoffs, limits=limits, policy=policy, now=NOW
    )


SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(clusters())
def test_the_vectorized_planner_makes_exactly_the_plan_of_the_scalar_reference(
    cluster: ClusterState,
) -> None:
    assert plan_scale_up(cluster) == plan_reference(cluster)


def _check_invariants(cluster: ClusterState, plan: ScaleUpPlan) -> None:
    pools = {p.name: p for p in cluster.pools}
    options = {o.pool: o for o in cluster.options}
    added = 0
    cores = 0
    memory = 0
    for target in plan.pool_targets:
        assert target.delta >= 0
        if target.delta:
            assert target.target <= pools[target.pool].max_count
        added += target.delta
        cores += target.delta * options[target.pool].template.vcpus
        memory += target.delta * options[target.pool].template.memory_bytes
    assert added == len(plan.new_nodes)
    limits, policy = cluster.limits, cluster.policy
    existing = sum(p.count for p in cluster.pools)
    if limits.max_nodes is not None and added:
        assert existing + added <= limits.max_nodes
    if policy.max_new_nodes is not None:
        assert added <= policy.max_new_nodes
    if limits.max_cores is not None and added:
        assert (
            sum(p.count * options[p.name].template.vcpus for p in cluster.pools) + cores
            <= limits.max_cores
        )
    if limits.max_memory_bytes is not None and added:
        used = sum(p.count * options[p.name].template.memory_bytes for p in cluster.pools)
        assert used + memory <= limits.max_memory_bytes

    requests = {g.key: g.requests for g in group_pending(cluster.pods)}
    for planned in plan.new_nodes:
        total = Resources()
        for key, k in planned.pods:
            total = total + Resources.of({a: v * k for a, v in requests[key].items()})
        alloc = options[planned.option].template.allocatable
        assert all(total.get_units(a) <= alloc.get_units(a) for a in total), planned

    pending = [p for p in cluster.pods if p.node_name is None]
    assert sum(g.pods for g in plan.groups) == len(pending)
    for g in plan.groups:
        placed = g.on_existing + g.on_upcoming + sum(k for _, k in g.on_new)
        assert placed + g.unplaced == g.pods
        assert (g.reason is not None) == (g.unplaced > 0), g


@SETTINGS
@given(clusters())
def test_plans_respect_limits_and_capacity_and_account_for_every_pod(cluster: ClusterState) -> None:
    _check_invariants(cluster, plan_scale_up(cluster))


@settings(max_examples=300, deadline=None)
@given(clusters(), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_order_of_pods_and_nodes(
    cluster: ClusterState, rnd
) -> None:  # type: ignore[no-untyped-def]
    pods, nodes = list(cluster.pods), list(cluster.nodes)
    rnd.shuffle(pods)
    rnd.shuffle(nodes)
    shuffled = ClusterState(
        cluster.region,
        cluster.pools,
        cluster.options,
        tuple(nodes),
        tuple(pods),
        cluster.backoffs,
        cluster.limits,
        cluster.policy,
        cluster.now,
    )
    assert plan_scale_up(shuffled) == plan_scale_up(cluster)


def test_effective_requests_of_the_builders_pod_include_one_pod_slot() -> None:
    assert effective_requests(pod("x", 100, GiB)).get_units("pods") == 1
