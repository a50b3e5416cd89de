"""The reconcile loop driving AksProvider against the ARM twin, on a hand-moved clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autoscaler.cloud.store import JsonFileStore, MemoryStore, OperationStore
from autoscaler.control.clock import FixedClock
from autoscaler.control.loop import LoopConfig, Reconciler
from autoscaler.kube.fake import FakeSource
from autoscaler.model.pod import Pod
from simulator.twin import ArmTwin
from tests.adapters.support import twin_provider
from tests.builders import SPOT_TOLERATION, GiB, pod

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TEN_S = timedelta(seconds=10)


def spot_web(n: int) -> list[Pod]:
    return [pod(f"web-{i}", 1000, GiB, tolerations=(SPOT_TOLERATION,)) for i in range(n)]


def scene(arm_twin: ArmTwin) -> None:
    """A spot pool and a regular pool of the same size in zone 1, both managed, both empty."""
    tags = {"surge.io/managed": "true", "surge.io/max-count": "20"}
    arm_twin.model.add_pool("spot1", "Standard_D4s_v5", 0, zones=("1",), spot=True, tags=tags)
    arm_twin.model.add_pool("reg1", "Standard_D4s_v5", 0, zones=("1",), tags=tags)


def loop_on(
    arm_twin: ArmTwin, pods: list[Pod], clock: FixedClock, store: OperationStore | None = None
) -> Reconciler:
    return Reconciler(FakeSource(pods), twin_provider(arm_twin), clock, LoopConfig(), store=store)


def puts(arm_twin: ArmTwin) -> list[str | None]:
    return [pool for _, route, pool in arm_twin.arrivals if route == "PUT agentPool"]


@pytest.mark.parametrize("ending", ["Succeeded", "QuotaExceeded"])
def test_a_restarted_loop_resumes_the_operation_in_flight_and_does_not_put_again(
    arm_twin: ArmTwin, tmp_path: Path, ending: str
) -> None:
    scene(arm_twin)
    path = str(tmp_path / "operations.json")
    clock = FixedClock(NOW)
    first = loop_on(arm_twin, spot_web(6), clock, JsonFileStore(path))
    assert [a.result for a in first.run_once().actions] == ["started"]
    assert list(JsonFileStore(path).load()) == ["spot1"]

    clock.current += TEN_S  # the process restarts: new provider, new loop, same store
    second = loop_on(arm_twin, spot_web(6), clock, JsonFileStore(path))
    assert list(second.inflight) == ["spot1"]
    report = second.run_once()
    assert report.actions == ()
    assert report.plan is not None and report.plan.groups[0].on_upcoming == 6
    assert arm_twin.requests["GET operation"] == 1

    if ending != "Succeeded":
        arm_twin.model.fail_operation("spot1", ending)
    arm_twin.model.complete_operations()
    clock.current += TEN_S
    second.run_once()
    expected = ["spot1"] if ending == "Succeeded" else ["spot1", "reg1"]
    assert puts(arm_twin) == expected
    assert list(JsonFileStore(path).load()) == expected[1:]  # spot1's operation is forgotten


def test_when_nothing_changes_the_loop_lists_pools_once_per_refresh_interval(
    arm_twin: ArmTwin,
) -> None:
    scene(arm_twin)
    clock = FixedClock(NOW)
    loop = loop_on(arm_twin, [], clock)
    minutes = 5
    for _ in range(minutes * 6 + 1):  # a pass every 10 s, both ends included
        loop.run_once()
        clock.current += TEN_S
    refreshes = minutes * 60 // 30 + 1
    assert arm_twin.arm_requests() == {"GET agentPools": refreshes}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("QuotaExceeded", "Operation results in exceeding quota limits of LowPriorityCores."),
        (
            "OperationNotAllowed",
            "Operation could not be completed as it results in exceeding approved "
            "LowPriorityCores quota.",
        ),
        ("ZonalAllocationFailed", "No spot capacity in zone 1."),
        ("SkuNotAvailable", "Standard_D4s_v5 is not available for Spot in eastus-1."),
    ],
)
def test_after_a_spot_failure_surfaces_the_next_pass_falls_back_to_regular(
    arm_twin: ArmTwin, code: str, message: str
) -> None:
    scene(arm_twin)
    clock = FixedClock(NOW)
    store = MemoryStore()
    loop = loop_on(arm_twin, spot_web(6), clock, store)
    loop.run_once()
    arm_twin.model.fail_operation("spot1", code, message)
    arm_twin.model.complete_operations()
    clock.current += TEN_S
    report = loop.run_once()
    assert report.failures == (f"scale spot1 to 2: {code} {message}",)
    assert puts(arm_twin) == ["spot1", "reg1"]
    (backoff,) = loop.backoffs.active(clock.current)
    assert backoff.until - clock.current >= timedelta(minutes=59)
    assert list(store.load()) == ["reg1"]


@pytest.mark.parametrize("cause", ["busy pool", "stale etag"])
def test_a_conflict_is_retried_on_a_later_pass_after_re_reading_the_pools(
    arm_twin: ArmTwin, cause: str
) -> None:
    scene(arm_twin)
    if cause == "busy pool":
        twin_provider(arm_twin).scale("spot1", 1)  # someone else's operation
    else:
        arm_twin.model.fail_next("PUT agentPool", 412, "PreconditionFailed", "eTag changed")
    clock = FixedClock(NOW)
    loop = loop_on(arm_twin, spot_web(6), clock)
    report = loop.run_once()
    assert [a.result for a in report.actions] == ["conflict"]
    lists = arm_twin.requests["GET agentPools"]
    arm_twin.model.complete_operations()
    clock.current += TEN_S
    report = loop.run_once()
    assert arm_twin.requests["GET agentPools"] == lists + 1  # re-read well before 30 s
    assert [a.result for a in report.actions] == ["started"]
    assert loop.backoffs.active(clock.current) == ()


def test_a_throttled_put_holds_every_arm_call_until_retry_after(arm_twin: ArmTwin) -> None:
    scene(arm_twin)
    arm_twin.model.fail_next("PUT agentPool", 429, "TooManyRequests", retry_after=60)
    clock = FixedClock(NOW)
    loop = loop_on(arm_twin, spot_web(6), clock)
    assert [a.result for a in loop.run_once().actions] == ["throttled"]
    before = sum(arm_twin.arm_requests().values())
    for _ in range(5):  # 10 s .. 50 s
        clock.current += TEN_S
        assert loop.run_once().skipped is not None
    assert sum(arm_twin.arm_requests().values()) == before
    clock.current += 2 * TEN_S
    assert [a.result for a in loop.run_once().actions] == ["started"]


@pytest.mark.parametrize(
    ("status", "code", "message", "reason", "at_least"),
    [
        (400, "InvalidParameter", "bad pool", "InvalidParameter", timedelta(minutes=3)),
        (
            409,
            "OperationNotAllowed",
            "Operation could not be completed as it results in exceeding approved "
            "LowPriorityCores quota.",
            "QuotaExceeded",
            timedelta(hours=1),
        ),
    ],
)
def test_a_put_refused_at_once_backs_the_option_off_and_uses_the_next_one(
    arm_twin: ArmTwin, status: int, code: str, message: str, reason: str, at_least: timedelta
) -> None:
    scene(arm_twin)
    arm_twin.model.fail_next("PUT agentPool", status, code, message, pool="spot1")
    clock = FixedClock(NOW)
    loop = loop_on(arm_twin, spot_web(6), clock)
    assert [a.result for a in loop.run_once().actions] == ["error"]
    clock.current += TEN_S
    loop.run_once()
    assert puts(arm_twin) == ["spot1", "reg1"]
    (backoff,) = loop.backoffs.active(clock.current)
    assert backoff.reason == reason
    assert backoff.until - NOW == at_least
