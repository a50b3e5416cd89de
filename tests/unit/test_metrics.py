"""Metrics exposition, what a pass records in it, liveness and readiness over loopback HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from autoscaler.cloud.fake import FakeCloud
from autoscaler.control.clock import FixedClock
from autoscaler.control.controller import Controller
from autoscaler.control.loop import LoopConfig
from autoscaler.control.metrics import Counter, Gauge, Health, Histogram, Metrics, MetricsServer
from autoscaler.kube.fake import FakeSource
from autoscaler.model.pool import Priority
from tests.builders import SPOT_TOLERATION, GiB, pod, pool

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counters_and_gauges_are_exposed_with_help_type_and_escaped_labels() -> None:
    counter = Counter("surge_x_total", "Things.", ("pool", "result"))
    counter.inc(pool="spot1", result="started")
    counter.inc(2, pool='we"ird\\', result="error")
    gauge = Gauge("surge_y", "A level.")
    gauge.set(3.5)
    assert counter.header() + counter.lines() == [
        "# HELP surge_x_total Things.",
        "# TYPE surge_x_total counter",
        'surge_x_total{pool="spot1",result="started"} 1',
        'surge_x_total{pool="we\\"ird\\\\",result="error"} 2',
    ]
    assert gauge.lines() == ["surge_y 3.5"]


def test_a_gauge_replaced_as_a_whole_drops_series_that_are_gone() -> None:
    gauge = Gauge("surge_planned_nodes", "x", ("pool",))
    gauge.replace([({"pool": "a"}, 2), ({"pool": "b"}, 1)])
    gauge.replace([({"pool": "b"}, 4)])
    assert gauge.lines() == ['surge_planned_nodes{pool="b"} 4']


def test_a_histogram_has_cumulative_buckets_an_inf_bucket_a_sum_and_a_count() -> None:
    histogram = Histogram("surge_loop_duration_seconds", "x", buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.lines() == [
        'surge_loop_duration_seconds_bucket{le="0.1"} 1',
        'surge_loop_duration_seconds_bucket{le="1"} 2',
        'surge_loop_duration_seconds_bucket{le="+Inf"} 3',
        "surge_loop_duration_seconds_sum 3.55",
        "surge_loop_duration_seconds_count 3",
    ]


def test_wrong_label_names_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        Counter("c", "x", ("pool",)).inc(zone="1")


def spot_pods(n: int) -> list:  # type: ignore[type-arg]
    return [pod(f"web-{i}", 1000, GiB, tolerations=(SPOT_TOLERATION,)) for i in range(n)]


def test_a_pass_records_pending_pods_planned_nodes_operations_and_its_duration() -> None:
    pools = [pool("spot1", zones=("1",), priority=Priority.SPOT, max_count=20),
             pool("reg1", zones=("1",), max_count=20)]
    cloud = FakeCloud(pools, NOW)
    cloud.failures["reg1"] = ["QuotaExceeded"]
    controller = Controller(FakeSource(spot_pods(6)), cloud, FixedClock(NOW), LoopConfig())
    controller.step("batch")
    text = controller.metrics.render()
    for line in (
        "surge_pending_pods 6",
        'surge_planned_nodes{pool="spot1"} 2',
        'surge_scale_operations_total{pool="spot1",result="started"} 1',
        'surge_loop_passes_total{trigger="batch",outcome="acted"} 1',
        "surge_loop_duration_seconds_count 1",
        "surge_operations_in_flight 1",
        "surge_leader 1",
        "# TYPE surge_loop_duration_seconds histogram",
    ):
        assert line in text.splitlines(), line
    controller.step("tick")  # the operation ended: success is counted, nothing is planned now
    text = controller.metrics.render()
    assert 'surge_scale_operations_total{pool="spot1",result="succeeded"} 1' in text
    assert "surge_planned_nodes{" not in text


def test_a_failed_operation_shows_as_a_backoff_series() -> None:
    cloud = FakeCloud([pool("spot1", priority=Priority.SPOT, max_count=20)], NOW)
    cloud.failures["spot1"] = ["ZonalAllocationFailed"]
    controller = Controller(FakeSource(spot_pods(2)), cloud, FixedClock(NOW), LoopConfig())
    controller.step()
    controller.step()
    text = controller.metrics.render()
    assert 'surge_scale_operations_total{pool="spot1",result="failed"} 1' in text
    assert ('surge_backoffs{vm_size="Standard_D4s_v5",zone="eastus-1",priority="Spot",'
            'reason="ZonalAllocationFailed"} 1') in text


@pytest.mark.parametrize(
    ("passes_at", "now", "live"),
    [
        ([], 159.0, True),  # just started: 6 intervals of 10 s of grace
        ([], 161.0, False),  # never completed a pass in 61 s
        ([150.0], 205.0, True),
        ([150.0], 211.0, False),  # the loop is stuck: last pass 61 s ago
    ],
)
def test_liveness_fails_when_no_pass_completed_for_the_allowed_intervals(
    passes_at: list[float], now: float, live: bool
) -> None:
    ticks = Ticks()
    health = Health(interval=10.0, stuck_after=6, clock=ticks)
    for at in passes_at:
        ticks.now = at
        health.passed()
    ticks.now = now
    ok, why = health.live()
    assert ok is live
    assert ("stuck" in why) is not live


@pytest.fixture
def server() -> Iterator[tuple[MetricsServer, Ticks, list[tuple[bool, str]]]]:
    ticks = Ticks()
    readiness = [(False, "cluster cache not synced")]
    metrics = Metrics()
    metrics.pending_pods.set(7)
    running = MetricsServer("127.0.0.1", 0, metrics, Health(10.0, 3, ticks),
                            lambda: readiness[-1]).start()
    yield running, ticks, readiness
    running.stop()


def get(server: MetricsServer, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_the_server_serves_metrics_in_the_text_format(
    server: tuple[MetricsServer, Ticks, list[tuple[bool, str]]],
) -> None:
    status, kind, body = get(server[0], "/metrics")
    assert status == 200
    assert kind.startswith("text/plain; version=0.0.4")
    assert "surge_pending_pods 7\n" in body
    assert get(server[0], "/nothing")[0] == 404


def test_healthz_fails_once_the_loop_is_stuck_and_recovers_after_a_pass(
    server: tuple[MetricsServer, Ticks, list[tuple[bool, str]]],
) -> None:
    running, ticks, _ = server
    assert get(running, "/healthz")[0] == 200
    ticks.now += 31.0
    status, _, body = get(running, "/healthz")
    assert (status, body.startswith("stuck")) == (500, True)
    running.health.passed()
    assert get(running, "/healthz")[0] == 200


def test_readyz_answers_the_readiness_check(
    server: tuple[MetricsServer, Ticks, list[tuple[bool, str]]],
) -> None:
    running, _, readiness = server
    assert get(running, "/readyz")[:1] == (503,)
    readiness.append((True, "standby"))
    assert get(running, "/readyz")[0::2] == (200, "standby\n")
