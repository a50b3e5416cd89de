"""The ``surge`` command line: ``surge plan`` on a snapshot, ``surge bench``, ``surge --version``.

Callers: the ``surge`` console script (pyproject ``[project.scripts]``), ``make demo`` and
``make bench``, and tests, which call ``main([...])`` in-process. Exit codes: 0 success; 2 usage
errors and bad input, reported on stderr as ``surge: error: <path>: <reason>`` with nothing on
stdout; 1 when ``surge bench`` cannot import its suite; otherwise the suite's own code. Heavy
modules (the planner, the benchmarks and their scipy) are imported inside the handler that
needs them, so ``surge --version`` and input errors stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from autoscaler import __version__
from autoscaler.model.errors import ValidationError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surge",
        description="A pending-pod cluster autoscaler for Azure Kubernetes Service.",
    )
    parser.add_argument("--version", action="version", version=f"surge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    plan = commands.add_parser(
        "plan",
        help="plan a scale-up for a cluster snapshot",
        description="Plan a scale-up for the pending pods of a cluster snapshot "
        "(format: docs/snapshot.md).",
    )
    plan.add_argument("--snapshot", required=True, metavar="FILE", help="snapshot JSON file")
    plan.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="report format"
    )
    plan.add_argument(
        "--reference",
        action="store_true",
        help="use the scalar reference planner instead of the vectorized one",
    )
    plan.set_defaults(handler=_plan)

    bench = commands.add_parser(
        "bench",
        help="run a benchmark",
        description="Run a benchmark; arguments after the suite name go to the benchmark.",
    )
    bench.add_argument("suite", choices=("planner",), help="benchmark suite")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the suite")
    bench.set_defaults(handler=_bench)
    return parser


def _plan(args: argparse.Namespace) -> int:
    from autoscaler.control.render import render_json, render_text
    from autoscaler.control.snapshot import load_snapshot

    state, warnings = load_snapshot(args.snapshot)
    if args.reference:
        from autoscaler.planner.reference import plan_reference as planner
    else:
        from autoscaler.planner.scaleup import plan_scale_up as planner
    plan = planner(state)
    render = render_json if args.output == "json" else render_text
    sys.stdout.write(render(state, plan, warnings))
    return EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    # Imported by name: the benchmarks are a separate top-level package with an optional
    # dependency (scipy, the ``bench`` extra), not a layer the autoscaler builds on.
    try:
        suite = importlib.import_module(f"benchmarks.{args.suite}_bench")
    except ImportError as error:
        print(
            f"surge: error: surge bench {args.suite} needs the benchmarks package and scipy "
            f"(pip install 'surge-autoscaler[bench]'): {error}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    run: Callable[[list[str]], int] = suite.main
    return run(list(args.args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``surge`` command; returns the exit code instead of exiting (the console
    script's wrapper passes it to ``sys.exit``)."""
    parser = _parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
        code: int = args.handler(args)
    except SystemExit as stop:  # argparse (ours or a suite's) exits on --help and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    except ValidationError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
