"""Simulator benchmark: wall time and peak memory of whole simulated runs.

Callers: ``surge bench sim`` and ``python -m benchmarks.sim_bench``. Two cases from issue 3:

- ``openb``: the Alibaba openb default trace (8,152 pods) replayed on the default scenario's
  pools, time-compressed (``--compression``, default 600). Skipped when the shared trace
  folder is absent. Target: <= 10 s.
- ``synthetic-24h``: a 24-hour scenario with about 200,000 pod arrivals (batch waves every
  minute on top of two diurnal deployments) and a 10 s loop. Target: <= 60 s, <= 2 GB.

Each case runs in a fresh subprocess so its peak RSS is its own; each prints the median of
``--repeat`` runs, the simulated-to-wall speedup (the baseline: real time), pod arrivals per
second, loop passes and the median decision time per pass, and writes JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

OPENB = Path(__file__).resolve().parents[2] / "shared/traces/alibaba-openb-gpu-v2023"
OPENB_FILE = "openb_pod_list_default.csv"
TARGETS = {"openb": (10.0, None), "synthetic-24h": (60.0, 2048.0)}


def synthetic_scenario() -> object:
    """24 h, ~200k arrivals: a batch wave of 139 pods every minute plus two diurnal services."""
    from simulator.curves import Diurnal
    from simulator.scenario import Batch, Deployment, PodTemplate
    from simulator.workloads import default_scenario

    base = default_scenario()
    day = 24 * 3600.0
    small = PodTemplate(cpu_m=250, memory=512 * 2**20, tolerate_spot=True,
                        labels=(("app", "etl"),))
    web = PodTemplate(cpu_m=500, memory=2**30, tolerate_spot=True, zone_spread_max_skew=1,
                      labels=(("app", "web"),))
    api = PodTemplate(cpu_m=1000, memory=2 * 2**30, labels=(("app", "api"),))
    workloads = (
        Batch("etl", "batch", small, at=0.0, pods=139, run_seconds=600.0, every=60.0,
              waves=int(day // 60)),
        Deployment("web", "shop", web, Diurnal(low=40, high=200, period=day, peak_at=14 * 3600)),
        Deployment("api", "shop", api, Diurnal(low=10, high=60, period=day, peak_at=14 * 3600)),
    )
    return replace(base, name="synthetic-24h", duration=day, workloads=workloads)


def _case(name: str, compression: float) -> dict[str, object]:
    """Run one case in this process; returns its figures."""
    from simulator.loader import trace_scenario
    from simulator.run import simulate

    if name == "openb":
        scenario = trace_scenario(str(OPENB / OPENB_FILE), compression=compression)
    else:
        scenario = synthetic_scenario()
    started = time.perf_counter()
    result = simulate(scenario)  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    # Passes with nothing pending do not plan (0 s); the median is over passes that planned.
    decisions = [loop.decision_seconds for loop in result.recorder.loops if loop.decision_seconds]
    return {
        "case": name,
        "wall_s": wall,
        "simulated_s": result.end,
        "speedup": result.end / wall,
        "pods": len(result.recorder.pods),
        "pods_per_s": len(result.recorder.pods) / wall,
        "loop_passes": len(decisions),
        "decision_ms_median": 1000 * statistics.median(decisions) if decisions else 0.0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _run_isolated(name: str, compression: float) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.sim_bench", "--one", name,
         "--compression", str(compression)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="surge bench sim", description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--compression", type=float, default=600.0,
                        help="time compression of the openb replay")
    parser.add_argument("--cases", default="openb,synthetic-24h")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_case(args.one, args.compression)))
        return 0
    rows = []
    for name in args.cases.split(","):
        if name == "openb" and not (OPENB / OPENB_FILE).exists():
            print(f"{name}: skipped ({OPENB / OPENB_FILE} not found)", file=sys.stderr)
            continue
        runs = [_run_isolated(name, args.compression) for _ in range(max(1, args.repeat))]
        wall = statistics.median(float(r["wall_s"]) for r in runs)  # type: ignore[arg-type]
        row = dict(runs[0])
        row.update(wall_s=wall, runs=[r["wall_s"] for r in runs],
                   peak_rss_mb=max(float(r["peak_rss_mb"]) for r in runs))  # type: ignore[arg-type]
        row["speedup"] = float(row["simulated_s"]) / wall  # type: ignore[arg-type]
        target_s, target_mb = TARGETS[name]
        row["target_s"], row["target_mb"] = target_s, target_mb
        rows.append(row)
        print(
            f"{name:14} median {wall:6.1f} s (target {target_s:g} s)  "
            f"{row['simulated_s'] / 3600:5.1f} h simulated = {row['speedup']:7.0f}x real time  "
            f"{row['pods']:>7} pods ({float(row['pods']) / wall:7.0f}/s)  "
            f"{row['loop_passes']:>5} passes, decision median {row['decision_ms_median']:.1f} ms  "
            f"peak {row['peak_rss_mb']:.0f} MB"
            + (f" (target {target_mb:g} MB)" if target_mb else ""),
            flush=True,
        )
    if args.json:
        doc = {
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "compression": args.compression,
            "cases": rows,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
