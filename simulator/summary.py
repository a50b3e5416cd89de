"""The rich terminal summary of a simulation run.

Callers: ``simulator.cli`` after a run. It reads the two documents ``simulator.report`` builds
(the deterministic report and the wall-clock timing), so the terminal shows exactly the numbers
written to ``report.json`` and ``timing.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

Doc = dict[str, Any]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 120:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _counts(mapping: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in mapping.items()) or "none"


def render_summary(report: Doc, timing: Doc, console: Console) -> None:
    """The terminal summary of a run: pods, never-scheduled reasons, cost, cloud and loop."""
    run, pods, nodes, cost = report["run"], report["pods"], report["nodes"], report["cost"]
    wait = pods["pending_seconds"]
    console.rule(
        f"[bold]{run.get('scenario', '')}[/bold]  seed {run.get('seed', '')}, "
        f"{_duration(float(run.get('duration_s', 0.0)))} simulated"
    )

    table = Table(title="Pods", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("pods", f"{pods['total']}: {_counts(pods['outcomes'])}")
    table.add_row(
        "pending time",
        f"p50 {_duration(wait['p50'])}  p95 {_duration(wait['p95'])}  "
        f"p99 {_duration(wait['p99'])}  max {_duration(wait['max'])}  ({wait['count']} bound)",
    )
    table.add_row("evictions", f"{pods['evictions']}; lost: {_counts(pods['lost_by_reason'])}")
    console.print(table)

    never = pods["never_scheduled"]
    if never["pods"]:
        reasons = Table(
            title=f"Never scheduled: {never['pods']} pods ({never['pending_at_end']} still "
            "pending, the rest deleted while pending)",
            title_justify="left",
        )
        for header in ("pods", "pending", "longest"):
            reasons.add_column(header, justify="right")
        reasons.add_column("reason", overflow="fold")
        for entry in never["reasons"]:
            reasons.add_row(
                str(entry["pods"]), str(entry["pending_at_end"]),
                _duration(entry["longest_pending_seconds"]), entry["reason"],
            )
        console.print(reasons)

    costs = Table(
        title=f"Cost: ${cost['total_usd']:,.2f} for {cost['node_hours']:,.1f} node-hours",
        title_justify="left",
    )
    for header in ("by", "name", "nodes", "node-hours", "USD"):
        costs.add_column(header, justify="left" if header in ("by", "name") else "right")
    for by in ("pool", "priority", "zone"):
        for name, row in cost[f"by_{by}"].items():
            costs.add_row(
                by, name, str(row["nodes"]), f"{row['node_hours']:,.2f}", f"{row['cost_usd']:,.2f}"
            )
    console.print(costs)

    cloud, loops, util = report["cloud"], report["loops"], report["utilisation"]
    decision = timing["decision_seconds"]
    ready = nodes["ready_seconds"]
    facts = Table(title="Cluster, cloud and loop", show_header=False, title_justify="left")
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row(
        "nodes",
        f"{nodes['requested']} requested, peak {nodes['peak_registered']} registered, "
        f"{nodes['at_end']} at end; removed: {_counts(nodes['removed_by_reason'])}",
    )
    facts.add_row("node ready", f"p50 {_duration(ready['p50'])}  p95 {_duration(ready['p95'])}")
    facts.add_row(
        "utilisation",
        f"cpu mean {util['cpu']['mean']:.0%} peak {util['cpu']['peak']:.0%}; "
        f"memory mean {util['memory']['mean']:.0%} peak {util['memory']['peak']:.0%}",
    )
    facts.add_row("operations", _counts(cloud["operations"]))
    facts.add_row("failures", _counts(cloud["failures"]))
    facts.add_row("API calls", _counts(cloud["api_calls"]))
    facts.add_row("spot evictions", str(cloud["spot_evictions"]))
    down = report.get("scale_down")
    if down is not None:
        facts.add_row(
            "scale-down",
            f"{down['nodes_removed']} nodes removed, ~${down['cost_saved_usd']:,.2f} saved "
            f"({down['node_hours_saved']:,.1f} node-hours, estimate), {down['pods_disrupted']} "
            f"pods disrupted, {down['evictions_blocked_by_pdb']} evictions refused by a budget, "
            f"{down['pdb_violations']} budget violations",
        )
    facts.add_row(
        "loop",
        f"{loops['passes']} passes, {loops['actions']} actions, "
        f"skipped {sum(loops['skipped'].values())}",
    )
    facts.add_row(
        "decision time",
        f"p50 {decision['p50'] * 1e3:.1f}ms  p95 {decision['p95'] * 1e3:.1f}ms  "
        f"max {decision['max'] * 1e3:.1f}ms (wall clock)",
    )
    facts.add_row("wall time", f"{timing['wall_seconds']:.2f}s")
    console.print(facts)
