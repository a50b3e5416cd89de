"""Scale-down benchmark: node-hours after the peak of the default viral launch, against oracles.

Callers: ``python -m benchmarks.scaledown_bench [--json FILE]`` (and the tests of its figures).

The default scenario (``simulator/scenarios/viral-launch.yaml``) runs twice: as it is, and with
scale-down disabled (the counterfactual). The peak is the first moment the scale-down run has
its most registered nodes. Node-hours after the peak are counted over the nodes of managed
pools (System pools are never scaled, by either side), billed from request to removal.

Oracles, each knowing every node's last pod end time (when the last pod bound to it finished,
was deleted or evicted):

- ``oracle`` (the target): the counterfactual run, in which nothing moves pods, with each node
  removed the moment its last pod ended. It is what perfect empty-node removal, with no waiting,
  would pay. Consolidation (moving pods off lightly used nodes) can beat it.
- ``oracle_same_run``: the scale-down run itself, each node removed the moment its last pod
  ended: what our own run would have paid with no timers and instant deletion.

Target (issue 7): surge's node-hours after the peak within 15% of ``oracle``, with zero
PodDisruptionBudget violations.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from autoscaler.control.scaledown import ScaleDownConfig
from simulator.metrics import Recorder
from simulator.run import Result, simulate
from simulator.scenario import Scenario
from simulator.workloads import default_scenario

TARGET = 0.15


def last_pod_end(recorder: Recorder, end: float) -> dict[str, float]:
    """Per node, when the last pod bound to it ended (``end`` for a pod still running)."""
    last: dict[str, float] = {}
    for record in recorder.pods.values():
        if record.node is None or record.bound is None:
            continue
        stop = end if record.finished is None else record.finished
        last[record.node] = max(last.get(record.node, 0.0), stop)
    return last


def node_hours_after(
    recorder: Recorder, managed: set[str], start: float, end: float, *, oracle: bool
) -> float:
    """Node-hours of managed pools' nodes billed in [start, end]; with ``oracle`` each node
    stops at its last pod end (a node that never ran a pod stops when it was requested)."""
    last = last_pod_end(recorder, end) if oracle else {}
    hours = []
    for record in recorder.nodes.values():
        if record.pool not in managed:
            continue
        stop = end if record.removed is None else min(record.removed, end)
        if oracle:
            stop = min(stop, last.get(record.name, record.requested))
        hours.append(max(0.0, stop - max(start, record.requested)) / 3600.0)
    return math.fsum(hours)


def peak_time(result: Result) -> float:
    samples = result.recorder.samples
    counts = [sum(s.nodes_by_pool.values()) for s in samples]
    top = max(counts)
    return samples[counts.index(top)].time


def run(scenario: Scenario) -> dict[str, Any]:
    started = time.perf_counter()
    actual = simulate(scenario)
    disabled = replace(scenario.loop, scale_down=ScaleDownConfig(enabled=False))
    counterfactual = simulate(replace(scenario, loop=disabled))
    wall = time.perf_counter() - started
    managed = set(scenario.loop.managed_pools or (p.name for p in scenario.pools))
    end = actual.end
    peak = peak_time(actual)
    surge = node_hours_after(actual.recorder, managed, peak, end, oracle=False)
    oracle = node_hours_after(counterfactual.recorder, managed, peak, end, oracle=True)
    same = node_hours_after(actual.recorder, managed, peak, end, oracle=True)
    none = node_hours_after(counterfactual.recorder, managed, peak, end, oracle=False)
    report = actual.report()
    down = report["scale_down"]
    ratio = surge / oracle if oracle else math.inf
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "peak_s": peak,
        "end_s": end,
        "node_hours_after_peak": {
            "surge": round(surge, 3),
            "oracle": round(oracle, 3),
            "oracle_same_run": round(same, 3),
            "no_scale_down": round(none, 3),
        },
        "ratio_to_oracle": round(ratio, 4),
        "target_ratio": 1 + TARGET,
        "met": ratio <= 1 + TARGET and down["pdb_violations"] == 0,
        "nodes_at_start": sum(p.count for p in scenario.pools),
        "nodes_at_end": report["nodes"]["at_end"],
        "peak_nodes": report["nodes"]["peak_registered"],
        "scale_down": down,
        "cost_usd": {
            "surge": report["cost"]["total_usd"],
            "no_scale_down": counterfactual.report()["cost"]["total_usd"],
        },
        "wall_seconds": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--seed", type=int, help="seed instead of the scenario's")
    args = parser.parse_args(argv)
    scenario = default_scenario()
    if args.seed is not None:
        scenario = replace(scenario, seed=args.seed)
    figures = run(scenario)
    hours = figures["node_hours_after_peak"]
    down = figures["scale_down"]
    print(f"{figures['scenario']} seed {figures['seed']}: peak at {figures['peak_s'] / 3600:.2f} h "
          f"({figures['peak_nodes']} nodes), {figures['nodes_at_start']} nodes at start, "
          f"{figures['nodes_at_end']} at end")
    print(f"node-hours after the peak: surge {hours['surge']:.2f}, oracle {hours['oracle']:.2f} "
          f"(ratio {figures['ratio_to_oracle']:.3f}, target <= {figures['target_ratio']:.2f}), "
          f"oracle on the same run {hours['oracle_same_run']:.2f}, "
          f"no scale-down {hours['no_scale_down']:.2f}")
    print(f"scale-down: {down['nodes_removed']} nodes removed, {down['pods_disrupted']} pods "
          f"disrupted, {down['evictions_blocked_by_pdb']} evictions refused by a budget, "
          f"{down['pdb_violations']} PDB violations, ${down['cost_saved_usd']:.2f} saved "
          f"(estimate); cost ${figures['cost_usd']['surge']:.2f} vs "
          f"${figures['cost_usd']['no_scale_down']:.2f} without scale-down")
    print("target met" if figures["met"] else "target NOT met")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
