"""Whole simulation runs: the real loop on SimCluster + SimCloud, the report, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.control.cli import main as surge
from simulator.cli import main
from simulator.loader import load_scenario
from simulator.plots import PLOTS
from simulator.report import build_report, dumps, pod_outcome
from simulator.run import Result, simulate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# One hour: a step up that needs new nodes (Spot first), a step down, two GPU pods no pool can
# run, and Spot evictions frequent enough to draw on the seed.
SMALL = """\
name: small
duration: 1h
seed: 7
pools:
  - {name: spotz1, vmSize: Standard_D4s_v5, priority: Spot, zones: ["1"], count: 0, maxCount: 3}
  - {name: regz1, vmSize: Standard_D4s_v5, zones: ["1"], count: 1, maxCount: 5}
cloud:
  spotEvictionsPerNodeHour: 1
workloads:
  - kind: deployment
    name: web
    pod: {cpu: 500m, memory: 512Mi, tolerateSpot: true}
    replicas: {kind: step, initial: 4, steps: [{at: 5m, replicas: 30}, {at: 40m, replicas: 10}]}
  - kind: batch
    name: train
    pod: {cpu: "2", memory: 1Gi, gpu: 1}
    at: 10m
    pods: 2
    runFor: 10m
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write(tmp_path_factory.mktemp("scenario"), "small.yaml", SMALL)


@pytest.fixture(scope="module")
def small_run(small_file: str) -> Result:
    return simulate(load_scenario(small_file))


def test_every_pod_ends_bound_finished_or_pending_with_a_reason(small_run: Result) -> None:
    records = small_run.recorder.pods
    outcomes = {key: pod_outcome(record) for key, record in records.items()}
    pending = {key for key, outcome in outcomes.items() if outcome == "pending"}
    assert pending, "the scenario is meant to leave pods the autoscaler cannot help"
    assert all(records[key].pending_reason for key in pending)
    view = small_run.view
    assert pending == {pod.key for pod in view.pods if pod.node_name is None}
    assert {key for key, o in outcomes.items() if o == "running"} == {
        pod.key for pod in view.pods if pod.node_name is not None
    }
    report = small_run.report()["pods"]
    assert sum(report["outcomes"].values()) == report["total"] == len(records)


def test_pods_no_pool_can_run_are_reported_with_the_planners_reason(small_run: Result) -> None:
    never = small_run.report()["pods"]["never_scheduled"]
    assert [(r["pods"], r["workloads"]) for r in never["reasons"]] == [(2, {"train": 2})]
    assert "nvidia.com/gpu" in never["reasons"][0]["reason"]
    assert never["reasons"][0]["reason"].startswith("pod didn't trigger scale-up")


def test_the_loop_runs_every_interval_and_the_samples_reach_the_end(small_run: Result) -> None:
    recorder = small_run.recorder
    assert [loop.time for loop in recorder.loops] == [10.0 * k for k in range(361)]
    assert recorder.samples[-1].time == 3600.0
    report = small_run.report()
    assert report["nodes"]["requested"] > 1  # the step up needed new nodes
    assert report["cost"]["by_priority"]["Spot"]["nodes"] >= 1  # Spot came first
    assert report["cloud"]["api_calls"]["scale"] >= 1


def test_the_same_seed_gives_the_same_report_bytes_and_another_seed_does_not(
    small_file: str, small_run: Result
) -> None:
    scenario = load_scenario(small_file)
    again = simulate(scenario)
    assert dumps(again.report()) == dumps(small_run.report())
    other = simulate(scenario, seed=8)
    assert other.seed == 8
    assert other.report()["run"]["seed"] == 8
    assert dumps(other.report()["nodes"]) != dumps(small_run.report()["nodes"])


def test_the_report_ignores_wall_clock_decision_times(small_run: Result) -> None:
    recorder = small_run.recorder
    before = dumps(small_run.report())
    saved = [loop.decision_seconds for loop in recorder.loops]
    for loop in recorder.loops:
        loop.decision_seconds *= 3
    try:
        assert dumps(build_report(recorder, end=small_run.end, run=small_run.run_info())) == before
    finally:
        for loop, seconds in zip(recorder.loops, saved, strict=True):
            loop.decision_seconds = seconds
    assert small_run.timing()["decision_seconds"]["count"] == len(recorder.loops)


# -- the command line ------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_writes_a_report_timing_and_plots_and_prints_a_summary(
    tmp_path: Path, small_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, small_file, "--seed", "7", "--out", str(tmp_path))
    assert (code, err) == (0, "")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["run"]["scenario"] == "small"
    assert "decision_seconds" in json.loads((tmp_path / "timing.json").read_text())
    assert all((tmp_path / name).stat().st_size > 0 for name in PLOTS)
    assert "Never scheduled: 2 pods" in out


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (("kind: step, initial: 4", "kind: spiky, initial: 4"), "$.workloads[0].replicas.kind"),
        (("pods: 2", "pods: -2"), "$.workloads[1].pods"),
        (("maxCount: 5", "maxCount: five"), "$.pools[1].maxCount"),
        (("duration: 1h", "duration: soon"), "$.duration"),
    ],
)
def test_a_bad_scenario_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], named: str
) -> None:
    assert edit[0] in SMALL
    bad = write(tmp_path, "bad.yaml", SMALL.replace(*edit))
    code, out, err = run_cli(capsys, bad, "--out", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert err.startswith("surge simulate: error: ") and named in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--trace", "nowhere.csv"), "nowhere.csv"),
        (("--trace", str(FIXTURES / "openb_pod_list_small.csv"), "--compression", "0"),
         "--compression"),
        (("--config", "nowhere.yaml"), "nowhere.yaml"),
    ],
)
def test_bad_files_and_options_exit_2_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], named: str
) -> None:
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path))
    assert (code, out) == (2, "")
    assert named in err


def test_a_bad_trace_row_exits_2_naming_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (FIXTURES / "openb_pod_list_small.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",6000,", ",6 cores,", 1)
    trace = write(tmp_path, "openb_pod_list_bad.csv", "\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, "--trace", trace, "--out", str(tmp_path))
    assert code == 2
    assert "openb_pod_list_bad.csv:4" in err and "cpu_milli" in err


@pytest.mark.parametrize(
    ("trace", "pods"),
    [("openb_pod_list_small.csv", 8), ("AzureLLMInferenceTrace_small.csv", None)],
)
def test_a_trace_replays_on_the_scenarios_pools(
    tmp_path: Path, small_file: str, capsys: pytest.CaptureFixture[str], trace: str,
    pods: int | None,
) -> None:
    argv = (small_file, "--trace", str(FIXTURES / trace), "--no-plots", "--out", str(tmp_path))
    code, _, err = run_cli(capsys, *argv)
    assert (code, err) == (0, "")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["run"]["scenario"] == f"trace {trace}"
    if pods is not None:
        assert report["pods"]["total"] == pods
    assert report["pods"]["total"] > 0
    assert sum(report["pods"]["outcomes"].values()) == report["pods"]["total"]


def test_a_config_file_replaces_the_autoscaler_settings(
    tmp_path: Path, small_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, "autoscaler.yaml", "loopInterval: 1m\n")
    code, _, err = run_cli(capsys, small_file, "--config", config, "--no-plots",
                           "--out", str(tmp_path))
    assert (code, err) == (0, "")
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["run"]["loop_interval_s"], report["loops"]["passes"]) == (60.0, 61)


def test_a_bad_config_file_exits_2_naming_the_field(
    tmp_path: Path, small_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, "autoscaler.yaml", "loopInterval: often\n")
    code, _, err = run_cli(capsys, small_file, "--config", config, "--out", str(tmp_path))
    assert code == 2
    assert "$.loopInterval" in err and "autoscaler.yaml" in err


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        (("simulate", "--help"), 0, "out", "usage: surge simulate"),
        (("simulate", "--seed", "x"), 2, "err", "invalid int value"),
        (("simulate", "missing.yaml", "--seed", "3"), 2, "err", "missing.yaml"),
    ],
)
def test_surge_forwards_simulate_and_its_options_to_the_simulator(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], code: int, stream: str, text: str
) -> None:
    assert surge(list(argv)) == code
    out, err = capsys.readouterr()
    assert text in (out if stream == "out" else err)
