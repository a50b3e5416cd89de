"""The scale-up planner on hand-made clusters: where pods go and why they cannot go."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from autoscaler.model.labels import HOSTNAME_LABEL, ZONE_LABEL, LabelSelector, Operator, Requirement
from autoscaler.model.node import Taint
from autoscaler.model.plan import Backoff, ClusterLimits, Policy, ScaleUpPlan
from autoscaler.model.pod import (
    AntiAffinity,
    Container,
    NodeSelectorTerm,
    Toleration,
    TopologySpread,
)
from autoscaler.model.pool import Priority
from autoscaler.planner.groups import SPEC_FIELDS, group_pending, visit_order
from autoscaler.planner.reference import plan_reference
from autoscaler.planner.scaleup import plan_scale_up
from tests.builders import SPOT_TOLERATION, GiB, node, option, pod, pool, res, state

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
PLANNERS = [plan_scale_up, plan_reference]


def targets(plan: ScaleUpPlan) -> dict[str, int]:
    return {t.pool: t.delta for t in plan.pool_targets if t.delta}


def outcome(plan: ScaleUpPlan, key: str):  # type: ignore[no-untyped-def]
    return next(g for g in plan.groups if g.group == key)


def three_zone_cluster(*, spot_max: int = 10, reg_max: int = 10) -> tuple[list, list]:  # type: ignore[type-arg]
    pools, options = [], []
    for z in ("1", "2", "3"):
        spot = pool(f"spot{z}", zones=(z,), priority=Priority.SPOT, max_count=spot_max)
        reg = pool(f"reg{z}", zones=(z,), max_count=reg_max)
        pools += [spot, reg]
        options += [option(spot, price=0.04), option(reg, price=0.19)]
    return pools, options


def web(n: int, cpu_m: int = 1000, mem: int = GiB, **fields: object) -> list:  # type: ignore[type-arg]
    return [pod(f"web-{i}", cpu_m, mem, **fields) for i in range(n)]


@pytest.mark.parametrize("planner", PLANNERS)
def test_pods_that_fit_free_capacity_add_no_nodes(planner) -> None:  # type: ignore[no-untyped-def]
    pools, options = three_zone_cluster()
    plan = planner(state(pools, options, web(3), [node("n1", 4000, 16 * GiB, pool="reg1")]))
    assert targets(plan) == {}
    assert outcome(plan, "default/ReplicaSet/web").on_existing == 3


@pytest.mark.parametrize("planner", PLANNERS)
def test_spot_tolerating_pods_go_to_spot_spread_over_the_three_zones(planner) -> None:  # type: ignore[no-untyped-def]
    pools, options = three_zone_cluster()
    plan = planner(state(pools, options, web(18, tolerations=(SPOT_TOLERATION,))))
    assert targets(plan) == {"spot1": 2, "spot2": 2, "spot3": 2}


@pytest.mark.parametrize("planner", PLANNERS)
def test_pods_without_spot_toleration_go_to_regular_pools(planner) -> None:  # type: ignore[no-untyped-def]
    pools, options = three_zone_cluster()
    plan = planner(state(pools, options, web(9)))
    assert targets(plan) == {"reg1": 1, "reg2": 1, "reg3": 1}


@pytest.mark.parametrize("planner", PLANNERS)
def test_the_cheaper_price_per_placed_pod_wins_within_a_tier(planner) -> None:  # type: ignore[no-untyped-def]
    small = pool("small", zones=("1",))
    big = pool("big", "Standard_D16s_v5", zones=("1",))
    options = [option(small, 3860, 12 * GiB, price=0.20), option(big, 15740, 60 * GiB, price=0.70)]
    plan = planner(state([small, big], options, web(15)))
    # small: 3 pods for 0.20 (0.067/pod); big: 15 pods for 0.70 (0.047/pod)
    assert targets(plan) == {"big": 1}


@pytest.mark.parametrize("planner", PLANNERS)
def test_a_full_spot_tier_falls_back_to_regular_and_says_which_pool_is_at_max(planner) -> None:  # type: ignore[no-untyped-def]
    spot = pool("spot1", zones=("1",), priority=Priority.SPOT, count=2, max_count=2)
    reg = pool("reg1", zones=("1",), max_count=1)
    nodes = [node("s-0", 3860, 12 * GiB, pool="spot1"), node("s-1", 3860, 12 * GiB, pool="spot1")]
    options = [option(spot, price=0.04), option(reg)]
    plan = planner(state([spot, reg], options, web(12, tolerations=(SPOT_TOLERATION,)), nodes))
    group = outcome(plan, "default/ReplicaSet/web")
    assert targets(plan) == {"reg1": 1}
    assert (group.on_existing, dict(group.on_new), group.unplaced) == (6, {"reg1": 3}, 3)
    assert group.reason == "pool reg1 at max 1; pool spot1 at max 2"


@pytest.mark.parametrize("planner", PLANNERS)
def test_an_option_in_backoff_is_skipped_with_its_reason(planner) -> None:  # type: ignore[no-untyped-def]
    spot = pool("spot1", "Standard_D4s_v5", zones=("1",), priority=Priority.SPOT)
    backoff = Backoff(
        "standard_d4s_v5",
        "eastus-1",
        Priority.SPOT,
        NOW + timedelta(minutes=3, seconds=10),
        "QuotaExceeded",
    )
    st = state(
        [spot], [option(spot)], web(3, tolerations=(SPOT_TOLERATION,)), backoffs=(backoff,), now=NOW
    )
    plan = planner(st)
    group = outcome(plan, "default/ReplicaSet/web")
    assert (group.unplaced, group.reason) == (
        3,
        "pool spot1 in backoff until 12:03:10 (QuotaExceeded)",
    )
    expired = planner(
        state(
            [spot],
            [option(spot)],
            web(3, tolerations=(SPOT_TOLERATION,)),
            backoffs=(backoff,),
            now=NOW + timedelta(hours=1),
        )
    )
    assert targets(expired) == {"spot1": 1}


@pytest.mark.parametrize(
    ("limits", "policy", "reason"),
    [
        (ClusterLimits(max_nodes=2), Policy(), "cluster limit max nodes 2 reached"),
        (ClusterLimits(max_cores=8), Policy(), "cluster limit max cores 8 reached"),
        (
            ClusterLimits(max_memory_bytes=24 * GiB),
            Policy(),
            "cluster limit max memory 24Gi reached",
        ),
        (ClusterLimits(), Policy(max_new_nodes=2), "plan limit of 2 new nodes reached"),
    ],
)
@pytest.mark.parametrize("planner", PLANNERS)
def test_cluster_limits_cap_new_nodes_and_name_the_limit(planner, limits, policy, reason) -> None:  # type: ignore[no-untyped-def]
    reg = pool("reg1", zones=("1",), max_count=100)
    plan = planner(state([reg], [option(reg, vcpus=4)], web(9), limits=limits, policy=policy))
    group = outcome(plan, "default/ReplicaSet/web")
    assert targets(plan) == {"reg1": 2}
    assert (group.unplaced, group.reason) == (3, reason)


@pytest.mark.parametrize("planner", PLANNERS)
def test_upcoming_nodes_take_pods_before_new_ones_are_asked_for(planner) -> None:  # type: ignore[no-untyped-def]
    reg = pool("reg1", zones=("1",), count=2)
    plan = planner(
        state([reg], [option(reg)], web(7), [node("reg1-0", 3860, 12 * GiB, pool="reg1")])
    )
    group = outcome(plan, "default/ReplicaSet/web")
    assert (group.on_existing, group.on_upcoming) == (3, 3)
    assert targets(plan) == {"reg1": 1}


@pytest.mark.parametrize("planner", PLANNERS)
def test_a_pod_larger_than_every_pool_says_which_resource_is_short(planner) -> None:  # type: ignore[no-untyped-def]
    reg = pool("reg1", zones=("1",))
    plan = planner(
        state([reg], [option(reg, 63260, 240 * GiB)], [pod("huge", 96000, GiB, owner="Job/huge")])
    )
    group = outcome(plan, "default/Job/huge")
    assert group.reason == "no pool fits: reg1: cpu 96000m > 63260m allocatable"


@pytest.mark.parametrize(
    ("fields", "per_node"),
    [
        ({"anti_affinity": (AntiAffinity(HOSTNAME_LABEL, LabelSelector((("app", "web"),))),)}, 1),
        (
            {
                "topology_spread": (
                    TopologySpread(
                        2, HOSTNAME_LABEL, label_selector=LabelSelector((("app", "web"),))
                    ),
                )
            },
            2,
        ),
        (
            {
                "topology_spread": (
                    TopologySpread(
                        2, HOSTNAME_LABEL, "ScheduleAnyway", LabelSelector((("app", "web"),))
                    ),
                )
            },
            6,
        ),
    ],
)
@pytest.mark.parametrize("planner", PLANNERS)
def test_hostname_anti_affinity_and_spread_limit_pods_per_node(planner, fields, per_node) -> None:  # type: ignore[no-untyped-def]
    reg = pool("reg1", zones=("1",), max_count=50)
    plan = planner(state([reg], [option(reg)], web(6, 100, GiB // 4, **fields)))
    assert targets(plan) == {"reg1": -(-6 // per_node)}
    assert all(sum(k for _, k in n.pods) <= per_node for n in plan.new_nodes)


@pytest.mark.parametrize("planner", PLANNERS)
def test_zone_spread_counts_pods_already_running(planner) -> None:  # type: ignore[no-untyped-def]
    pools, options = three_zone_cluster()
    spread = (TopologySpread(1, ZONE_LABEL, label_selector=LabelSelector((("app", "web"),))),)
    running = [pod(f"run-{i}", 1000, GiB, node_name="n1") for i in range(3)]
    nodes = [node("n1", 4000, 16 * GiB, pool="reg1", zone="eastus-1")]
    plan = planner(state(pools, options, running + web(6, topology_spread=spread), nodes))
    group = outcome(plan, "default/ReplicaSet/web")
    # zone 1 holds 3 already: the 6 new pods go 3 to zone 2 and 3 to zone 3
    assert dict(group.on_new) == {"reg2": 3, "reg3": 3}
    assert group.on_existing == 0


@pytest.mark.parametrize(
    ("zone", "room", "new_nodes", "on_existing"),
    [
        # The shares are 4 and 4. The ninth pod goes to zone 2, whose share opens a node
        # anyway, not to zone 1, where the registered node's room takes exactly its share.
        ("1", 4, {"reg2": 1}, 4),
        # The registered node in zone 2 takes 6: the ninth pod goes there, not to zone 1.
        ("2", 6, {"reg1": 1}, 5),
        # Nothing registered has room: zone order, as before.
        ("2", 0, {"reg1": 1, "reg2": 1}, 0),
    ],
    ids=["to the zone opening a node anyway", "to free room", "by zone order"],
)
@pytest.mark.parametrize("planner", PLANNERS)
def test_the_odd_pod_of_a_zone_spread_goes_where_it_needs_no_extra_node(  # type: ignore[no-untyped-def]
    planner, zone: str, room: int, new_nodes: dict[str, int], on_existing: int,
) -> None:
    pools = [pool(f"reg{z}", zones=(z,)) for z in ("1", "2")]
    options = [option(p, price=0.19) for p in pools]  # 3860m allocatable: 7 pods of 500m
    spread = (TopologySpread(1, ZONE_LABEL, label_selector=LabelSelector((("app", "web"),))),)
    used = 4000 - 500 * room
    other = [pod("other-0", used, GiB, owner="ReplicaSet/other", node_name="n1")]
    nodes = [node("n1", 4000, 16 * GiB, pool=f"reg{zone}", zone=f"eastus-{zone}")]
    plan = planner(state(pools, options, other + web(9, 500, GiB, topology_spread=spread), nodes))
    group = outcome(plan, "default/ReplicaSet/web")
    assert targets(plan) == new_nodes
    assert group.on_existing == on_existing
    assert group.unplaced == 0


@pytest.mark.parametrize("planner", PLANNERS)
def test_zone_spread_leaves_pods_pending_when_a_zone_has_no_room(planner) -> None:  # type: ignore[no-untyped-def]
    pools, options = three_zone_cluster(reg_max=0)
    pools = [p if p.name != "reg1" else pool("reg1", zones=("1",), max_count=1) for p in pools]
    options = [
        option(p, price=0.19) if not p.name.startswith("spot") else option(p, price=0.04)
        for p in pools
    ]
    spread = (TopologySpread(1, ZONE_LABEL, label_selector=LabelSelector((("app", "web"),))),)
    plan = planner(state(pools, options, web(6, topology_spread=spread)))
    group = outcome(plan, "default/ReplicaSet/web")
    assert group.unplaced == 4
    assert (
        group.reason is not None
        and "topology spread (maxSkew 1): no capacity in zone eastus-2" in group.reason
    )


@pytest.mark.parametrize("planner", PLANNERS)
def test_a_bound_volume_pins_the_pod_to_its_zone(planner) -> None:  # type: ignore[no-untyped-def]
    pools, options = three_zone_cluster()
    plan = planner(
        state(
            pools,
            options,
            [pod("db-0", 1000, GiB, owner="StatefulSet/db", volume_zones=("eastus-2",))],
        )
    )
    assert targets(plan) == {"reg2": 1}


@pytest.mark.parametrize("planner", PLANNERS)
def test_node_selectors_and_required_affinity_choose_the_pool(planner) -> None:  # type: ignore[no-untyped-def]
    ssd = pool("ssd1", zones=("1",), labels=(("disk", "ssd"),))
    hdd = pool("hdd1", zones=("1",), labels=(("disk", "hdd"),))
    options = [option(ssd, price=0.5), option(hdd, price=0.1)]
    by_selector = pod("a", owner="ReplicaSet/a", node_selector=(("disk", "ssd"),))
    affinity = (NodeSelectorTerm((Requirement("disk", Operator.IN, ("ssd",)),)),)
    by_affinity = pod("b", owner="ReplicaSet/b", required_affinity=affinity)
    plan = planner(state([ssd, hdd], options, [by_selector, by_affinity]))
    assert targets(plan) == {"ssd1": 1}


@pytest.mark.parametrize("planner", PLANNERS)
def test_gpu_pods_go_to_the_tainted_gpu_pool_and_others_stay_off_it(planner) -> None:  # type: ignore[no-untyped-def]
    gpu_taint = Taint("nvidia.com/gpu", "true")
    gpu = pool("gpu1", "Standard_NC4as_T4_v3", zones=("1",), taints=(gpu_taint,))
    reg = pool("reg1", zones=("1",))
    options = [option(gpu, 3860, 24 * GiB, price=0.53, gpus=1), option(reg)]
    trainer = pod(
        "train",
        2000,
        8 * GiB,
        owner="Job/train",
        gpu=1,
        tolerations=(Toleration("nvidia.com/gpu", "Exists"),),
    )
    plan = planner(state([gpu, reg], options, [trainer, *web(2)]))
    assert targets(plan) == {"gpu1": 1, "reg1": 1}


@pytest.mark.parametrize("planner", PLANNERS)
def test_pods_pinned_to_a_pool_fill_its_room_before_flexible_pods_take_it(planner) -> None:  # type: ignore[no-untyped-def]
    memory = pool("mem1", zones=("1",), labels=(("workload", "memory"),))
    general = pool("gen1", zones=("1",))
    options = [option(memory, price=0.30), option(general, price=0.19)]
    pinned = {"node_selector": (("workload", "memory"),)}
    pods = [
        pod("a-0", 2000, GiB, owner="ReplicaSet/a", **pinned),
        *[pod(f"b-{i}", 1500, GiB, owner="ReplicaSet/b") for i in range(3)],
        pod("c-0", 1000, GiB, owner="ReplicaSet/c", **pinned),
    ]
    plan = planner(state([memory, general], options, pods))
    # a and c share one mem1 node; visited by size alone, b would take a's room and c would
    # need a second mem1 node (0.79/h instead of 0.68/h).
    assert targets(plan) == {"mem1": 1, "gen1": 2}


@pytest.mark.parametrize(
    ("req_a", "req_b", "best_tier", "pinned", "first"),
    [
        pytest.param((500, GiB), (2000, GiB), (0, 0), (True, False), "a", id="pinned-first"),
        pytest.param((500, GiB), (500, GiB), (0, 1), (True, False), "b", id="tier-before-pinning"),
        pytest.param((1000, 4 * GiB), (1200, GiB), (0, 0), (False, False), "a", id="sum-of-shares"),
    ],
)
def test_the_visit_order_puts_first(
    req_a: tuple[int, int],
    req_b: tuple[int, int],
    best_tier: tuple[int, int],
    pinned: tuple[bool, bool],
    first: str,
) -> None:
    groups = group_pending([pod("a-0", owner="ReplicaSet/a"), pod("b-0", owner="ReplicaSet/b")])
    order = visit_order(groups, [req_a, req_b], [4000, 16 * GiB], best_tier, pinned)
    assert groups[order[0]].key == f"default/ReplicaSet/{first}"


# One other value per spec field: a pod differing from its run only there must start a group.
_OTHER_SPEC: dict[str, object] = {
    "containers": (Container("main", res(300, GiB)),),
    "init_containers": (Container("init", res(100, GiB)),),
    "overhead": res(50),
    "node_selector": (("disk", "ssd"),),
    "required_affinity": (NodeSelectorTerm((Requirement("disk", Operator.IN, ("ssd",)),)),),
    "tolerations": (SPOT_TOLERATION,),
    "topology_spread": (TopologySpread(1, ZONE_LABEL),),
    "anti_affinity": (AntiAffinity(HOSTNAME_LABEL),),
    "volume_zones": ("eastus-2",),
}


def test_every_spec_field_has_a_case_below() -> None:
    assert set(_OTHER_SPEC) == set(SPEC_FIELDS)


@pytest.mark.parametrize("field", SPEC_FIELDS)
def test_a_replica_that_differs_in_one_spec_field_ends_the_run_of_its_owner(field: str) -> None:
    # The run check compares spec objects by identity: every field of the signature must be
    # in it, or a pod after a run of replicas would join their group.
    first = pod("web-0")
    same = replace(first, name="web-1")
    other = replace(first, name="web-2", **{field: _OTHER_SPEC[field]})
    groups = group_pending([first, same, other])
    assert sorted(g.pods for g in groups) == [("web-0", "web-1"), ("web-2",)]
