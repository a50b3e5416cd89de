"""Scale-down in the simulator: SimCluster's Eviction API, cordon and notices, and a whole
"surge then fade" run whose node count comes back to the baseline with no budget broken."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoscaler.kube.source import EvictionResult
from autoscaler.model.disruption import EVICTION_NOTICE_TAINT, PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import LabelSelector
from autoscaler.model.pod import Pod
from simulator.cluster import SimCluster
from simulator.engine import Engine
from simulator.loader import load_scenario
from simulator.metrics import Recorder
from simulator.run import Result, simulate
from tests.builders import GiB, node, pod

START = datetime(2026, 11, 25, tzinfo=UTC)
WEB = LabelSelector((("app", "web"),))


def world(pdbs: tuple[PodDisruptionBudget, ...] = ()) -> tuple[Engine, SimCluster, Recorder]:
    engine = Engine(START)
    recorder = Recorder()
    cluster = SimCluster(engine, recorder, pdbs)
    for name in ("n1", "n2"):
        cluster.add_node(node(name), ready_after=0.0)
    engine.run(0.0)
    return engine, cluster, recorder


def bound(cluster: SimCluster, key: str) -> Pod:
    return next(p for p in cluster.observe().pods if p.key == key)


def test_an_evicted_pod_of_a_controller_comes_back_pending_and_a_bare_pod_is_lost() -> None:
    engine, cluster, recorder = world()
    cluster.cordon("n2", True)
    cluster.submit(pod("w0", 500, GiB, labels={"app": "web"}), "web")
    cluster.submit(pod("solo", 500, GiB, owner=""), "solo")
    engine.run(1.0)
    assert cluster.evict(bound(cluster, "default/w0"), 30) is EvictionResult.EVICTED
    assert cluster.evict(bound(cluster, "default/solo"), 30) is EvictionResult.EVICTED
    engine.run(2.0)
    where = {p.key: p.node_name for p in cluster.observe().pods}
    assert "default/w0" not in where and where["default/w0-r1"] == "n1"
    assert "default/solo" not in where
    assert recorder.pods["default/solo"].lost == "evicted from node n1"
    assert recorder.disrupted == 2


def test_evictions_beyond_the_budget_are_refused_with_429() -> None:
    budget = PodDisruptionBudget("web", selector=WEB, max_unavailable=1)
    engine, cluster, recorder = world((budget,))
    for i in range(3):
        cluster.submit(pod(f"w{i}", 500, GiB, labels={"app": "web"}), "web")
    engine.run(1.0)
    cluster.cordon("n1", True)
    cluster.cordon("n2", True)  # the replacement stays pending: the budget is spent
    assert cluster.evict(bound(cluster, "default/w0"), None) is EvictionResult.EVICTED
    assert cluster.evict(bound(cluster, "default/w1"), None) is EvictionResult.BLOCKED_BY_PDB
    assert recorder.evictions_blocked == 1
    cluster.cordon("n2", False)  # the replacement runs: one disruption allowed again
    engine.run(2.0)
    assert cluster.evict(bound(cluster, "default/w1"), None) is EvictionResult.EVICTED


def test_a_pod_under_two_budgets_cannot_be_evicted_and_a_gone_pod_is_gone() -> None:
    budgets = (PodDisruptionBudget("a", selector=WEB, max_unavailable=5),
               PodDisruptionBudget("b", selector=WEB, max_unavailable=5))
    engine, cluster, _ = world(budgets)
    cluster.submit(pod("w0", 500, GiB, labels={"app": "web"}), "web")
    engine.run(1.0)
    w0 = bound(cluster, "default/w0")
    assert cluster.evict(w0, None) is EvictionResult.ERROR
    cluster.finish(w0.key)
    assert cluster.evict(w0, None) is EvictionResult.GONE


def test_a_cordoned_node_takes_no_pod_until_uncordoned() -> None:
    engine, cluster, _ = world()
    cluster.cordon("n1", True)
    cluster.cordon("n2", True)
    cluster.submit(pod("w0", 500, GiB), "web")
    engine.run(1.0)
    assert bound(cluster, "default/w0").node_name is None
    assert all(n.unschedulable for n in cluster.observe().nodes)
    cluster.cordon("n1", False)
    engine.run(2.0)
    assert bound(cluster, "default/w0").node_name == "n1"


def test_an_eviction_notice_taints_the_node_and_keeps_new_pods_off_it() -> None:
    engine, cluster, _ = world()
    cluster.eviction_notice("n1")
    cluster.submit(pod("w0", 500, GiB), "web")
    engine.run(1.0)
    n1 = next(n for n in cluster.observe().nodes if n.name == "n1")
    assert [t.key for t in n1.taints] == [EVICTION_NOTICE_TAINT]
    assert bound(cluster, "default/w0").node_name == "n2"


def test_deleting_a_node_with_more_budgeted_pods_than_allowed_is_a_violation() -> None:
    budget = PodDisruptionBudget("web", selector=WEB, max_unavailable=1)
    engine, cluster, recorder = world((budget,))
    cluster.cordon("n2", True)
    for i in range(2):
        cluster.submit(pod(f"w{i}", 500, GiB, labels={"app": "web"}), "web")
    engine.run(1.0)
    cluster.remove_node("n1", "delete-machines")
    assert recorder.pdb_violations == {"default/web": 1}


# Fifty minutes of surge on a small pool, then back to the baseline for the rest of the run.
FADE = """\
name: surge-then-fade
duration: 2h30m
seed: 11
pools:
  - {name: regz1, vmSize: Standard_D4s_v5, zones: ["1"], count: 2, minCount: 1, maxCount: 12}
  - {name: spotz1, vmSize: Standard_D4s_v5, priority: Spot, zones: ["1"], count: 0, maxCount: 6}
workloads:
  - kind: deployment
    name: web
    pod: {cpu: 500m, memory: 512Mi, tolerateSpot: true}
    replicas: {kind: step, initial: 8, steps: [{at: 10m, replicas: 60}, {at: 1h, replicas: 8}]}
  - kind: deployment
    name: api
    pod: {cpu: "1", memory: 2Gi}
    replicas: {kind: step, initial: 2, steps: [{at: 10m, replicas: 10}, {at: 1h, replicas: 2}]}
podDisruptionBudgets:
  - {name: web, workload: web, maxUnavailable: 1}
  - {name: api, workload: api, minAvailable: 2}
"""


@pytest.fixture(scope="module")
def fade(tmp_path_factory: pytest.TempPathFactory) -> Result:
    path = Path(tmp_path_factory.mktemp("fade")) / "fade.yaml"
    path.write_text(FADE)
    return simulate(load_scenario(str(path)))


def test_after_surge_then_fade_the_node_count_is_back_near_the_baseline(fade: Result) -> None:
    report = fade.report()
    baseline = 2
    assert report["nodes"]["peak_registered"] >= 6
    assert report["nodes"]["at_end"] <= baseline + 1
    down = report["scale_down"]
    assert down["nodes_removed"] >= report["nodes"]["peak_registered"] - baseline - 1
    assert down["pdb_violations"] == 0
    assert down["cost_saved_usd"] > 0
    assert report["pods"]["outcomes"]["lost"] == 0
    assert report["pods"]["outcomes"]["pending"] == 0


def test_scale_down_respects_the_budgets_of_the_scenario(fade: Result) -> None:
    assert fade.scenario.pdbs[0].key == "default/web"
    assert fade.recorder.pdb_violations == {}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("podDisruptionBudgets: [{name: x, workload: nope, maxUnavailable: 1}]",
         "unknown workload 'nope'"),
        ("podDisruptionBudgets: [{name: x, workload: web}]",
         "set exactly one of minAvailable and maxUnavailable"),
        ("podDisruptionBudgets: [{name: x, maxUnavailable: 1}]",
         "set exactly one of workload and selector"),
        ("autoscaler: {scaleDown: {maxDisruption: 0%}}", "expected a percentage"),
        ("autoscaler: {scaleDown: {utilizationThreshold: 2}}", "out of range"),
        ("autoscaler: {scaleDown: {unneeded: 5m}}", "unknown field"),
    ],
)
def test_bad_scale_down_sections_of_a_scenario_are_refused(
    tmp_path: Path, section: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    base = FADE.split("podDisruptionBudgets:")[0]
    path.write_text(base + section + "\n")
    with pytest.raises(ValidationError, match=message):
        load_scenario(str(path))


def test_scale_down_settings_of_a_scenario_reach_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    settings = ("autoscaler: {scaleDown: {enabled: false, unneededTime: 5m, "
                "maxDisruption: 25%, utilizationThreshold: 0.6}}\n")
    path.write_text(FADE + settings)
    config = load_scenario(str(path)).loop.scale_down
    assert (config.enabled, config.unneeded_time.total_seconds()) == (False, 300.0)
    assert (config.max_disrupted_fraction, config.utilisation_threshold) == (0.25, 0.6)
