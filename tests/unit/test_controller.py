"""The controller around the reconcile loop: leadership gating, leader terms resuming stored
operations, event deduplication and rate limiting, the status and the ConfigMap store (over an
in-memory ConfigMap API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from autoscaler.cloud.fake import FakeCloud
from autoscaler.cloud.provider import Operation
from autoscaler.cloud.store import MemoryStore
from autoscaler.control.clock import FixedClock
from autoscaler.control.config import EventConfig
from autoscaler.control.controller import Controller
from autoscaler.control.guard import DEDUPLICATED, RATE_LIMITED, SENT, EventGate
from autoscaler.control.loop import LoopConfig
from autoscaler.kube.fake import FakeSource
from autoscaler.kube.reflector import ApiError
from autoscaler.kube.status import OPERATIONS_KEY, ConfigMapStore, StatusConfigMap
from autoscaler.model.pool import Priority
from tests.builders import SPOT_TOLERATION, GiB, node, pod, pool

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Leadership:
    def __init__(self, leading: bool = True) -> None:
        self.identity = "surge-0"
        self.term = 1
        self.leading = leading

    def is_leader(self) -> bool:
        return self.leading


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class MemoryConfigMaps:
    """A ConfigMap API in a dict; ``fail`` makes the next writes raise."""

    def __init__(self) -> None:
        self.maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes = 0
        self.fail = 0

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.maps.get((namespace, name))

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._write()
        self.maps[(namespace, body["metadata"]["name"])] = body
        return body

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self.maps.get((namespace, name))
        if current is None:
            raise ApiError(404, "not found")
        self._write()
        current.setdefault("data", {}).update(body["data"])
        return current

    def _write(self) -> None:
        self.writes += 1
        if self.fail:
            self.fail -= 1
            raise ApiError(500, "injected")


def spot_pods(n: int) -> list:  # type: ignore[type-arg]
    return [pod(f"web-{i}", 1000, GiB, tolerations=(SPOT_TOLERATION,)) for i in range(n)]


def scene(pods: list, **kwargs: Any) -> tuple[Controller, FakeCloud, FakeSource]:  # type: ignore[type-arg]
    pools = [pool("spot1", zones=("1",), priority=Priority.SPOT, max_count=20),
             pool("reg1", zones=("1",), max_count=20)]
    cloud = FakeCloud(pools, NOW)
    source = FakeSource(pods)
    kwargs.setdefault("leadership", Leadership())
    return Controller(source, cloud, FixedClock(NOW), LoopConfig(), **kwargs), cloud, source


def scales(cloud: FakeCloud) -> list[tuple[object, ...]]:
    return [args for name, args in cloud.calls if name == "scale"]


def test_a_standby_replica_neither_reads_nor_writes_the_cloud() -> None:
    controller, cloud, source = scene(spot_pods(6), leadership=Leadership(leading=False))
    assert controller.step() is None
    assert cloud.calls == [] and source.events == []
    assert "surge_leader 0" in controller.metrics.render()


def test_a_leader_that_loses_the_lease_mid_pass_writes_nothing_more_and_backs_nothing_off() -> None:
    leadership = Leadership()
    controller, cloud, _ = scene(spot_pods(6), leadership=leadership)
    inner_list = cloud.list_pools

    def list_then_lose() -> Any:
        leadership.leading = False  # the lease lapses right after the pools are read
        return inner_list()

    cloud.list_pools = list_then_lose  # type: ignore[method-assign]
    report = controller.step()
    assert report is not None
    assert [(a.result, "NotLeader" in a.detail) for a in report.actions] == [("conflict", True)]
    assert scales(cloud) == []
    assert controller.reconciler is not None
    assert controller.reconciler.backoffs.active(NOW) == ()


def test_a_new_leader_term_resumes_the_stored_operations_and_does_not_scale_again() -> None:
    store = MemoryStore()
    store.save(Operation("spot1", "scale", 2, "op-old", NOW - timedelta(seconds=30)))
    leadership = Leadership(leading=False)
    controller, cloud, _ = scene(spot_pods(6), leadership=leadership, store=store)
    cloud.pending.add("op-old")
    controller.step()
    leadership.leading, leadership.term = True, 2
    report = controller.step()
    assert report is not None and report.actions == ()
    assert scales(cloud) == []
    assert ("operation", ("op-old",)) in cloud.calls
    assert report.plan is not None and report.plan.groups[0].on_upcoming == 6


def test_each_new_term_builds_a_fresh_loop_from_the_store() -> None:
    leadership = Leadership()
    store = MemoryStore()
    controller, _, _ = scene(spot_pods(6), leadership=leadership, store=store)
    controller.step()
    first = controller.reconciler
    controller.step()
    assert controller.reconciler is first
    leadership.term = 2
    controller.step()
    assert controller.reconciler is not first


def test_configured_minimums_apply_to_the_pools_the_cloud_reports() -> None:
    controller, _, _ = scene([], min_counts={"reg1": 2})
    controller.step()
    assert {p.name: p.min_count for p in controller.cloud.pools or ()} == {"reg1": 2, "spot1": 0}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        # (seconds later, pod, message) -> outcome; window 60 s, burst 2, refill 1 per 10 s
        ([(0, "a", "m"), (1, "a", "m"), (61, "a", "m")], [SENT, DEDUPLICATED, SENT]),
        ([(0, "a", "m"), (1, "a", "other")], [SENT, SENT]),
        ([(0, "a", "m"), (0, "b", "m"), (0, "c", "m"), (10, "c", "m")],
         [SENT, SENT, RATE_LIMITED, SENT]),
    ],
)
def test_events_are_deduplicated_per_pod_and_message_and_rate_limited(
    script: list[tuple[float, str, str]], expected: list[str]
) -> None:
    ticks = Ticks()
    gate = EventGate(EventConfig(dedup_window=60, burst=2, per_second=0.1), ticks)
    outcomes = []
    for later, pod_key, message in script:
        ticks.now = later
        outcomes.append(gate.admit(pod_key, "TriggeredScaleUp", message))
    assert outcomes == expected


def test_a_new_leader_does_not_repeat_the_events_the_last_term_sent() -> None:
    leadership = Leadership()
    controller, _, source = scene([pod("huge", 900_000, GiB)], leadership=leadership)
    controller.step()
    assert [reason for _, reason, _ in source.events] == ["NotTriggerScaleUp"]
    leadership.term = 2  # a fresh loop forgets what it said; the gate remembers
    controller.step()
    assert len(source.events) == 1
    assert 'surge_events_total{reason="NotTriggerScaleUp",outcome="deduplicated"} 1' in \
        controller.metrics.render()


def test_the_status_names_each_pools_target_ready_upcoming_and_operation() -> None:
    maps = MemoryConfigMaps()
    status = StatusConfigMap(maps, "kube-system")
    nodes = [node("r1", 500, pool="reg1"), node("r2", 500, pool="reg1", ready=False)]
    pools = [pool("spot1", zones=("1",), priority=Priority.SPOT, max_count=20),
             pool("reg1", zones=("1",), max_count=20, count=2)]
    cloud = FakeCloud(pools, NOW)
    cloud.pending.add("op-1")
    controller = Controller(FakeSource(spot_pods(6), nodes), cloud, FixedClock(NOW),
                            LoopConfig(), status=status)
    controller.step()
    data = maps.maps[("kube-system", "surge-status")]["data"]
    doc = json.loads(data["status.json"])
    by_pool = {p["name"]: p for p in doc["pools"]}
    spot1 = {k: by_pool["spot1"][k] for k in ("target", "ready", "upcoming", "operation")}
    assert spot1 == {"target": 2, "ready": 0, "upcoming": 2,
                     "operation": "scale to 2 since 2026-11-25T12:00:00Z"}
    assert (by_pool["reg1"]["ready"], by_pool["reg1"]["registered"]) == (1, 2)
    assert doc["health"] == "Healthy" and doc["leader"] == "surge"
    assert doc["last_loop"]["pending_pods"] == 6
    assert "spot1 0->2 started" in data["status"]
    assert data["status"].splitlines()[2] == "Health:  Healthy"


def test_the_status_is_rewritten_when_it_changes_or_after_the_interval_only() -> None:
    maps = MemoryConfigMaps()
    ticks = Ticks()
    controller, _, _ = scene([], status=StatusConfigMap(maps, "ns"), monotonic=ticks,
                             status_every=10.0)
    for at in (0.0, 1.0, 2.0, 10.0):
        ticks.now = at
        controller.step()
    assert maps.writes == 2  # the first pass, then 10 s later


def test_the_configmap_store_round_trips_and_retries_a_failed_write() -> None:
    maps = MemoryConfigMaps()
    store = ConfigMapStore(maps, "kube-system")
    op = Operation("spot1", "scale", 4, "token-1", NOW)
    maps.fail = 1
    store.save(op)
    assert store.dirty and ("kube-system", "surge-status") not in maps.maps
    assert store.flush()
    assert ConfigMapStore(maps, "kube-system").load() == {"spot1": op}
    store.delete("spot1")
    text = maps.maps[("kube-system", "surge-status")]["data"][OPERATIONS_KEY]
    assert json.loads(text) == {"operations": []}


def test_an_unreadable_operations_key_is_read_as_empty() -> None:
    maps = MemoryConfigMaps()
    maps.maps[("ns", "surge-status")] = {"data": {OPERATIONS_KEY: "{not json"}}
    assert ConfigMapStore(maps, "ns").load() == {}


def test_a_leader_that_cannot_read_the_store_does_not_act() -> None:
    maps = MemoryConfigMaps()
    store = ConfigMapStore(maps, "ns")
    maps.get = lambda namespace, name: (_ for _ in ()).throw(ApiError(500, "down"))  # type: ignore[method-assign]
    controller, cloud, _ = scene(spot_pods(6), store=store)
    assert controller.step() is None
    assert cloud.calls == []
    assert 'surge_api_errors_total{api="kubernetes",operation="operations"} 1' in \
        controller.metrics.render()


def test_node_and_cost_gauges_count_registered_nodes_by_pool_priority_and_zone() -> None:
    nodes = [node("s1", 3860, pool="spot1"), node("r1", 3860, pool="reg1"),
             node("r2", 3860, pool="reg1", zone="eastus-2")]
    pools = [pool("spot1", zones=("1",), priority=Priority.SPOT, max_count=20, count=1),
             pool("reg1", zones=("1", "2"), max_count=20, count=2)]
    controller = Controller(FakeSource([], nodes), FakeCloud(pools, NOW), FixedClock(NOW),
                            LoopConfig())
    controller.step()
    text = controller.metrics.render()
    size = 'vm_size="Standard_D4s_v5"'
    assert f'surge_nodes{{pool="spot1",{size},priority="Spot",zone="eastus-1"}} 1' in text
    assert f'surge_nodes{{pool="reg1",{size},priority="Regular",zone="eastus-2"}} 1' in text
    d4 = controller.reconciler.catalog.get("Standard_D4s_v5")  # type: ignore[union-attr]
    assert d4 is not None
    cost = 'surge_cost_per_hour{pool="reg1",priority="Regular",zone="eastus-1"}'
    assert f"{cost} {d4.price_per_hour:g}" in text
