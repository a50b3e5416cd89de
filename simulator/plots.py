"""PNG plots of a simulation: pending pods, nodes by pool, cost over time.

Callers: ``simulator.cli`` after ``simulator.report.build_report``. The plots read the report's
``series`` section only, so a figure always shows the numbers in ``report.json``. Figures are
drawn with matplotlib's object API on the Agg renderer: no pyplot state, no display needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

PLOTS = ("pending.png", "nodes.png", "cost.png")
_SIZE = (9.0, 4.0)
_DPI = 100


def _time_axis(seconds: list[float]) -> tuple[list[float], str]:
    """Times in hours for long runs, else minutes, with the axis label."""
    if seconds and seconds[-1] > 3 * 3600:
        return [t / 3600.0 for t in seconds], "simulated time (h)"
    return [t / 60.0 for t in seconds], "simulated time (min)"


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _pending(series: dict[str, Any], out: Path) -> None:
    t, xlabel = _time_axis(series["time_s"])
    figure, axes = _figure("Pods", xlabel, "pods")
    axes.plot(t, series["pending"], label="pending", color="tab:red", drawstyle="steps-post")
    axes.plot(t, series["running"], label="running", color="tab:blue", drawstyle="steps-post")
    axes.legend(loc="upper left")
    figure.savefig(out, format="png")


def _nodes(series: dict[str, Any], out: Path) -> None:
    t, xlabel = _time_axis(series["time_s"])
    figure, axes = _figure("Registered nodes by pool (stacked)", xlabel, "nodes")
    pools: dict[str, list[int]] = series["nodes_by_pool"]
    if pools:
        axes.stackplot(t, *pools.values(), labels=list(pools), step="post")
        axes.legend(loc="upper left", fontsize="small", ncols=max(1, len(pools) // 8))
    figure.savefig(out, format="png")


def _cost(series: dict[str, Any], out: Path) -> None:
    t, xlabel = _time_axis(series["time_s"])
    figure, axes = _figure("Cost", xlabel, "USD per hour")
    axes.plot(t, series["cost_per_hour"], color="tab:green", drawstyle="steps-post",
              label="USD/h")
    total = axes.twinx()
    total.plot(t, series["cost_usd"], color="tab:gray", linestyle="--", label="USD spent")
    total.set_ylabel("USD spent (cumulative)")
    axes.legend(loc="upper left")
    total.legend(loc="upper right")
    figure.savefig(out, format="png")


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw ``PLOTS`` from ``report["series"]`` into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series = report["series"]
    paths = [out_dir / name for name in PLOTS]
    for draw, path in zip((_pending, _nodes, _cost), paths, strict=True):
        draw(series, path)
    return paths
