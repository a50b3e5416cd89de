"""Replica curves, pod templates and the workload driver (on the real engine, with a stand-in
cluster that records calls, and once with the real SimCluster for evictions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from autoscaler.model.constraints import effective_requests
from autoscaler.model.labels import HOSTNAME_LABEL, SPOT_LABEL, ZONE_LABEL
from autoscaler.model.pod import Pod
from simulator.cluster import SimCluster
from simulator.curves import Diurnal, Ramp, Step, Table, Viral
from simulator.engine import SAMPLE, Engine
from simulator.metrics import Recorder
from simulator.scenario import DEFAULT_START, SPOT_TOLERATION
from simulator.workloads import (
    Batch,
    Deployment,
    PodTemplate,
    Scenario,
    TracePod,
    TraceReplay,
    WorkloadDriver,
)
from tests.builders import GiB, node, pool

WEB = PodTemplate(500, GiB, labels=(("app", "web"),))


class RecordingCluster:
    """Stand-in for SimCluster: records submit/finish with the time; tests bind and evict."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.calls: list[tuple[str, float, str]] = []
        self.pods: dict[str, Pod] = {}
        self.workload: dict[str, str] = {}
        self.pending: list[str] = []  # oldest first
        self.running: list[str] = []  # bind order
        self.listeners: list[Callable[[Pod, str], None]] = []
        self.copies = 0

    def submit(self, pod: Pod, workload: str) -> None:
        self.calls.append(("submit", self.engine.now, pod.key))
        self.pods[pod.key] = pod
        self.workload[pod.key] = workload
        self.pending.append(pod.key)

    def finish(self, key: str) -> None:
        self.calls.append(("finish", self.engine.now, key))
        for keys in (self.pending, self.running):
            if key in keys:
                keys.remove(key)

    def pending_keys(self, workload: str) -> list[str]:
        return [k for k in self.pending if self.workload[k] == workload]

    def running_keys(self, workload: str) -> list[str]:
        return [k for k in self.running if self.workload[k] == workload]

    def on_bind(self, listener: Callable[[Pod, str], None]) -> None:
        self.listeners.append(listener)

    def bind(self, key: str) -> None:
        self.pending.remove(key)
        self.running.append(key)
        for listener in self.listeners:
            listener(replace(self.pods[key], node_name="n1"), self.workload[key])

    def evict(self, key: str) -> str:
        """Like SimCluster: the pod goes, a pending copy named ``<name>-r<n>`` comes."""
        self.running.remove(key)
        self.copies += 1
        copy = replace(self.pods[key], name=f"{self.pods[key].name}-r{self.copies}")
        self.pods[copy.key] = copy
        self.workload[copy.key] = self.workload[key]
        self.pending.append(copy.key)
        return copy.key

    def done(self, kind: str) -> list[tuple[float, str]]:
        return [(t, key) for name, t, key in self.calls if name == kind]


def drive(*workloads: object, duration: float = 3600.0, seed: int = 1
          ) -> tuple[Engine, RecordingCluster]:
    engine = Engine(DEFAULT_START)
    cluster = RecordingCluster(engine)
    scenario = Scenario("t", duration, (pool(),), tuple(workloads), seed=seed)  # type: ignore[arg-type]
    WorkloadDriver(engine, cluster, scenario).start()
    return engine, cluster


# --- curves -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("curve", "samples"),
    [
        (Step(3, ((60.0, 5), (120.0, 1))), {0: 3, 59.9: 3, 60: 5, 119: 5, 120: 1, 9e9: 1}),
        (Ramp(10, 20, at=100.0, over=100.0), {0: 10, 100: 10, 150: 15, 200: 20, 1e6: 20}),
        (Ramp(20, 0, at=0.0, over=0.0), {0: 20, 0.1: 0}),
        (Diurnal(10, 30, peak_at=0.0, period=100.0), {0: 30, 25: 20, 50: 10, 75: 20, 100: 30}),
        (Viral(10, 100, at=60.0, rise=100.0, half_life=50.0),
         {0: 10, 60: 10, 110: 32, 160: 100, 210: 55, 260: 33, 1e6: 10}),
        (Viral(0, 40, at=0.0, rise=100.0, half_life=10.0), {0: 0, 50: 20, 100: 40, 110: 20}),
        (Table((10.0, 20.0), (4, 7)), {0: 4, 10: 4, 19.9: 4, 20: 7, 1e9: 7}),
    ],
)
def test_a_curve_gives_the_documented_replicas_at_each_time(
    curve: Step | Ramp | Diurnal | Viral | Table, samples: dict[float, int]
) -> None:
    assert {t: curve.replicas(t) for t in samples} == samples


def test_the_viral_curve_is_ten_times_the_baseline_an_hour_after_it_starts_then_decays() -> None:
    curve = Viral(30, 300, at=1800.0, rise=3600.0, half_life=7200.0)
    assert curve.replicas(1800 + 3600) == 300
    assert curve.replicas(1800 + 3600 + 7200) == 165  # the excess over the baseline halved
    assert max(curve.replicas(t) for t in range(0, 30000, 30)) == 300


# --- pod templates ------------------------------------------------------------------------------


def test_a_pod_template_builds_pods_with_its_requests_and_constraints() -> None:
    template = PodTemplate(
        250, 2 * GiB, gpu=1, tolerate_spot=True, zone_spread_max_skew=1,
        hostname_spread_max_skew=2, node_selector=(("tier", "web"),), labels=(("app", "w"),),
        priority=5,
    )
    pod = template.pod("w-0", "shop", "ReplicaSet/w")
    assert (pod.key, pod.owner, pod.node_name) == ("shop/w-0", "ReplicaSet/w", None)
    assert pod.priority == 5
    assert dict(effective_requests(pod)) == {
        "cpu": 250, "memory": 2 * GiB, "nvidia.com/gpu": 1, "pods": 1}
    assert SPOT_TOLERATION in pod.tolerations
    assert [(s.topology_key, s.max_skew) for s in pod.topology_spread] == [
        (ZONE_LABEL, 1), (HOSTNAME_LABEL, 2)]
    assert pod.topology_spread[0].label_selector.match_labels == (("app", "w"),)
    assert pod.node_selector == (("tier", "web"),)


def test_a_template_without_spot_toleration_or_spread_adds_neither() -> None:
    pod = WEB.pod("web-0", "default", "ReplicaSet/web")
    assert pod.tolerations == () and pod.topology_spread == ()
    assert all(t.key != SPOT_LABEL for t in pod.tolerations)


# --- deployments --------------------------------------------------------------------------------


def test_a_deployment_creates_pods_up_to_its_curve_at_each_sample() -> None:
    engine, cluster = drive(Deployment("web", "default", WEB, Step(3, ((60.0, 5),)), 30.0))
    engine.run(59.0)
    assert cluster.done("submit") == [(0.0, f"default/web-{i}") for i in range(3)]
    engine.run(60.0)
    assert cluster.done("submit")[3:] == [(60.0, "default/web-3"), (60.0, "default/web-4")]


def test_scaling_down_deletes_pending_pods_newest_first_then_the_newest_running() -> None:
    engine, cluster = drive(Deployment("web", "default", WEB, Step(5, ((60.0, 1),)), 30.0))
    engine.run(0.0)
    for key in ("default/web-2", "default/web-0", "default/web-1"):
        cluster.bind(key)
    engine.run(60.0)
    assert [key for _, key in cluster.done("finish")] == [
        "default/web-4", "default/web-3", "default/web-1", "default/web-0"]
    assert cluster.running == ["default/web-2"]


def test_pods_recreated_after_an_eviction_count_toward_the_deployment() -> None:
    engine, cluster = drive(Deployment("web", "default", WEB, Step(2), 30.0))
    engine.run(0.0)
    cluster.bind("default/web-0")
    cluster.evict("default/web-0")
    engine.run(30.0)
    assert len(cluster.done("submit")) == 2
    assert sorted(cluster.pending) == ["default/web-0-r1", "default/web-1"]


def test_a_deployment_is_not_sampled_after_the_end_of_the_run() -> None:
    engine, _ = drive(Deployment("web", "default", WEB, Step(1), 30.0), duration=90.0)
    engine.run(1e9)
    assert engine.now == 1e9 and engine.pending == 0
    assert engine.processed == 4  # samples at 0, 30, 60 and 90


def test_deployment_noise_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    def counts(seed: int) -> list[int]:
        engine, cluster = drive(
            Deployment("web", "default", WEB, Step(100), 30.0, noise=0.2), seed=seed)
        seen: list[int] = []

        def look() -> None:
            seen.append(len(cluster.pending))
            engine.after(30.0, look, SAMPLE)

        engine.at(0.0, look, SAMPLE)
        engine.run(600.0)
        return seen

    assert counts(1) == counts(1)
    assert counts(1) != counts(2)
    assert len(set(counts(1))) > 1


# --- batches ------------------------------------------------------------------------------------


def test_batch_pods_arrive_at_their_time_and_complete_run_seconds_after_binding() -> None:
    engine, cluster = drive(Batch("job", "ml", WEB, at=100.0, pods=2, run_seconds=50.0))
    engine.run(99.0)
    assert cluster.calls == []
    engine.run(100.0)
    assert cluster.done("submit") == [(100.0, "ml/job-0"), (100.0, "ml/job-1")]
    engine.at(130.0, lambda: cluster.bind("ml/job-1"))
    engine.run(1000.0)
    assert cluster.done("finish") == [(180.0, "ml/job-1")]
    assert cluster.pending == ["ml/job-0"]  # never bound: never completes


def test_batch_waves_arrive_every_period_with_their_own_names() -> None:
    engine, cluster = drive(
        Batch("job", "ml", WEB, at=10.0, pods=1, run_seconds=5.0, every=100.0, waves=3))
    engine.run(1000.0)
    assert cluster.done("submit") == [
        (10.0, "ml/job-0-0"), (110.0, "ml/job-1-0"), (210.0, "ml/job-2-0")]


def test_a_recreated_batch_pod_runs_its_full_time_after_its_own_binding() -> None:
    engine, cluster = drive(Batch("job", "ml", WEB, at=0.0, pods=1, run_seconds=100.0))
    engine.run(0.0)
    cluster.bind("ml/job-0")
    engine.at(40.0, lambda: cluster.evict("ml/job-0"))
    engine.at(60.0, lambda: cluster.bind("ml/job-0-r1"))
    engine.run(1000.0)
    assert cluster.done("finish") == [(100.0, "ml/job-0"), (160.0, "ml/job-0-r1")]


# --- trace replays ------------------------------------------------------------------------------


def test_trace_pods_arrive_and_leave_at_their_times_in_order() -> None:
    replay = TraceReplay("tr", "openb", (
        TracePod("p1", 0.0, 0.0, WEB), TracePod("p2", 5.0, 50.0, WEB),
        TracePod("p3", 5.0, 20.0, WEB)))
    engine, cluster = drive(replay)
    engine.run(1000.0)
    assert cluster.calls == [
        ("submit", 0.0, "openb/p1"), ("finish", 0.0, "openb/p1"),
        ("submit", 5.0, "openb/p2"), ("submit", 5.0, "openb/p3"),
        ("finish", 20.0, "openb/p3"), ("finish", 50.0, "openb/p2")]


def test_a_trace_pods_recreated_copy_is_deleted_when_the_trace_deletes_the_pod() -> None:
    engine, cluster = drive(TraceReplay("tr", "openb", (TracePod("p1", 0.0, 100.0, WEB),)))
    engine.run(0.0)
    cluster.bind("openb/p1")
    copy = cluster.evict("openb/p1")
    engine.run(1000.0)
    assert (100.0, copy) in cluster.done("finish")
    assert cluster.pending == [] and cluster.running == []


def test_trace_pods_share_one_owner_so_identical_pods_group_together() -> None:
    engine, cluster = drive(TraceReplay("tr", "openb", (
        TracePod("a", 0.0, 9.0, WEB), TracePod("b", 0.0, 9.0, WEB))))
    engine.run(0.0)
    assert {cluster.pods[k].owner for k in cluster.pending} == {"Job/tr"}


def test_with_the_real_cluster_an_evicted_trace_pods_copy_leaves_with_the_trace_pod() -> None:
    engine = Engine(DEFAULT_START)
    recorder = Recorder()
    cluster = SimCluster(engine, recorder)
    cluster.add_node(node("n1", pool="pool1"), ready_after=0.0)
    replay = TraceReplay("tr", "openb", (TracePod("p1", 10.0, 100.0, WEB),))
    WorkloadDriver(engine, cluster, Scenario("t", 3600.0, (pool(),), (replay,))).start()
    engine.run(20.0)
    assert cluster.running_keys("tr") == ["openb/p1"]
    cluster.remove_node("n1", "spot-eviction")
    assert cluster.pending_keys("tr") != []
    engine.run(200.0)
    assert cluster.pending_keys("tr") == [] and cluster.running_keys("tr") == []
    assert all(record.finished == 100.0 for key, record in recorder.pods.items()
               if key != "openb/p1")
