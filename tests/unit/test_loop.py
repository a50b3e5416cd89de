"""The reconcile loop against the fake cloud and fake cluster source, on a hand-moved clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from autoscaler.cloud.fake import FakeCloud
from autoscaler.cloud.provider import CloudError, Conflict, Throttled
from autoscaler.cloud.store import MemoryStore
from autoscaler.control.clock import FixedClock
from autoscaler.control.loop import LoopConfig, Reconciler
from autoscaler.kube.fake import FakeSource
from autoscaler.model.pool import Priority
from tests.builders import SPOT_TOLERATION, GiB, node, pod, pool

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def setup(pods, pools=None, nodes=(), **config):  # type: ignore[no-untyped-def]
    pools = pools or [
        pool("spot1", "Standard_D4s_v5", zones=("1",), priority=Priority.SPOT, max_count=20),
        pool("reg1", "Standard_D4s_v5", zones=("1",), max_count=20),
    ]
    clock = FixedClock(NOW)
    cloud = FakeCloud(pools, NOW)
    source = FakeSource(pods, nodes)
    loop = Reconciler(source, cloud, clock, LoopConfig(**config))
    return loop, cloud, source, clock


def web(n: int, spot: bool = False) -> list:  # type: ignore[type-arg]
    tolerations = (SPOT_TOLERATION,) if spot else ()
    return [pod(f"web-{i}", 1000, GiB, tolerations=tolerations) for i in range(n)]


def scales(cloud: FakeCloud) -> list[tuple[object, ...]]:
    return [args for name, args in cloud.calls if name == "scale"]


def test_pending_pods_start_one_scale_operation_per_pool() -> None:
    loop, cloud, _, _ = setup(web(6, spot=True))
    report = loop.run_once()
    assert scales(cloud) == [("spot1", 2)]
    assert [a.result for a in report.actions] == ["started"]


def test_a_second_pass_counts_requested_nodes_and_does_not_scale_again() -> None:
    loop, cloud, _, clock = setup(web(6, spot=True))
    loop.run_once()
    clock.current += timedelta(seconds=10)
    report = loop.run_once()
    assert scales(cloud) == [("spot1", 2)]
    assert report.plan is not None
    assert report.plan.groups[0].on_upcoming == 6


def test_a_spot_quota_failure_backs_off_spot_and_falls_back_to_regular() -> None:
    loop, cloud, _, clock = setup(web(6, spot=True))
    cloud.failures["spot1"] = ["QuotaExceeded"]
    cloud.pending.add("op-1")
    loop.run_once()
    cloud.pending.clear()
    clock.current += timedelta(seconds=10)
    report = loop.run_once()
    assert report.failures == ("scale spot1 to 2: QuotaExceeded",)
    assert scales(cloud) == [("spot1", 2), ("reg1", 2)]
    assert report.plan is not None
    assert all(b.reason == "QuotaExceeded" for b in loop.backoffs.active(clock.current))


@pytest.mark.parametrize("restarted", [False, True], ids=["same-process", "after-restart"])
@pytest.mark.parametrize(
    ("grown", "backoff"),
    [(1, timedelta(minutes=10)), (0, timedelta(hours=1))],
    ids=["partial-success-short-class", "nothing-added-long-class"],
)
def test_a_quota_failure_that_grew_the_pool_backs_off_briefly_even_after_a_restart(
    restarted: bool, grown: int, backoff: timedelta
) -> None:
    loop, cloud, source, clock = setup(web(6, spot=True))
    store = MemoryStore()
    loop.store = store
    cloud.failures["spot1"] = ["QuotaExceeded"]
    cloud.pending.add("op-1")
    loop.run_once()  # starts spot1 0 -> 2; the operation stays in progress
    cloud.pools["spot1"] = replace(cloud.pools["spot1"], count=grown)  # what AKS managed
    cloud.pending.clear()
    clock.current += timedelta(minutes=1)  # past the pool refresh: the new count is read
    if restarted:  # a new process resumes the stored operation and polls it
        loop = Reconciler(source, cloud, clock, LoopConfig(), store=store)
    loop.run_once()
    spot = [b for b in loop.backoffs.active(clock.current) if b.priority is Priority.SPOT]
    assert [(b.reason, b.until - clock.current) for b in spot] == [("QuotaExceeded", backoff)]


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("pools", "agent pools unknown"),
        ("view", "cluster view not synced"),
    ],
)
def test_nothing_is_sent_from_a_state_that_could_not_be_read(broken: str, expected: str) -> None:
    loop, cloud, source, _ = setup(web(6, spot=True))
    if broken == "pools":
        cloud.list_pools = lambda: (_ for _ in ()).throw(CloudError("InternalError"))  # type: ignore[method-assign]
    else:
        source.synced = False
    report = loop.run_once()
    assert report.skipped is not None and report.skipped.startswith(expected)
    assert scales(cloud) == []


def test_a_conflict_is_reported_and_retried_on_a_later_pass() -> None:
    loop, cloud, _, clock = setup(web(3, spot=True))
    cloud.refuse["spot1"] = Conflict("OperationNotAllowed", "another operation is in progress")
    assert [a.result for a in loop.run_once().actions] == ["conflict"]
    clock.current += timedelta(seconds=10)
    assert [a.result for a in loop.run_once().actions] == ["started"]


def test_a_429_holds_every_cloud_call_until_retry_after() -> None:
    loop, cloud, _, clock = setup(web(3, spot=True))
    cloud.refuse["spot1"] = Throttled(60)
    loop.run_once()
    calls = len(cloud.calls)
    clock.current += timedelta(seconds=30)
    assert loop.run_once().skipped is not None
    assert len(cloud.calls) == calls
    clock.current += timedelta(seconds=31)
    loop.run_once()
    assert scales(cloud)[-1] == ("spot1", 1)


def test_dry_run_plans_but_never_scales() -> None:
    loop, cloud, _, _ = setup(web(6, spot=True), dry_run=True)
    report = loop.run_once()
    assert [a.result for a in report.actions] == ["dry-run"]
    assert scales(cloud) == []


def test_nodes_that_never_register_are_backed_off_and_scaled_back() -> None:
    loop, _, _, clock = setup(web(3, spot=True))
    loop.run_once()
    clock.current += timedelta(minutes=16)
    report = loop.run_once()
    first = report.actions[0]
    assert (first.pool, first.target, first.result) == ("spot1", 0, "scale-back")
    assert [b.reason for b in loop.backoffs.active(clock.current)] == ["ProvisionTimeout"]


def test_registered_nodes_end_provision_tracking() -> None:
    loop, _, source, clock = setup(web(3, spot=True))
    loop.run_once()
    source.nodes = [node("spot1-0", 3860, 14 * GiB, pool="spot1")]
    clock.current += timedelta(minutes=16)
    report = loop.run_once()
    assert all(a.result != "scale-back" for a in report.actions)


def test_pool_lists_are_cached_for_the_refresh_interval() -> None:
    loop, cloud, _, clock = setup([])
    for _ in range(3):
        loop.run_once()
        clock.current += timedelta(seconds=10)
    assert [name for name, _ in cloud.calls].count("list_pools") == 1
    clock.current += timedelta(seconds=10)
    loop.run_once()
    assert [name for name, _ in cloud.calls].count("list_pools") == 2


def test_events_name_the_pool_and_are_not_repeated_while_nothing_changes() -> None:
    pods = [*web(3, spot=True), pod("huge", 96000, GiB, owner="Job/huge")]
    loop, _, source, clock = setup(pods)
    loop.run_once()
    clock.current += timedelta(seconds=10)
    loop.run_once()
    reasons = sorted((key, reason) for key, reason, _ in source.events)
    assert reasons == [("default/huge", "NotTriggerScaleUp"), ("default/web-0", "TriggeredScaleUp")]
    assert any("spot1" in message for _, _, message in source.events)
