"""SimCluster: binding under every constraint kind, pod and node lifecycles, determinism.

The differential test against the planner's compatibility matrix is in
test_cluster_differential.py."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from autoscaler.model.labels import (
    HOSTNAME_LABEL,
    SPOT_LABEL,
    ZONE_LABEL,
    LabelSelector,
    Operator,
    Requirement,
    labels_of,
)
from autoscaler.model.node import Node, Taint
from autoscaler.model.pod import (
    AntiAffinity,
    NodeSelectorTerm,
    Pod,
    TaintEffect,
    TopologySpread,
)
from simulator.cluster import SimCluster
from simulator.engine import Engine
from simulator.metrics import NodeRecord, Recorder
from tests.builders import (
    SPOT_TOLERATION,
    GiB,
    MiB,
    node,
    pod,
    res,
)

START = datetime(2026, 11, 25, tzinfo=UTC)
SPOT_TAINT = Taint(SPOT_LABEL, "spot", TaintEffect.NO_SCHEDULE)
WEB = {"app": "web"}
WEB_SELECTOR = LabelSelector(labels_of(WEB))


class World:
    def __init__(self) -> None:
        self.engine = Engine(START)
        self.recorder = Recorder()
        self.cluster = SimCluster(self.engine, self.recorder)

    def run(self, until: float | None = None) -> None:
        self.engine.run(self.engine.now if until is None else until)

    def where(self) -> dict[str, str | None]:
        return {p.key: p.node_name for p in self.cluster.observe().pods}

    def place(self, nodes: list[Node], existing: list[tuple[Pod, str]]) -> None:
        """Register Ready ``nodes`` and bind ``existing`` pods to the named nodes."""
        for n in nodes:
            self.cluster.add_node(n, ready_after=0.0)
        self.run()
        for p, host in existing:
            self.cluster.submit(replace(p, node_selector=((HOSTNAME_LABEL, host),)), "old")
            self.run()
            assert self.where()[p.key] == host


def web(name: str, cpu_m: int = 100, **fields: Any) -> Pod:
    return pod(name, cpu_m, labels=WEB, **fields)


def zone_spread(key: str = ZONE_LABEL, **fields: object) -> tuple[TopologySpread, ...]:
    return (TopologySpread(1, key, label_selector=WEB_SELECTOR, **fields),)  # type: ignore[arg-type]


def gpu_node(name: str) -> Node:
    return replace(node(name), allocatable=res(4000, 16 * GiB, pods=110, gpu=1))


def in_zone(zone: str) -> tuple[NodeSelectorTerm, ...]:
    return (NodeSelectorTerm((Requirement(ZONE_LABEL, Operator.IN, (zone,)),)),)


Z1, Z2 = "eastus-1", "eastus-2"
DB = {"app": "db"}
AVOID_DB = (AntiAffinity(HOSTNAME_LABEL, LabelSelector(labels_of(DB))),)
AVOID_WEB = (AntiAffinity(HOSTNAME_LABEL, WEB_SELECTOR),)

# (nodes, pods already bound to named nodes, the new pod, where it goes or None)
CASES = {
    "a node selector picks the labelled node": (
        [node("n1"), node("n2", labels={"disktype": "ssd"})],
        [],
        pod("p", node_selector=(("disktype", "ssd"),)),
        "n2",
    ),
    "a node selector no node matches leaves the pod pending": (
        [node("n1")],
        [],
        pod("p", node_selector=(("disktype", "ssd"),)),
        None,
    ),
    "required node affinity picks the zone": (
        [node("n1", zone=Z1), node("n2", zone=Z2)],
        [],
        pod("p", required_affinity=in_zone(Z2)),
        "n2",
    ),
    "an untolerated taint refuses the node": (
        [node("n1", taints=(SPOT_TAINT,))],
        [],
        pod("p"),
        None,
    ),
    "a tolerated taint admits the pod": (
        [node("n1", taints=(SPOT_TAINT,))],
        [],
        pod("p", tolerations=(SPOT_TOLERATION,)),
        "n1",
    ),
    "a PreferNoSchedule taint does not refuse": (
        [node("n1", taints=(Taint("x", "y", TaintEffect.PREFER_NO_SCHEDULE),))],
        [],
        pod("p"),
        "n1",
    ),
    "cpu beyond allocatable refuses the node": (
        [node("n1", cpu_m=1000)],
        [],
        pod("p", 1500),
        None,
    ),
    "cpu taken by bound pods counts against the node": (
        [node("n1", cpu_m=1000), node("n2", cpu_m=4000)],
        [(pod("a", 800), "n1")],
        pod("p", 300),
        "n2",
    ),
    "a gpu request needs a gpu node": (
        [node("n1"), gpu_node("g1")],
        [],
        pod("p", gpu=1),
        "g1",
    ),
    "pod slots are a resource": (
        [node("n1", pods=1), node("n2")],
        [(pod("a"), "n1")],
        pod("p"),
        "n2",
    ),
    "a bound volume's zone picks the node": (
        [node("n1", zone=Z1), node("n2", zone=Z2)],
        [],
        pod("p", volume_zones=(Z2,)),
        "n2",
    ),
    "hostname anti-affinity avoids the node running a selected pod": (
        [node("n1"), node("n2")],
        [(pod("db", labels=DB, owner="ReplicaSet/db"), "n1")],
        pod("p", anti_affinity=AVOID_DB),
        "n2",
    ),
    "anti-affinity of a running pod repels the new pod (symmetry)": (
        [node("n1"), node("n2")],
        [(pod("db", labels=DB, owner="ReplicaSet/db", anti_affinity=AVOID_WEB), "n1")],
        web("p"),
        "n2",
    ),
    "zone spread sends the pod to the emptier zone": (
        [node("n1", zone=Z1), node("n2", zone=Z2)],
        [(web("w0", topology_spread=zone_spread()), "n1")],
        web("p", topology_spread=zone_spread()),
        "n2",
    ),
    "hostname spread sends the pod to the emptier node": (
        [node("n1"), node("n2")],
        [(web("w0", topology_spread=zone_spread(HOSTNAME_LABEL)), "n1")],
        web("p", topology_spread=zone_spread(HOSTNAME_LABEL)),
        "n2",
    ),
    "a ScheduleAnyway spread does not restrict": (
        [node("n1", zone=Z1), node("n2", zone=Z2)],
        [(web("w0"), "n1")],
        web("p", topology_spread=zone_spread(when_unsatisfiable="ScheduleAnyway")),
        "n1",
    ),
    "the spread counts only the pods its selector selects": (
        [node("n1", zone=Z1), node("n2", zone=Z2)],
        [(pod("db", labels=DB, owner="ReplicaSet/db"), "n1")],
        web("p", topology_spread=zone_spread()),
        "n1",
    ),
    "fewer zones than minDomains hold the global minimum at zero": (
        [node("n1", zone=Z1), node("n2", zone=Z2)],
        [(web("w0"), "n1"), (web("w1"), "n2")],
        web("p", topology_spread=zone_spread(min_domains=3)),
        None,
    ),
    "a node without the spread's topology key is refused": (
        [node("n1", zone=None)],
        [],
        web("p", topology_spread=zone_spread()),
        None,
    ),
    "a cordoned node is refused": (
        [node("n1", unschedulable=True)],
        [],
        pod("p"),
        None,
    ),
    "the most allocated node wins (bin-packing)": (
        [node("n1"), node("n2")],
        [(pod("a", 1000), "n2")],
        pod("p"),
        "n2",
    ),
    "equal scores go to the first node by name": (
        [node("n2"), node("n1")],
        [],
        pod("p"),
        "n1",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_pod_binds_only_where_every_constraint_admits_it(case: str) -> None:
    nodes, existing, new, expected = CASES[case]
    world = World()
    world.place(nodes, existing)
    world.cluster.submit(new, "new")
    world.run()
    assert world.where()[new.key] == expected


def test_pods_wait_for_their_node_to_become_ready() -> None:
    world = World()
    world.cluster.add_node(node("n1"), ready_after=60.0)
    world.cluster.submit(pod("p"), "web")
    world.run(59.0)
    assert world.where() == {"default/p": None}
    assert [n.ready for n in world.cluster.observe().nodes] == [False]
    world.run(60.0)
    assert world.where() == {"default/p": "n1"}
    assert world.recorder.pods["default/p"].bound == 60.0
    assert [n.ready for n in world.cluster.observe().nodes] == [True]


def test_a_node_removed_before_it_is_ready_never_takes_pods() -> None:
    world = World()
    world.cluster.add_node(node("n1"), ready_after=60.0)
    world.cluster.submit(pod("p"), "web")
    world.run(30.0)
    world.cluster.remove_node("n1", "scale-down")
    world.cluster.add_node(node("n1"), ready_after=100.0)  # same name, a new machine
    world.run(120.0)
    assert world.where() == {"default/p": None}
    world.run(130.0)
    assert world.where() == {"default/p": "n1"}


def test_removing_a_node_requeues_owned_pods_as_new_pods_and_loses_bare_ones() -> None:
    world = World()
    world.place([node("n1"), node("n2", cpu_m=100)], [])
    world.cluster.submit(pod("web-0", 500), "web")
    world.cluster.submit(pod("solo", 500, owner=""), "solo")
    world.run()
    assert world.where() == {"default/web-0": "n1", "default/solo": "n1"}

    world.engine.run(5.0)
    world.cluster.remove_node("n1", "spot-eviction")
    world.run()

    assert world.where() == {"default/web-0-r1": None}  # n2 is too small for it
    assert world.cluster.pending_keys("web") == ["default/web-0-r1"]
    assert world.cluster.running_keys("web") == []
    old, new, solo = (world.recorder.pods[k] for k in ("default/web-0", "default/web-0-r1",
                                                        "default/solo"))
    assert (old.evictions, old.finished, old.lost) == (1, 5.0, None)
    assert (new.workload, new.created, new.bound) == ("web", 5.0, None)
    assert (solo.evictions, solo.finished) == (1, 5.0)
    assert solo.lost == "node n1 removed (spot-eviction)"
    assert world.cluster.node_names("pool1") == ["n2"]


def test_a_requeued_pod_binds_to_another_node_and_keeps_its_lineage_name() -> None:
    world = World()
    world.place([node("n1"), node("n2")], [])
    world.cluster.submit(pod("web-0"), "web")
    world.run()
    first = world.where()["default/web-0"]
    other = "n2" if first == "n1" else "n1"
    world.cluster.remove_node(str(first), "scale-down")
    world.run()
    world.cluster.remove_node(other, "scale-down")
    world.cluster.add_node(node("n3"), ready_after=0.0)
    world.run()
    assert world.where() == {"default/web-0-r2": "n3"}  # not web-0-r1-r2


def test_finishing_a_pending_pod_withdraws_it() -> None:
    world = World()
    world.cluster.submit(pod("p"), "web")
    world.engine.run(3.0)
    world.cluster.finish("default/p")
    world.cluster.add_node(node("n1"), ready_after=0.0)
    world.run()
    assert world.where() == {}
    assert world.cluster.pending_keys("web") == []
    assert world.recorder.pods["default/p"].finished == 3.0
    assert world.recorder.pods["default/p"].bound is None


def test_finishing_a_bound_pod_frees_room_for_a_waiting_one() -> None:
    world = World()
    world.place([node("n1", cpu_m=1000)], [])
    world.cluster.submit(pod("a", 800), "web")
    world.cluster.submit(pod("b", 800), "web")
    world.run()
    assert world.where() == {"default/a": "n1", "default/b": None}
    world.engine.run(7.0)
    world.cluster.finish("default/a")
    world.run()
    assert world.where() == {"default/b": "n1"}
    assert world.recorder.pods["default/a"].finished == 7.0
    assert world.recorder.pods["default/b"].bound == 7.0
    assert world.cluster.running_keys("web") == ["default/b"]


def test_finishing_an_unknown_pod_is_ignored() -> None:
    world = World()
    world.cluster.finish("default/never")
    assert world.cluster.totals()["pending"] == 0


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        (pod("low", 800, priority=0), pod("high", 800, priority=10), "high"),
        (pod("b", 800), pod("a", 800), "a"),  # same instant: by name
    ],
)
def test_the_queue_serves_higher_priority_then_name(first: Pod, second: Pod, winner: str) -> None:
    world = World()
    world.place([node("n1", cpu_m=1000)], [])
    world.cluster.submit(first, "w1")
    world.cluster.submit(second, "w2")
    world.run()
    assert [k for k, v in world.where().items() if v] == [f"default/{winner}"]


def test_the_older_pod_is_served_first() -> None:
    world = World()
    world.cluster.submit(pod("b", 800), "web")
    world.engine.run(1.0)
    world.cluster.submit(pod("a", 800), "web")
    world.cluster.add_node(node("n1", cpu_m=1000), ready_after=0.0)
    world.run()
    assert world.where() == {"default/b": "n1", "default/a": None}


def test_a_pod_that_cannot_bind_does_not_hold_back_smaller_ones() -> None:
    world = World()
    world.place([node("n1", cpu_m=1000)], [])
    world.cluster.submit(pod("big", 5000, priority=100), "big")
    world.cluster.submit(pod("small", 100), "small")
    world.run()
    assert world.where() == {"default/big": None, "default/small": "n1"}


def test_arrivals_at_one_instant_share_one_scheduling_pass() -> None:
    world = World()
    world.place([node("n1")], [])
    before = world.cluster.passes
    for i in range(20):
        world.cluster.submit(pod(f"p{i}", 10), "web")
    world.run()
    assert world.cluster.passes == before + 1
    assert world.cluster.totals()["running"] == 20


def test_a_spread_blocked_pod_binds_once_another_workload_fills_the_emptier_zone() -> None:
    world = World()
    world.cluster.add_node(node("n1", cpu_m=8000, zone=Z1), ready_after=0.0)
    world.cluster.add_node(node("n2", cpu_m=1000, zone=Z2), ready_after=0.0)
    world.run()
    for i in range(2):
        world.cluster.submit(web(f"a{i}", 2000, topology_spread=zone_spread()), "a")
    world.run()
    assert world.where() == {"default/a0": "n1", "default/a1": None}  # n2 too small for it
    world.engine.run(1.0)
    # A pod of another workload, also app=web, lands in zone 2 and lifts the minimum.
    other = web("b0", owner="ReplicaSet/b", node_selector=((ZONE_LABEL, Z2),))
    world.cluster.submit(other, "b")
    world.run()
    assert world.where() == {"default/a0": "n1", "default/a1": "n1", "default/b0": "n2"}


def test_a_pod_in_a_blocked_group_binds_when_capacity_frees_anywhere_it_fits() -> None:
    world = World()
    world.place([node("n1", cpu_m=1000), node("n2", cpu_m=1000)], [])
    for i in range(3):
        world.cluster.submit(pod(f"p{i}", 900), "web")
    world.run()
    assert world.where()["default/p2"] is None
    world.cluster.finish("default/p1")
    world.run()
    assert world.where()["default/p2"] is not None


def _scenario(world: World, nodes: list[Node], pods: list[Pod]) -> dict[str, str | None]:
    for n in nodes:
        world.cluster.add_node(n, ready_after=0.0)
    for p in pods:
        world.cluster.submit(p, p.owner or p.name)
    world.engine.run(100.0)
    return world.where()


def _random_cluster(rng: random.Random) -> tuple[list[Node], list[Pod]]:
    nodes = [
        node(f"n{i:02d}", rng.choice([2000, 4000, 8000]), rng.choice([4, 8, 16]) * GiB,
             zone=f"eastus-{i % 3 + 1}")
        for i in range(12)
    ]
    pods = []
    for i in range(150):
        owner = rng.choice(["web", "api", "db"])
        fields: dict[str, Any] = {}
        if owner == "web":
            fields["topology_spread"] = zone_spread()
        if owner == "db":
            fields["anti_affinity"] = (AntiAffinity(HOSTNAME_LABEL, LabelSelector(labels_of(
                {"app": "db"}))),)
        pods.append(pod(f"{owner}-{i:03d}", rng.choice([100, 250, 500, 1500]),
                        rng.choice([128, 512, 2048]) * MiB, owner=f"ReplicaSet/{owner}",
                        labels={"app": owner}, priority=rng.choice([0, 0, 5]), **fields))
    return nodes, pods


def test_scheduling_is_deterministic_and_ignores_arrival_order_within_an_instant() -> None:
    nodes, pods = _random_cluster(random.Random(7))
    first = _scenario(World(), nodes, pods)
    again = _scenario(World(), nodes, pods)
    shuffled_pods, shuffled_nodes = list(pods), list(nodes)
    random.Random(1).shuffle(shuffled_pods)
    random.Random(2).shuffle(shuffled_nodes)
    reordered = _scenario(World(), shuffled_nodes, shuffled_pods)
    assert first == again
    assert first == reordered
    assert sum(v is not None for v in first.values()) > 50  # the test exercises real binding


def test_bound_pods_never_exceed_a_node_or_break_its_constraints() -> None:
    nodes, pods = _random_cluster(random.Random(11))
    where = _scenario(World(), nodes, pods)
    by_name = {p.key: p for p in pods}
    for n in nodes:
        mine = [by_name[k] for k, v in where.items() if v == n.name]
        assert sum(p.containers[0].requests.get_units("cpu") for p in mine) <= \
            n.allocatable.get_units("cpu")
        assert sum(p.labels == (("app", "db"),) for p in mine) <= 1  # db anti-affinity
    zones = {n.name: n.zone for n in nodes}
    web_by_zone = [sum(1 for k, v in where.items() if v and k.startswith("default/web") and
                       zones[v] == z) for z in (Z1, Z2, "eastus-3")]
    assert max(web_by_zone) - min(web_by_zone) <= 1


def test_observe_shows_pending_and_bound_pods_and_registered_nodes() -> None:
    world = World()
    world.cluster.add_node(node("n2"), ready_after=0.0)
    world.cluster.add_node(node("n1", cpu_m=100), ready_after=50.0)
    world.cluster.submit(pod("a"), "web")
    world.cluster.submit(pod("b", 9000), "web")
    world.run()
    view = world.cluster.observe()
    assert [(p.name, p.node_name) for p in view.pods] == [("a", "n2"), ("b", None)]
    assert [(n.name, n.ready) for n in view.nodes] == [("n1", False), ("n2", True)]
    world.cluster.finish("default/a")
    assert [p.name for p in world.cluster.observe().pods] == ["b"]


def test_totals_count_pods_and_capacity_of_ready_nodes_only() -> None:
    world = World()
    world.cluster.add_node(node("n1", 4000, 16 * GiB), ready_after=0.0)
    world.cluster.add_node(node("n2", 8000, 32 * GiB), ready_after=99.0)
    world.cluster.submit(pod("a", 1000, GiB), "web")
    world.cluster.submit(pod("b", 9000, GiB), "web")
    world.run()
    assert world.cluster.totals() == {
        "pending": 1,
        "running": 1,
        "nodes": 2,
        "ready_nodes": 1,
        "requested_cpu_m": 1000,
        "allocatable_cpu_m": 4000,
        "requested_memory": GiB,
        "allocatable_memory": 16 * GiB,
    }


@pytest.mark.parametrize(
    ("reason", "pending_reason"),
    [("NotTriggerScaleUp", "pod didn't trigger scale-up: too big"), ("TriggeredScaleUp", None)],
)
def test_events_are_counted_and_not_triggered_reasons_kept(
    reason: str, pending_reason: str | None
) -> None:
    world = World()
    p = pod("p")
    world.cluster.submit(p, "web")
    world.cluster.record_event(p, reason, "pod didn't trigger scale-up: too big")
    assert world.recorder.events == {reason: 1}
    assert world.recorder.pods["default/p"].pending_reason == pending_reason


def test_bind_listeners_hear_every_binding_with_its_workload() -> None:
    world = World()
    heard: list[tuple[str, str | None, str, float]] = []
    world.cluster.on_bind(lambda p, w: heard.append((p.key, p.node_name, w, world.engine.now)))
    world.cluster.submit(pod("p"), "web")
    world.cluster.add_node(node("n1"), ready_after=4.0)
    world.engine.run(10.0)
    assert heard == [("default/p", "n1", "web", 4.0)]


def test_node_names_lists_a_pools_registered_nodes_by_name() -> None:
    world = World()
    for name, p in [("b", "pool1"), ("a", "pool1"), ("c", "pool2")]:
        world.cluster.add_node(node(name, pool=p), ready_after=10.0)
    assert world.cluster.node_names("pool1") == ["a", "b"]
    assert world.cluster.node_names("pool3") == []


@pytest.mark.parametrize(
    "bad",
    [pod("p", node_name="n1"), pod("dup")],
    ids=["already bound", "duplicate key"],
)
def test_submit_refuses_bound_or_duplicate_pods(bad: Pod) -> None:
    world = World()
    world.cluster.submit(pod("dup"), "web")
    with pytest.raises(ValueError):
        world.cluster.submit(bad, "web")


def test_node_lifetimes_are_left_to_the_cloud_model() -> None:
    world = World()
    record = NodeRecord("n1", "pool1", Z1, "Regular", "Standard_D4s_v5", 0.2, requested=0.0)
    world.recorder.node_requested(record)
    world.cluster.add_node(node("n1"), ready_after=5.0)
    world.run(10.0)
    world.cluster.remove_node("n1", "scale-down")
    assert (record.registered, record.ready, record.removed) == (None, None, None)
