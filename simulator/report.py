"""The simulation report: computed from a ``Recorder``, written as JSON, shown in the terminal.

Callers: ``simulator.run.Result`` (``report``/``timing``), ``simulator.cli`` (writes the files)
and tests, which build Recorders by hand. ``simulator.plots`` draws the PNGs and
``simulator.summary`` the terminal summary from the documents built here.

Two documents, two files:

- ``report.json`` (``build_report``) holds only values derived from simulated time and the
  seeded models, so the same scenario and seed give the same bytes: the determinism test
  compares it whole.
- ``timing.json`` (``build_timing``) holds everything measured on the wall clock: the
  planner's decision time per loop pass (p50/p95/p99/max) and the run's wall time. It is
  never part of the determinism comparison.

Definitions. A pod's pending time runs from creation to its first binding; percentiles are
nearest-rank over the pods that were bound. Every pod ends in exactly one outcome (see
``pod_outcome``): running, finished (completed, or deleted by its workload, after running),
lost, withdrawn (deleted by its workload while still pending) or pending at the end of the run.
The last two never ran: they are listed as "never scheduled" with the autoscaler's last
NotTriggerScaleUp reason, or ``NO_REASON`` when the loop never said why.
A node is billed from the moment it is requested until it is removed (or the run ends).

Scale-down (``scale_down``): nodes removed by name (``delete-machines``), pods disrupted (evicted
by drains, or still on a node when it was deleted), evictions a PodDisruptionBudget refused
(429, retried), and budget violations (a node deleted with more of a budget's pods than it
allowed). Savings are against a no-scale-down counterfactual estimated from this run: each node
scale-down removed would have been billed until the end of the run instead. The estimate
ignores what the counterfactual would also have changed (a node that stayed could have spared
a later scale-up, or been lost to a Spot eviction), so it is an upper bound of what was saved.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.cloud.provider import DELETE_MACHINES
from simulator.metrics import NodeRecord, PodRecord, Recorder

OUTCOMES = ("running", "finished", "lost", "withdrawn", "pending")
NO_REASON = (
    "no reason recorded: gone before a loop pass found it unplaceable "
    "(not yet evaluated, or waiting for new nodes)"
)
NO_ZONE = "none"  # nodes of a pool spanning zones with no zone label
EXAMPLES = 5  # pod keys shown per never-scheduled reason

Doc = dict[str, Any]


def pod_outcome(record: PodRecord) -> str:
    """The one outcome a pod ended the run in (one of ``OUTCOMES``)."""
    if record.lost is not None:
        return "lost"
    if record.bound is None:
        return "pending" if record.finished is None else "withdrawn"
    return "running" if record.finished is None else "finished"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (an observed value, never interpolated)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def distribution(values: Iterable[float], digits: int = 3) -> Doc:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 50), digits),
        "p95": round(percentile(ordered, 95), digits),
        "p99": round(percentile(ordered, 99), digits),
        "max": round(ordered[-1], digits) if ordered else 0.0,
        "mean": round(math.fsum(ordered) / len(ordered), digits) if ordered else 0.0,
    }


# -- pods ------------------------------------------------------------------------------------


def _pods(recorder: Recorder, end: float) -> Doc:
    counts = dict.fromkeys(OUTCOMES, 0)
    lost: dict[str, int] = {}
    waits: list[float] = []
    by_workload: dict[str, list[float]] = {}
    evictions = 0
    for record in recorder.pods.values():
        outcome = pod_outcome(record)
        counts[outcome] += 1
        evictions += record.evictions
        if record.lost is not None:
            lost[record.lost] = lost.get(record.lost, 0) + 1
        if record.bound is not None:
            wait = record.bound - record.created
            waits.append(wait)
            by_workload.setdefault(record.workload, []).append(wait)
    return {
        "total": len(recorder.pods),
        "outcomes": counts,
        "evictions": evictions,
        "lost_by_reason": dict(sorted(lost.items())),
        "pending_seconds": distribution(waits),
        "pending_seconds_by_workload": {
            name: distribution(by_workload[name]) for name in sorted(by_workload)
        },
        "never_scheduled": _never_scheduled(recorder.pods.values(), end),
    }


def _never_scheduled(records: Iterable[PodRecord], end: float) -> Doc:
    """Pods that never ran, by reason: those still pending at the end and those their workload
    deleted while they were pending (which then never got a node either)."""
    by_reason: dict[str, list[PodRecord]] = {}
    for record in records:
        if pod_outcome(record) in ("pending", "withdrawn"):
            by_reason.setdefault(record.pending_reason or NO_REASON, []).append(record)
    reasons = []
    for reason, pods in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
        workloads: dict[str, int] = {}
        for record in pods:
            workloads[record.workload] = workloads.get(record.workload, 0) + 1
        still = sum(record.finished is None for record in pods)
        waited = max((end if r.finished is None else r.finished) - r.created for r in pods)
        reasons.append(
            {
                "reason": reason,
                "pods": len(pods),
                "pending_at_end": still,
                "withdrawn": len(pods) - still,
                "workloads": dict(sorted(workloads.items())),
                "longest_pending_seconds": round(waited, 3),
                "examples": sorted(r.key for r in pods)[:EXAMPLES],
            }
        )
    return {
        "pods": sum(r["pods"] for r in reasons),
        "pending_at_end": sum(r["pending_at_end"] for r in reasons),
        "reasons": reasons,
    }


# -- nodes and cost --------------------------------------------------------------------------


def _billed_hours(record: NodeRecord, end: float) -> float:
    stop = end if record.removed is None else min(record.removed, end)
    return max(0.0, stop - record.requested) / 3600.0


def _cost_table(records: Sequence[NodeRecord], end: float, key: str) -> Doc:
    hours: dict[str, list[float]] = {}
    costs: dict[str, list[float]] = {}
    for record in records:
        name = str(getattr(record, key) or NO_ZONE)
        h = _billed_hours(record, end)
        hours.setdefault(name, []).append(h)
        costs.setdefault(name, []).append(h * record.price_per_hour)
    return {
        name: {
            "nodes": len(hours[name]),
            "node_hours": round(math.fsum(hours[name]), 4),
            "cost_usd": round(math.fsum(costs[name]), 4),
        }
        for name in sorted(hours)
    }


def _nodes(recorder: Recorder, end: float) -> Doc:
    records = sorted(recorder.nodes.values(), key=lambda r: r.name)
    removed: dict[str, int] = {}
    for record in records:
        if record.removed is not None:
            why = record.removal_reason or "unknown"
            removed[why] = removed.get(why, 0) + 1
    counts = [sum(s.nodes_by_pool.values()) for s in recorder.samples]
    return {
        "requested": len(records),
        "registered": sum(r.registered is not None for r in records),
        "ready": sum(r.ready is not None for r in records),
        "never_registered": sum(r.registered is None for r in records),
        "removed_by_reason": dict(sorted(removed.items())),
        "at_end": sum(r.removed is None for r in records),
        "peak_registered": max(counts, default=0),
        "ready_seconds": distribution(
            r.ready - r.requested for r in records if r.ready is not None
        ),
    }


def _cost(recorder: Recorder, end: float) -> Doc:
    records = sorted(recorder.nodes.values(), key=lambda r: r.name)
    hours = [_billed_hours(r, end) for r in records]
    spent = (h * r.price_per_hour for h, r in zip(hours, records, strict=True))
    return {
        "total_usd": round(math.fsum(spent), 4),
        "node_hours": round(math.fsum(hours), 4),
        "by_pool": _cost_table(records, end, "pool"),
        "by_priority": _cost_table(records, end, "priority"),
        "by_zone": _cost_table(records, end, "zone"),
    }


SCALE_DOWN_REASON = DELETE_MACHINES  # the removal reason of nodes scale-down deleted


def _scale_down(recorder: Recorder, end: float) -> Doc:
    removed = [
        r for r in sorted(recorder.nodes.values(), key=lambda r: r.name)
        if r.removal_reason == SCALE_DOWN_REASON and r.removed is not None and r.removed <= end
    ]
    hours = [(end - (r.removed or end)) / 3600.0 for r in removed]
    saved = (h * r.price_per_hour for h, r in zip(hours, removed, strict=True))
    return {
        "nodes_removed": len(removed),
        "node_hours_saved": round(math.fsum(hours), 4),
        "cost_saved_usd": round(math.fsum(saved), 4),
        "pods_disrupted": recorder.disrupted,
        "evictions_blocked_by_pdb": recorder.evictions_blocked,
        "pdb_violations": sum(recorder.pdb_violations.values()),
        "pdb_violations_by_budget": dict(sorted(recorder.pdb_violations.items())),
    }


def cumulative_cost(nodes: Iterable[NodeRecord], times: Sequence[float]) -> list[float]:
    """Exact USD spent by each of ``times``: integrates the price step function of the nodes."""
    records = list(nodes)
    if not records or not times:
        return [0.0 for _ in times]
    starts = np.array([r.requested for r in records], dtype=np.float64)
    stops = np.array(
        [math.inf if r.removed is None else r.removed for r in records], dtype=np.float64
    )
    prices = np.array([r.price_per_hour for r in records], dtype=np.float64) / 3600.0
    at = np.concatenate([starts, stops])
    change = np.concatenate([prices, -prices])
    order = np.argsort(at, kind="stable")
    at, change = at[order], change[order]
    finite = np.isfinite(at)
    at, change = at[finite], change[finite]
    rate = np.cumsum(change)  # USD/s just after each change
    spent = np.concatenate([[0.0], np.cumsum(rate[:-1] * np.diff(at))])  # USD at each change
    t = np.asarray(times, dtype=np.float64)
    index = np.searchsorted(at, t, side="right") - 1
    safe = np.maximum(index, 0)
    result = np.where(index >= 0, spent[safe] + rate[safe] * (t - at[safe]), 0.0)
    return [round(float(v), 4) for v in result]


# -- utilisation and series ------------------------------------------------------------------


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den > 0 else 0.0


def _series(recorder: Recorder) -> Doc:
    samples = recorder.samples
    pools = sorted({pool for s in samples for pool in s.nodes_by_pool})
    times = [s.time for s in samples]
    return {
        "time_s": [round(t, 3) for t in times],
        "pending": [s.pending for s in samples],
        "running": [s.running for s in samples],
        "nodes_by_pool": {p: [s.nodes_by_pool.get(p, 0) for s in samples] for p in pools},
        "cpu_utilisation": [_ratio(s.requested_cpu_m, s.allocatable_cpu_m) for s in samples],
        "memory_utilisation": [
            _ratio(s.requested_memory, s.allocatable_memory) for s in samples
        ],
        "cost_per_hour": [round(s.cost_per_hour, 4) for s in samples],
        "cost_usd": cumulative_cost(recorder.nodes.values(), times),
    }


def _utilisation(series: Doc) -> Doc:
    def summary(values: list[float]) -> Doc:
        return {
            "mean": round(math.fsum(values) / len(values), 4) if values else 0.0,
            "peak": max(values, default=0.0),
            "final": values[-1] if values else 0.0,
        }

    return {
        "samples": len(series["time_s"]),
        "cpu": summary(series["cpu_utilisation"]),
        "memory": summary(series["memory_utilisation"]),
    }


def _loops(recorder: Recorder) -> Doc:
    skipped: dict[str, int] = {}
    for loop in recorder.loops:
        if loop.skipped is not None:
            skipped[loop.skipped] = skipped.get(loop.skipped, 0) + 1
    return {
        "passes": len(recorder.loops),
        "actions": sum(loop.actions for loop in recorder.loops),
        "max_pending_seen": max((loop.pending for loop in recorder.loops), default=0),
        "skipped": dict(sorted(skipped.items())),
    }


# -- documents -------------------------------------------------------------------------------


def build_report(recorder: Recorder, *, end: float, run: Mapping[str, object]) -> Doc:
    """The deterministic report of a run that ended at simulated second ``end``; ``run`` holds
    what identifies it (scenario name, seed, start, duration)."""
    series = _series(recorder)
    return {
        "run": dict(run),
        "pods": _pods(recorder, end),
        "nodes": _nodes(recorder, end),
        "cost": _cost(recorder, end),
        "scale_down": _scale_down(recorder, end),
        "utilisation": _utilisation(series),
        "cloud": {
            "api_calls": dict(sorted(recorder.api_calls.items())),
            "operations": dict(sorted(recorder.operations.items())),
            "failures": dict(sorted(recorder.failures.items())),
            "spot_evictions": recorder.spot_evictions,
        },
        "events": dict(sorted(recorder.events.items())),
        "loops": _loops(recorder),
        "series": series,
    }


def build_timing(recorder: Recorder, *, wall_seconds: float) -> Doc:
    """Wall-clock measurements: never compared for determinism."""
    decisions = [loop.decision_seconds for loop in recorder.loops]
    return {
        "wall_seconds": round(wall_seconds, 3),
        "decision_seconds": distribution(decisions, digits=6),
        "decision_seconds_total": round(math.fsum(decisions), 6),
    }


def dumps(doc: Doc) -> str:
    """The canonical JSON text: sorted keys, fixed indentation, final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_report(report: Doc, timing: Doc, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` (deterministic) and ``timing.json`` (wall clock) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path, timing_path = out_dir / "report.json", out_dir / "timing.json"
    report_path.write_text(dumps(report), encoding="utf-8")
    timing_path.write_text(dumps(timing), encoding="utf-8")
    return report_path, timing_path
