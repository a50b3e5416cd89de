"""The scale-down planner on hand-made clusters: blockers, budgets, minimums, order, packing."""

from __future__ import annotations

import pytest

from autoscaler.model.disruption import (
    EVICTION_NOTICE_TAINT,
    PodDisruptionBudget,
    allowed_disruptions,
)
from autoscaler.model.labels import HOSTNAME_LABEL, ZONE_LABEL, LabelSelector
from autoscaler.model.node import Node, Taint
from autoscaler.model.pod import MIRROR_ANNOTATION, AntiAffinity, Pod, TopologySpread
from autoscaler.model.resources import Resources
from autoscaler.model.state import ClusterState
from autoscaler.planner.scaledown import plan_scale_down
from autoscaler.planner.scaledown_reference import plan_scale_down_reference
from autoscaler.planner.scaledown_rules import ScaleDownParams, disruption_budget
from tests.builders import GiB, node, option, pod, pool, state

CA_SAFE = "cluster-autoscaler.kubernetes.io/safe-to-evict"
WEB = LabelSelector((("app", "web"),))


def cluster(
    pods: list[Pod],
    nodes: list[Node] | None = None,
    *,
    min_count: int = 0,
    pdbs: tuple[PodDisruptionBudget, ...] = (),
) -> ClusterState:
    """Pool ``pool1`` of three 4-core nodes (n1 holds the pods under test, n2 and n3 room)."""
    nodes = nodes or [node("n1"), node("n2"), node("n3")]
    p = pool("pool1", count=len(nodes), min_count=min_count)
    return state([p], [option(p)], pods, nodes, pdbs=pdbs)


def both(s: ClusterState, params: ScaleDownParams | None = None) -> tuple[str, ...]:
    plan = plan_scale_down(s, params)
    assert plan == plan_scale_down_reference(s, params)
    return plan.names


def kept(s: ClusterState, name: str) -> str:
    return dict(plan_scale_down(s).kept)[name]


def busy(name: str) -> Pod:
    """A pod that keeps a node above the threshold."""
    return pod(f"big-{name}", 3000, GiB, owner="ReplicaSet/big", node_name=name)


@pytest.mark.parametrize(
    ("fields", "blocks"),
    [
        ({}, None),
        ({"annotations": ((CA_SAFE, "false"),)}, "annotated safe-to-evict=false"),
        ({"annotations": (("surge.io/safe-to-evict", "false"),)}, "safe-to-evict=false"),
        ({"owner": ""}, "has no controller"),
        ({"owner": "", "annotations": ((CA_SAFE, "true"),)}, None),
        ({"local_storage": True}, "has local storage"),
        ({"local_storage": True, "annotations": ((CA_SAFE, "true"),)}, None),
        ({"namespace": "kube-system"}, "kube-system without a PodDisruptionBudget"),
        ({"owner": "DaemonSet/agent"}, None),
        ({"owner": "Node/n1", "annotations": ((MIRROR_ANNOTATION, "x"),)}, None),
    ],
)
def test_each_blocker_keeps_its_node_and_the_others_let_it_go(
    fields: dict[str, object], blocks: str | None
) -> None:
    pods = [pod("x", 200, GiB, node_name="n1", **fields), busy("n2"), busy("n3")]
    s = cluster(pods)
    if blocks is None:
        assert both(s) == ("n1",)
    else:
        assert both(s) == ()
        assert blocks in kept(s, "n1")


def test_a_kube_system_pod_under_a_budget_may_move() -> None:
    pdb = PodDisruptionBudget("dns", "kube-system", LabelSelector((("app", "dns"),)),
                              max_unavailable=1)
    pods = [pod("dns-0", 200, GiB, namespace="kube-system", labels={"app": "dns"},
                node_name="n1"), busy("n2"), busy("n3")]
    assert both(cluster(pods, pdbs=(pdb,))) == ("n1",)


def test_daemonset_and_mirror_pods_are_not_moved() -> None:
    pods = [
        pod("agent", 100, GiB, owner="DaemonSet/agent", node_name="n1"),
        pod("static", 100, GiB, owner="Node/n1", annotations=((MIRROR_ANNOTATION, "x"),),
            node_name="n1"),
        busy("n2"), busy("n3"),
    ]
    plan = plan_scale_down(cluster(pods))
    assert plan.names == ("n1",)
    assert plan.remove[0].empty


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda n: Node(**{**_fields(n), "annotations": (
            ("surge.io/scale-down-disabled", "true"),)}), "scale-down disabled"),
        (lambda n: Node(**{**_fields(n), "annotations": (
            ("cluster-autoscaler.kubernetes.io/scale-down-disabled", "true"),)}),
         "scale-down disabled"),
        (lambda n: Node(**{**_fields(n), "ready": False}), "not ready"),
        (lambda n: Node(**{**_fields(n), "unschedulable": True}), "cordoned"),
        (lambda n: Node(**{**_fields(n), "taints": (Taint(EVICTION_NOTICE_TAINT, "true"),)}),
         "eviction notice"),
        (lambda n: Node(**{**_fields(n), "pool": "other"}), "pool not managed"),
    ],
)
def test_nodes_that_are_protected_leaving_or_unmanaged_are_not_removed(make, reason) -> None:  # type: ignore[no-untyped-def]
    s = cluster([busy("n2"), busy("n3")], [make(node("n1")), node("n2"), node("n3")])
    assert "n1" not in both(s)
    assert reason in kept(s, "n1")


def _fields(value: object) -> dict[str, object]:
    return {name: getattr(value, name) for name in type(value).__dataclass_fields__}


def test_a_node_above_the_threshold_stays_and_the_threshold_is_a_parameter() -> None:
    pods = [pod("a", 2400, GiB, node_name="n1"), busy("n2")]
    s = cluster(pods, [node("n1"), node("n2"), node("n3")])
    assert "utilisation 0.60 >= 0.5" in kept(s, "n1")
    higher = plan_scale_down(s, ScaleDownParams(threshold=0.7))
    assert dict(higher.kept)["n1"] == "no room for pod default/a"  # considered, then refused


def test_gpu_utilisation_counts() -> None:
    gpu_node = node("n1")
    with_gpu = gpu_node.allocatable + Resources.of({"nvidia.com/gpu": 1})
    gpu_node = Node(**{**_fields(gpu_node), "allocatable": with_gpu})
    pods = [pod("train", 100, GiB, gpu=1, node_name="n1"), busy("n2"), busy("n3")]
    s = cluster(pods, [gpu_node, node("n2"), node("n3")])
    assert "utilisation 1.00" in kept(s, "n1")


def test_pods_that_do_not_fit_elsewhere_keep_their_node() -> None:
    pods = [pod("a", 1500, GiB, node_name="n1"), busy("n2"), busy("n3")]
    s = cluster(pods)
    assert both(s) == ()
    assert kept(s, "n1") == "no room for pod default/a"


def test_two_candidates_do_not_count_the_same_free_room_twice() -> None:
    # n3 has room for one of the two 1.5-core pods, not both.
    pods = [pod("a", 1500, GiB, node_name="n1"), pod("b", 1500, GiB, node_name="n2"),
            pod("c", 2000, GiB, node_name="n3")]
    assert len(both(cluster(pods))) == 1


@pytest.mark.parametrize(("with_empty", "first"), [(False, "d1"), (True, "e1")])
def test_empty_nodes_go_first_then_the_most_expensive_per_unit_of_utilisation(
    with_empty: bool, first: str
) -> None:
    # Price per unit of utilisation: d1 0.5/0.10, d2 0.5/0.25, c1 0.1/0.10, c2 0.1/0.25.
    nodes = [node("c1", pool="cheap"), node("c2", pool="cheap"), node("d1", pool="dear"),
             node("d2", pool="dear")]
    if with_empty:
        nodes.append(node("e1", pool="cheap"))
    cheap, dear = pool("cheap", count=3), pool("dear", count=2)
    pods = [pod("a", 400, GiB, node_name="c1"), pod("b", 400, GiB, node_name="d1"),
            pod("c", 1000, GiB, node_name="c2"), pod("d", 1000, GiB, node_name="d2")]
    s = state([cheap, dear], [option(cheap, price=0.1), option(dear, price=0.5)], pods, nodes)
    assert both(s, ScaleDownParams(max_nodes=1)) == (first,)


def test_a_pool_never_goes_below_its_minimum() -> None:
    s = cluster([], min_count=2)
    assert len(both(s)) == 1
    assert any(why == "pool pool1 at min 2" for _, why in plan_scale_down(s).kept)


def test_the_node_cap_and_the_eligible_set_limit_the_plan() -> None:
    s = cluster([])
    assert len(both(s, ScaleDownParams(max_nodes=2))) == 2
    assert both(s, ScaleDownParams(eligible=frozenset({"n3"}))) == ("n3",)


@pytest.mark.parametrize(
    ("budget", "removable"),
    [
        (PodDisruptionBudget("web", selector=WEB, max_unavailable=0), 0),
        (PodDisruptionBudget("web", selector=WEB, max_unavailable=1), 1),
        (PodDisruptionBudget("web", selector=WEB, min_available=3), 1),
        (PodDisruptionBudget("web", selector=WEB, min_available="100%"), 0),
        (PodDisruptionBudget("web", selector=WEB, max_unavailable="50%"), 2),
        (PodDisruptionBudget("web", selector=WEB, min_available=0, disruptions_allowed=0), 0),
    ],
)
def test_a_plan_never_spends_more_of_a_budget_than_it_allows(
    budget: PodDisruptionBudget, removable: int
) -> None:
    # Four web pods, one per node; big nodes n4 and n5 take the moved ones.
    nodes = [node(f"n{i}") for i in range(1, 6)]
    pods = [pod(f"web-{i}", 200, GiB, labels={"app": "web"}, node_name=f"n{i}")
            for i in range(1, 5)]
    pods += [pod("big-n5", 2500, GiB, owner="ReplicaSet/big", node_name="n5")]
    s = cluster(pods, nodes, pdbs=(budget,))
    moved = [r for r in plan_scale_down(s).remove if r.evict]
    assert len(moved) == removable
    assert plan_scale_down(s) == plan_scale_down_reference(s)


@pytest.mark.parametrize(
    ("budget", "allowed"),
    [
        (PodDisruptionBudget("b", selector=WEB, min_available=2), 1),
        (PodDisruptionBudget("b", selector=WEB, min_available="50%"), 1),  # ceil(4 * 50%) = 2
        (PodDisruptionBudget("b", selector=WEB, min_available="51%"), 0),  # ceil(2.04) = 3
        (PodDisruptionBudget("b", selector=WEB, max_unavailable="30%"), 1),  # 4 - ceil(1.2)
        (PodDisruptionBudget("b", selector=WEB, max_unavailable=3), 2),
        (PodDisruptionBudget("b", selector=WEB), 0),
        (PodDisruptionBudget("b", "other", selector=WEB, max_unavailable=3), 0),
    ],
)
def test_allowed_disruptions_count_pending_pods_as_expected_but_not_healthy(
    budget: PodDisruptionBudget, allowed: int
) -> None:
    pods = [pod(f"w{i}", labels={"app": "web"}, node_name="n1") for i in range(3)]
    pods.append(pod("w3", labels={"app": "web"}))  # pending: expected, not healthy
    assert allowed_disruptions(budget, pods) == allowed


def test_zone_spread_pods_only_move_within_their_zone() -> None:
    spread = (TopologySpread(1, ZONE_LABEL, label_selector=WEB),)
    nodes = [node("a1", zone="eastus-1"), node("b1", zone="eastus-2"),
             node("b2", zone="eastus-2")]
    pods = [pod("web-0", 200, GiB, labels={"app": "web"}, topology_spread=spread,
                node_name="a1"), busy("b1"), busy("b2")]
    s = cluster(pods, nodes)
    assert both(s) == ()
    assert kept(s, "a1") == "no room for pod default/web-0"


def test_anti_affinity_follows_pods_moved_by_an_earlier_removal() -> None:
    # db pods may not share a node; n3 has room for one, n4 for none.
    apart = (AntiAffinity(HOSTNAME_LABEL, LabelSelector((("app", "db"),))),)
    nodes = [node(f"n{i}") for i in range(1, 5)]
    pods = [pod(f"db-{i}", 200, GiB, labels={"app": "db"}, anti_affinity=apart,
                owner="StatefulSet/db", node_name=f"n{i}") for i in (1, 2)]
    pods += [pod("fill-3", 2100, GiB, owner="ReplicaSet/f", node_name="n3"),
             pod("fill-4", 3900, GiB, owner="ReplicaSet/f", node_name="n4")]
    plan = plan_scale_down(cluster(pods, nodes))
    assert plan == plan_scale_down_reference(cluster(pods, nodes))
    assert len([r for r in plan.remove if r.evict]) == 1


@pytest.mark.parametrize(("nodes", "fraction", "budget"),
                         [(0, 0.1, 0), (1, 0.1, 1), (10, 0.1, 1), (11, 0.1, 2), (37, 0.1, 4),
                          (50, 0.2, 10)])
def test_the_disruption_budget_is_a_share_of_the_nodes_rounded_up(
    nodes: int, fraction: float, budget: int
) -> None:
    assert disruption_budget(nodes, fraction) == budget
