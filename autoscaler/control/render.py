"""Render a scale-up plan for people (a text report) and for programs (stable JSON).

Callers: ``surge plan`` (``control.cli``). The JSON shape is documented in docs/snapshot.md
("Plan output") and is stable: keys are sorted, lists keep the planner's deterministic order,
money is rounded to 6 decimals, so the same snapshot gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from autoscaler.model.plan import GroupOutcome, ScaleUpPlan
from autoscaler.model.pool import NodeOption
from autoscaler.model.state import ClusterState


def _money(value: float) -> float:
    return round(value, 6)


def _pool_of(options: dict[str, NodeOption], option: str) -> str:
    found = options.get(option)
    return found.pool if found is not None else option


def plan_document(
    state: ClusterState, plan: ScaleUpPlan, warnings: Sequence[str]
) -> dict[str, object]:
    """The plan as plain JSON values (see docs/snapshot.md for every field)."""
    options = {option.name: option for option in state.options}
    by_pool = {option.pool: option for option in state.options}
    targets: list[dict[str, object]] = []
    for target in plan.pool_targets:
        option = by_pool.get(target.pool)
        price = option.price_per_hour if option is not None else None
        targets.append({
            "pool": target.pool,
            "vmSize": option.vm_size if option is not None else None,
            "priority": option.priority.value if option is not None else None,
            "zone": option.zone if option is not None else None,
            "current": target.current,
            "target": target.target,
            "delta": target.delta,
            "pricePerHour": price,
            "addedCostPerHour": _money(target.delta * price) if price is not None else None,
        })
    groups = [
        {
            "group": outcome.group,
            "pods": outcome.pods,
            "placed": outcome.placed,
            "onExisting": outcome.on_existing,
            "onUpcoming": outcome.on_upcoming,
            "onNew": [
                {"pool": _pool_of(options, option), "pods": pods}
                for option, pods in outcome.on_new
            ],
            "unplaced": outcome.unplaced,
            "reason": outcome.reason,
        }
        for outcome in plan.groups
    ]
    new_nodes = [
        {
            "pool": _pool_of(options, node.option),
            "pods": [{"group": group, "pods": pods} for group, pods in node.pods],
        }
        for node in plan.new_nodes
    ]
    return {
        "poolTargets": targets,
        "groups": groups,
        "newNodes": new_nodes,
        "costPerHour": _money(plan.cost_per_hour),
        "notes": list(plan.notes),
        "warnings": list(warnings),
    }


def render_json(state: ClusterState, plan: ScaleUpPlan, warnings: Sequence[str]) -> str:
    document = plan_document(state, plan, warnings)
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Columns padded to their widest cell; ``right`` holds the indices of numeric columns."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def _where_new(outcome: GroupOutcome, options: dict[str, NodeOption]) -> str:
    if not outcome.on_new:
        return "-"
    return ", ".join(f"{_pool_of(options, option)} {pods}" for option, pods in outcome.on_new)


def render_text(state: ClusterState, plan: ScaleUpPlan, warnings: Sequence[str]) -> str:
    """A report for a terminal: pools, groups (with reasons for unplaced pods), totals."""
    options = {option.name: option for option in state.options}
    by_pool = {option.pool: option for option in state.options}
    pending = sum(outcome.pods for outcome in plan.groups)
    captured = state.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"Scale-up plan for {state.region}, snapshot of {captured}: {pending} pending pod(s) "
        f"in {len(plan.groups)} group(s), {len(state.nodes)} node(s)",
        "",
        "Pools",
    ]
    rows = []
    for target in plan.pool_targets:
        option = by_pool.get(target.pool)
        rows.append([
            target.pool,
            option.vm_size if option else "?",
            option.priority.value if option else "?",
            (option.zone or "any") if option else "?",
            str(target.current),
            str(target.target),
            f"{target.delta:+d}" if target.delta else "0",
            f"{option.price_per_hour:.4f}" if option else "?",
            f"{target.delta * option.price_per_hour:.4f}" if option and target.delta else "-",
        ])
    header = ["POOL", "VM SIZE", "PRIORITY", "ZONE", "CURRENT", "TARGET", "DELTA", "$/H EACH",
              "$/H ADDED"]
    lines += _table(header, rows, right={4, 5, 6, 7, 8}) if rows else ["  (no managed pools)"]
    unmanaged = sorted({pool.name for pool in state.pools} - {t.pool for t in plan.pool_targets})
    if unmanaged:
        lines.append(f"  not scaled: {', '.join(unmanaged)}")

    lines += ["", "Pending pods"]
    if plan.groups:
        header = ["GROUP", "PODS", "EXISTING", "UPCOMING", "NEW NODES", "UNPLACED"]
        group_rows = [
            [
                outcome.group,
                str(outcome.pods),
                str(outcome.on_existing),
                str(outcome.on_upcoming),
                _where_new(outcome, options),
                str(outcome.unplaced),
            ]
            for outcome in plan.groups
        ]
        table = _table(header, group_rows, right={1, 2, 3, 5})
        lines.append(table[0])
        for outcome, line in zip(plan.groups, table[1:], strict=True):
            lines.append(line)
            if outcome.reason:
                label = "why unplaced" if outcome.unplaced else "note"
                lines.append(f"      {label}: {outcome.reason}")
    else:
        lines.append("  (none)")

    new_nodes = sum(max(target.delta, 0) for target in plan.pool_targets)
    lines += ["", f"Total: {new_nodes} new node(s), ${plan.cost_per_hour:.4f} per hour"]
    unplaced = sum(outcome.unplaced for outcome in plan.groups)
    if unplaced:
        lines.append(f"Unplaced: {unplaced} pod(s) (reasons above)")
    for title, entries in (("Notes", plan.notes), ("Warnings", tuple(warnings))):
        if entries:
            lines += ["", title, *(f"  - {entry}" for entry in entries)]
    return "\n".join(lines) + "\n"
