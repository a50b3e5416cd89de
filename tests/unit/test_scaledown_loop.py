"""Scale-down in the reconcile loop, on a hand-moved clock: timers, guards, drain, deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autoscaler.cloud.fake import FakeCloud
from autoscaler.control.clock import FixedClock
from autoscaler.control.loop import LoopConfig, Reconciler
from autoscaler.control.scaledown import ScaleDownConfig
from autoscaler.kube.fake import FakeSource
from autoscaler.kube.source import EvictionResult
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.labels import LabelSelector
from autoscaler.model.pod import Pod
from tests.builders import GiB, node, pod, pool

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def setup(pods: list[Pod], count: int = 3, pdbs=(), **scale_down):  # type: ignore[no-untyped-def]
    """Pool ``reg1`` with ``count`` D4s_v5 nodes n1..; n1 holds ``pods``, the others are busy
    enough to stay but have room."""
    nodes = [node(f"n{i}", pool="reg1") for i in range(1, count + 1)]
    busy = [pod(f"busy-{i}", 2500, GiB, owner="ReplicaSet/busy", node_name=f"n{i}")
            for i in range(2, count + 1)]
    clock = FixedClock(NOW)
    cloud = FakeCloud([pool("reg1", "Standard_D4s_v5", count=count, max_count=10)], NOW)
    source = FakeSource([*pods, *busy], nodes, pdbs)
    config = LoopConfig(scale_down=ScaleDownConfig(**scale_down))
    return Reconciler(source, cloud, clock, config), cloud, source, clock


def deletions(cloud: FakeCloud) -> list[tuple[object, ...]]:
    return [args for name, args in cloud.calls if name == "delete_machines"]


def run_for(loop: Reconciler, clock: FixedClock, minutes: float, step: float = 0.5) -> None:
    end = clock.current + timedelta(minutes=minutes)
    while clock.current < end:
        clock.current += timedelta(minutes=step)
        loop.run_once()


def test_a_node_is_removed_only_after_ten_minutes_unneeded() -> None:
    loop, cloud, source, clock = setup([])
    loop.run_once()
    run_for(loop, clock, 9.5)
    assert deletions(cloud) == []
    assert source.cordons == []
    clock.current += MINUTE
    report = loop.run_once()
    assert deletions(cloud) == [("reg1", ("n1",))]
    assert source.cordons == [("n1", True)]
    assert report.scale_down is not None and report.scale_down.deleting == (("reg1", "n1"),)
    assert [a.detail for a in report.actions] == ["delete-machines n1"]


def test_a_node_that_becomes_needed_again_restarts_its_timer() -> None:
    loop, cloud, source, clock = setup([])
    loop.run_once()
    run_for(loop, clock, 8)
    source.pods.append(pod("late", 2500, GiB, node_name="n1"))
    run_for(loop, clock, 1)
    source.pods.pop()
    run_for(loop, clock, 9)
    assert deletions(cloud) == []
    run_for(loop, clock, 1.5)
    assert deletions(cloud) == [("reg1", ("n1",))]


@pytest.mark.parametrize(
    ("config", "after_minutes", "deleted"),
    [
        ({}, 11, True),
        ({"enabled": False}, 30, False),
        ({"unneeded_time": timedelta(minutes=2)}, 3, True),
        ({"unneeded_time": timedelta(minutes=20)}, 15, False),
    ],
)
def test_timers_and_the_flag_come_from_the_loop_config(
    config: dict[str, object], after_minutes: float, deleted: bool
) -> None:
    loop, cloud, _, clock = setup([], **config)
    loop.run_once()
    run_for(loop, clock, after_minutes)
    assert bool(deletions(cloud)) is deleted


def test_no_scale_down_for_ten_minutes_after_a_scale_up() -> None:
    loop, cloud, source, clock = setup([])
    burst = [pod(f"burst-{i}", 3000, GiB) for i in range(2)]  # n1 takes one, a new node the other
    source.pods += burst
    loop.run_once()
    assert [args for name, args in cloud.calls if name == "scale"] == [("reg1", 4)]
    source.pods = [p for p in source.pods if p not in burst]
    run_for(loop, clock, 9.5)
    assert deletions(cloud) == []
    run_for(loop, clock, 1)
    assert deletions(cloud) != []


def test_pods_are_evicted_then_the_drained_node_is_deleted() -> None:
    loop, cloud, source, clock = setup([pod("w1", 200, GiB, node_name="n1", grace_seconds=900)])
    loop.run_once()
    run_for(loop, clock, 10.5)
    assert [(key, grace, answer) for key, grace, answer in source.evictions] == [
        ("default/w1", 600, EvictionResult.EVICTED)  # grace capped at 10 minutes
    ]
    assert deletions(cloud) == [("reg1", ("n1",))]
    assert ("default/w1", "ScaleDown", "evicted to remove node n1 (scale-down)") in source.events


def test_a_budget_that_refuses_evictions_until_the_drain_timeout_uncordons_and_backs_off() -> None:
    web = pod("w1", 200, GiB, labels={"app": "web"}, node_name="n1")
    budget = PodDisruptionBudget("web", selector=LabelSelector((("app", "web"),)),
                                 max_unavailable=1)
    loop, cloud, source, clock = setup([web], pdbs=(budget,))
    source.eviction_results["default/w1"] = [EvictionResult.BLOCKED_BY_PDB] * 100
    loop.run_once()
    run_for(loop, clock, 10.5)
    assert source.cordons == [("n1", True)]
    run_for(loop, clock, 9)
    assert deletions(cloud) == []
    assert source.cordons == [("n1", True)]
    run_for(loop, clock, 1)
    assert source.cordons == [("n1", True), ("n1", False)]
    blocked = [e for e in source.evictions if e[2] is EvictionResult.BLOCKED_BY_PDB]
    assert len(blocked) >= 19  # retried every pass


def test_a_failed_deletion_uncordons_and_holds_scale_down_for_three_minutes() -> None:
    loop, cloud, source, clock = setup([], count=4, max_disrupted_fraction=0.25)
    source.pods = [p for p in source.pods if p.node_name != "n2"]  # n1 and n2 empty
    cloud.failures["reg1"] = ["InternalError"]
    failures: list[str] = []
    loop.run_once()
    end = clock.current + timedelta(minutes=13)
    while clock.current < end:
        clock.current += timedelta(minutes=0.5)
        failures += loop.run_once().failures
    assert deletions(cloud) == [("reg1", ("n1",))]  # at 10:00, failed when polled at 10:30
    assert failures == ["delete-machines reg1 [n1]: InternalError"]
    assert source.cordons == [("n1", True), ("n1", False)]
    assert loop.backoffs.active(clock.current) == ()  # not a capacity failure
    run_for(loop, clock, 1)  # 13:30: the hold is over and n2 has been unneeded long enough
    assert deletions(cloud) == [("reg1", ("n1",)), ("reg1", ("n2",))]


def test_nodes_of_one_pool_are_deleted_in_one_call_within_the_disruption_budget() -> None:
    loop, cloud, _, clock = setup([], count=8, max_disrupted_fraction=0.25)
    # n1..n8: only n1 is empty and every other node is busy at 62%: room for nobody's pods.
    loop.run_once()
    run_for(loop, clock, 10.5)
    assert deletions(cloud) == [("reg1", ("n1",))]


def test_several_empty_nodes_go_together_in_one_call_per_pool() -> None:
    loop, cloud, source, clock = setup([], count=4, max_disrupted_fraction=0.5)
    source.pods = [p for p in source.pods if p.node_name not in ("n2", "n3")]
    loop.run_once()
    run_for(loop, clock, 10.5)
    assert deletions(cloud)[0] == ("reg1", ("n1", "n2"))


def test_dry_run_plans_but_never_cordons_nor_deletes() -> None:
    loop, cloud, source, clock = setup([])
    loop.config = LoopConfig(dry_run=True)
    loop.scale_down.dry_run = True
    loop.run_once()
    run_for(loop, clock, 11)
    assert source.cordons == [] and deletions(cloud) == []
