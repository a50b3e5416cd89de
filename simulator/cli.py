"""``surge simulate``: run a scenario or a trace through the simulator and write its report.

Callers: ``autoscaler.control.cli`` forwards ``surge simulate ...`` here (imported lazily, as
the simulator needs the ``sim`` extra: rich and matplotlib); ``make demo``; tests call
``main([...])`` in-process.

    surge simulate [SCENARIO] [--trace FILE [--compression X]] [--config FILE] [--seed N]
                   [--out DIR] [--no-plots] [--no-progress]

With neither SCENARIO nor --trace, the built-in "viral launch" scenario runs. --trace replays an
openb pod list or an Azure LLM inference trace on the pools and settings of SCENARIO (or of the
built-in scenario). --config replaces the scenario's autoscaler settings with a file holding
the fields of a scenario's ``autoscaler`` section. The progress bar goes to stderr; the summary
to stdout. Files written in DIR: ``report.json`` (deterministic: same scenario and seed, same
bytes), ``timing.json`` (wall-clock decision times and run time, which vary between runs) and
the plots ``pending.png``, ``nodes.png``, ``cost.png``.

Exit codes: 0 success; 2 usage errors and bad scenario, settings or trace files, reported on
stderr as ``surge simulate: error: <field path or file:line>: <reason>``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autoscaler.model.errors import ValidationError
from simulator.loader import apply_autoscaler_file, default_scenario, load_scenario, trace_scenario
from simulator.plots import write_plots
from simulator.report import write_report
from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.summary import render_summary

PROG = "surge simulate"
EXIT_OK = 0
EXIT_USAGE = 2
TRACE_COMPRESSION = 60.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the autoscaler's control loop against a simulated AKS cluster.",
    )
    parser.add_argument(
        "scenario", nargs="?", metavar="SCENARIO",
        help="scenario YAML file (default: the built-in viral-launch scenario)",
    )
    parser.add_argument(
        "--trace", metavar="FILE",
        help="replay an openb pod list or Azure LLM inference trace (CSV) on SCENARIO's pools",
    )
    parser.add_argument(
        "--compression", type=float, metavar="X",
        help="openb trace time compression: X trace seconds per simulated second "
        f"(default {TRACE_COMPRESSION:g})",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="autoscaler settings YAML replacing the scenario's"
    )
    parser.add_argument("--seed", type=int, metavar="N", help="random seed (default: scenario's)")
    parser.add_argument(
        "--out", default="out/simulate", metavar="DIR",
        help="directory for report.json, timing.json and the plots (default out/simulate)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_scenario(args: argparse.Namespace) -> Scenario:
    """The scenario the arguments describe; raises ValidationError naming the bad field."""
    scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    if args.trace:
        compression = TRACE_COMPRESSION if args.compression is None else args.compression
        if not compression > 0:
            raise ValidationError("--compression", f"must be positive, got {compression:g}")
        scenario = trace_scenario(args.trace, scenario, compression=compression)
    if args.config:
        scenario = apply_autoscaler_file(scenario, args.config)
    return scenario


@contextmanager
def _progress(duration: float, enabled: bool) -> Iterator[Callable[[float], None] | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} simulated s"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("simulate", total=duration)
    with bar:
        yield lambda now: bar.update(task, completed=now)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``surge simulate`` with ``argv`` (the arguments after ``simulate``); returns the
    exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as stop:  # --help, or a usage error argparse already reported
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        scenario = build_scenario(args)
        with _progress(scenario.duration, not args.no_progress) as progress:
            result = simulate(scenario, seed=args.seed, progress=progress)
    except ValidationError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    report, timing = result.report(), result.timing()
    out = Path(args.out)
    written = list(write_report(report, timing, out))
    if not args.no_plots:
        written += write_plots(report, out)
    console = Console()
    render_summary(report, timing, console)
    console.print("wrote " + ", ".join(str(path) for path in written))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
