"""The simulation report, computed from hand-built Recorders."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from rich.console import Console

from simulator.metrics import LoopRecord, NodeRecord, PodRecord, Recorder, Sample
from simulator.plots import PLOTS, write_plots
from simulator.report import (
    NO_REASON,
    OUTCOMES,
    build_report,
    build_timing,
    cumulative_cost,
    dumps,
    percentile,
    pod_outcome,
    write_report,
)
from simulator.summary import render_summary
from tests.builders import node_record, pod_record, sim_sample

RUN = {"scenario": "hand-built", "seed": 7}


def recorder_with(
    *,
    pods: Iterable[PodRecord] = (),
    nodes: Iterable[NodeRecord] = (),
    samples: Iterable[Sample] = (),
    loops: Iterable[LoopRecord] = (),
) -> Recorder:
    recorder = Recorder()
    recorder.pods.update((p.key, p) for p in pods)
    recorder.nodes.update((n.name, n) for n in nodes)
    recorder.samples.extend(samples)
    recorder.loops.extend(loops)
    return recorder


def loop(t: float, decision: float, *, skipped: str | None = None) -> LoopRecord:
    return LoopRecord(t, decision, pending=0, actions=0 if skipped else 1, skipped=skipped)


@pytest.mark.parametrize(
    ("record", "outcome"),
    [
        (pod_record(bound=5.0), "running"),
        (pod_record(bound=5.0, finished=50.0), "finished"),
        (pod_record(bound=5.0, finished=50.0, lost="spot-eviction"), "lost"),
        (pod_record(finished=3.0, lost="node removed"), "lost"),
        (pod_record(finished=3.0), "withdrawn"),
        (pod_record(), "pending"),
    ],
)
def test_every_pod_ends_in_exactly_one_outcome(record: PodRecord, outcome: str) -> None:
    assert pod_outcome(record) == outcome
    counts = build_report(recorder_with(pods=[record]), end=100.0, run=RUN)["pods"]["outcomes"]
    assert counts == {name: int(name == outcome) for name in OUTCOMES}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, 0.0),
        ([4.0], 99, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 51, 3.0),
        ([float(v) for v in range(1, 101)], 95, 95.0),
        ([float(v) for v in range(1, 101)], 100, 100.0),
    ],
)
def test_percentiles_are_nearest_rank_observed_values(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == expected


def test_pending_time_runs_from_creation_to_first_binding_over_bound_pods_only() -> None:
    pods = [pod_record(f"default/p{i}", created=10.0, bound=10.0 + i) for i in range(1, 101)]
    pods.append(pod_record("default/never", created=0.0))
    pods.append(pod_record("default/withdrawn", created=0.0, finished=500.0))
    wait = build_report(recorder_with(pods=pods), end=1000.0, run=RUN)["pods"]["pending_seconds"]
    assert (wait["count"], wait["p50"], wait["p95"], wait["p99"], wait["max"]) == (
        100, 50.0, 95.0, 99.0, 100.0
    )


def test_pods_that_never_ran_are_grouped_by_reason_largest_group_first() -> None:
    pods = [
        pod_record("default/a", created=10.0, reason="no node option fits: gpu"),
        pod_record("default/b", created=20.0, reason="pool at max", workload="batch"),
        pod_record("default/c", created=30.0, reason="pool at max", workload="batch"),
        pod_record("default/gone", created=0.0, finished=95.0, reason="pool at max"),
        pod_record("default/d", created=40.0),
        pod_record("default/ran", created=0.0, bound=1.0, reason="pool at max"),
    ]
    never = build_report(recorder_with(pods=pods), end=100.0, run=RUN)["pods"]["never_scheduled"]
    assert (never["pods"], never["pending_at_end"]) == (5, 4)
    assert [(r["reason"], r["pods"], r["withdrawn"]) for r in never["reasons"]] == [
        ("pool at max", 3, 1),
        ("no node option fits: gpu", 1, 0),
        (NO_REASON, 1, 0),
    ]
    first = never["reasons"][0]
    assert (first["workloads"], first["longest_pending_seconds"], first["examples"]) == (
        {"batch": 2, "web": 1}, 95.0, ["default/b", "default/c", "default/gone"]
    )


def test_node_hours_and_cost_are_split_by_pool_priority_and_zone() -> None:
    nodes = [
        node_record("s1", pool="spot1", zone="eastus-1", price=0.1, requested=0.0, removed=3600.0),
        node_record("s2", pool="spot2", zone="eastus-2", price=0.1, requested=1800.0),
        node_record("r1", pool="reg1", zone="eastus-1", priority="Regular", price=1.0,
                    requested=0.0, removed=1800.0, reason="scale-down"),
        node_record("g1", pool="gpu", zone=None, priority="Regular", price=3.0, requested=7200.0),
    ]
    report = build_report(recorder_with(nodes=nodes), end=7200.0, run=RUN)
    cost = report["cost"]
    assert (cost["node_hours"], cost["total_usd"]) == (3.0, 0.75)
    assert cost["by_priority"] == {
        "Regular": {"nodes": 2, "node_hours": 0.5, "cost_usd": 0.5},
        "Spot": {"nodes": 2, "node_hours": 2.5, "cost_usd": 0.25},
    }
    assert cost["by_zone"]["eastus-1"] == {"nodes": 2, "node_hours": 1.5, "cost_usd": 0.6}
    assert cost["by_zone"]["none"]["node_hours"] == 0.0
    assert cost["by_pool"]["spot2"]["node_hours"] == 1.5
    assert report["nodes"]["removed_by_reason"] == {"scale-down": 1, "unknown": 1}
    assert report["nodes"]["at_end"] == 2


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0.0, 1800.0, 3600.0, 5400.0, 7200.0], [0.0, 0.55, 1.1, 1.6, 2.1]),
        ([-5.0], [0.0]),
    ],
)
def test_cumulative_cost_integrates_the_price_of_the_nodes_alive_at_each_time(
    times: list[float], expected: list[float]
) -> None:
    nodes = [
        node_record("a", price=1.0, requested=0.0, removed=3600.0),
        node_record("b", price=0.1, requested=0.0),
        node_record("c", price=0.4, requested=3600.0, removed=3600.0),  # billed for no time
        node_record("d", price=0.9, requested=3600.0),
    ]
    assert cumulative_cost(nodes, times) == pytest.approx(expected, abs=1e-4)


def test_utilisation_is_requested_over_allocatable_in_each_sample() -> None:
    samples = [
        sim_sample(0.0, cpu_m=(0, 0), memory=(0, 0)),
        sim_sample(60.0, nodes={"spot1": 2}, cpu_m=(1000, 4000), memory=(3, 4)),
        sim_sample(120.0, nodes={"spot1": 1, "reg1": 1}, cpu_m=(3000, 4000), memory=(1, 4)),
    ]
    report = build_report(recorder_with(samples=samples), end=120.0, run=RUN)
    assert report["series"]["cpu_utilisation"] == [0.0, 0.25, 0.75]
    assert report["series"]["nodes_by_pool"] == {"reg1": [0, 0, 1], "spot1": [0, 2, 1]}
    assert report["utilisation"]["cpu"] == {"mean": 0.3333, "peak": 0.75, "final": 0.75}
    assert report["utilisation"]["memory"]["peak"] == 0.75
    assert report["nodes"]["peak_registered"] == 2


def test_the_report_holds_no_wall_clock_values_and_timing_holds_decision_times() -> None:
    def recorder(decisions: list[float]) -> Recorder:
        loops = [loop(10.0 * i, d) for i, d in enumerate(decisions)]
        loops.append(loop(99.0, 0.5, skipped="agent pools unknown"))
        return recorder_with(pods=[pod_record(bound=1.0)], loops=loops)

    fast, slow = recorder([0.001, 0.002, 0.003]), recorder([0.2, 0.3, 0.4])
    assert dumps(build_report(fast, end=100.0, run=RUN)) == dumps(
        build_report(slow, end=100.0, run=RUN)
    )
    timing = build_timing(slow, wall_seconds=1.23456)
    assert timing["wall_seconds"] == 1.235
    assert (timing["decision_seconds"]["p50"], timing["decision_seconds"]["max"]) == (0.3, 0.5)
    assert build_report(slow, end=100.0, run=RUN)["loops"]["skipped"] == {
        "agent pools unknown": 1
    }


def full_recorder() -> Recorder:
    recorder = recorder_with(
        pods=[pod_record("default/a", bound=30.0), pod_record("default/b", reason="quota")],
        nodes=[node_record("n1", requested=0.0, ready=100.0)],
        samples=[sim_sample(0.0, pending=2), sim_sample(60.0, pending=1, running=1,
                                                       nodes={"spot1": 1}, cost_per_hour=0.1)],
        loops=[loop(0.0, 0.004), loop(10.0, 0.002)],
    )
    recorder.api_call("scale")
    recorder.operation("scale", "Failed", "ZonalAllocationFailed")
    return recorder


def test_report_and_timing_are_written_as_two_canonical_json_files(tmp_path: Path) -> None:
    recorder = full_recorder()
    report = build_report(recorder, end=60.0, run=RUN)
    timing = build_timing(recorder, wall_seconds=0.5)
    report_path, timing_path = write_report(report, timing, tmp_path / "out")
    assert json.loads(report_path.read_text()) == report
    assert report_path.read_text() == dumps(report)
    assert "decision_seconds" not in report_path.read_text()
    assert json.loads(timing_path.read_text())["decision_seconds"]["max"] == 0.004
    assert report["cloud"]["failures"] == {"ZonalAllocationFailed": 1}


def test_the_terminal_summary_shows_pending_times_reasons_cost_and_decision_time() -> None:
    recorder = full_recorder()
    console = Console(record=True, width=140, color_system=None)
    render_summary(
        build_report(recorder, end=60.0, run=RUN), build_timing(recorder, wall_seconds=0.5),
        console,
    )
    text = console.export_text()
    for expected in ("p50 30.0s", "quota", "spot1", "ZonalAllocationFailed", "max 4.0ms"):
        assert expected in text


def test_plots_are_written_as_png_files(tmp_path: Path) -> None:
    report = build_report(full_recorder(), end=60.0, run=RUN)
    paths = write_plots(report, tmp_path)
    assert [p.name for p in paths] == list(PLOTS)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
