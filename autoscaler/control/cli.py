"""The ``surge`` command line: ``surge run`` (the in-cluster controller), ``surge plan`` on a
snapshot, ``surge snapshot`` of a live cluster, ``surge bench``, ``surge simulate``,
``surge twin``, ``surge --version``.

Callers: the ``surge`` console script (pyproject ``[project.scripts]``), ``make demo`` and
``make bench``, and tests, which call ``main([...])`` in-process. Exit codes: 0 success; 2 usage
errors and bad input, reported on stderr as ``surge: error: <path>: <reason>`` with nothing on
stdout (for ``surge run``: every configuration error, before anything starts); 1 when
``surge bench`` cannot import its suite, ``surge simulate`` the simulator, ``surge snapshot``
cannot read the cluster, or ``surge run`` cannot load a cluster configuration or sync; otherwise
the suite's (or simulator's) own code.
Heavy modules (the planner, the benchmarks and their scipy, the simulator and its matplotlib,
the Kubernetes and Azure SDKs) are imported inside the handler that needs them, so
``surge --version`` and input errors stay fast.
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

    run = commands.add_parser(
        "run",
        help="run the autoscaler against a cluster (in-cluster or with a kubeconfig)",
        description="Run the controller: watch pods and nodes, plan, scale AKS agent pools. "
        "Configuration: docs/configuration.md; environment variables override the file and "
        "flags override both.",
    )
    run.add_argument("--config", required=True, metavar="FILE", help="configuration YAML file")
    run.add_argument("--dry-run", action="store_true", default=None,
                     help="plan and report, but change nothing in AKS or the cluster")
    run.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, "
                     "then $KUBECONFIG or ~/.kube/config)")
    run.add_argument("--context", metavar="NAME", help="kubeconfig context")
    run.add_argument("--log-format", choices=("json", "text"), help="log format (default: json)")
    run.add_argument("--once", action="store_true",
                     help="run one pass (if this replica gets the lease), print the status, exit")
    run.set_defaults(handler=_run)

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
    bench.add_argument("suite", choices=("planner", "sim"), help="benchmark suite")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the suite")
    bench.set_defaults(handler=_bench)

    snapshot = commands.add_parser(
        "snapshot",
        help="capture the live cluster as a snapshot for surge plan",
        description="List the cluster's pods, nodes, PersistentVolumeClaims and "
        "PersistentVolumes (for the zones of pods' bound volumes) and PodDisruptionBudgets "
        "(and the agent pools, from AKS when AZURE_SUBSCRIPTION_ID, SURGE_RESOURCE_GROUP and "
        "SURGE_CLUSTER_NAME are set, else inferred from node labels) into a snapshot (format: "
        "docs/snapshot.md). Claims, volumes or budgets the credentials may not list (403) are "
        "left out with a warning, and the snapshot is still written (exit 0).",
    )
    snapshot.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    snapshot.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, "
                          "then $KUBECONFIG or ~/.kube/config)")
    snapshot.add_argument("--context", metavar="NAME", help="kubeconfig context")
    snapshot.add_argument("--region", help="Azure region (default: from node labels)")
    snapshot.add_argument("--scheduler-name", action="append", dest="schedulers",
                          metavar="NAME", help="pods of these schedulers count as pending "
                          "(repeatable; default: default-scheduler)")
    snapshot.set_defaults(handler=_snapshot)

    simulate = commands.add_parser(
        "simulate",
        help="run the control loop against a simulated AKS cluster",
        description="Run a scenario or a trace through the offline simulator; every argument "
        "goes to the simulator (surge simulate --help lists them).",
        add_help=False,
    )
    simulate.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the simulator")
    simulate.set_defaults(handler=_simulate)

    twin = commands.add_parser(
        "twin",
        help="serve a Kubernetes API twin (for kubectl and the controller) with a cluster",
        description="Serve the Kubernetes twin on loopback, loaded from a snapshot or a "
        "scenario; every argument goes to it (surge twin --help lists them).",
        add_help=False,
    )
    twin.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the twin")
    twin.set_defaults(handler=_twin)
    return parser


def _run(args: argparse.Namespace) -> int:
    import os

    from autoscaler.control.config import Overrides, load_config

    config = load_config(args.config, os.environ,
                         Overrides(dry_run=args.dry_run, log_format=args.log_format))
    from autoscaler.control.serve import serve  # the SDKs: only once the config is valid

    code: int = serve(config, kubeconfig=args.kubeconfig, context=args.context, once=args.once)
    return code


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


def _snapshot(args: argparse.Namespace) -> int:
    import json
    import os
    from datetime import UTC, datetime

    from autoscaler.cloud.provider import CloudError
    from autoscaler.control.capture import capture, provider_pools, read_cluster
    from autoscaler.kube.cache import ApiError
    from autoscaler.kube.objects import DEFAULT_SCHEDULERS

    try:
        cluster = read_cluster(args.kubeconfig, args.context)
        pools = provider_pools(os.environ)
    except (ApiError, CloudError) as error:
        print(f"surge: error: cannot read the cluster: {error}", file=sys.stderr)
        return EXIT_FAILURE
    doc, warnings = capture(
        cluster.pods, cluster.nodes, now=datetime.now(UTC), pools=pools, region=args.region,
        schedulers=tuple(args.schedulers or DEFAULT_SCHEDULERS), claims=cluster.claims,
        volumes=cluster.volumes, pdbs=cluster.pdbs,
    )
    warnings = [*cluster.warnings, *warnings]
    text = json.dumps(doc, indent=1) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    for warning in warnings:
        print(f"surge: warning: {warning}", file=sys.stderr)
    pending = sum(1 for pod in doc["pods"] if "nodeName" not in pod)
    sections = "".join(f", {len(doc[key])} {what}" for key, what in (
        ("persistentVolumeClaims", "zonal claims"), ("podDisruptionBudgets", "budgets"))
        if key in doc)
    print(f"surge: captured {len(doc['pools'])} pools, {len(doc['nodes'])} nodes, "
          f"{len(doc['pods'])} pods ({pending} pending){sections}", file=sys.stderr)
    return EXIT_OK


def _forward(module: str, needs: str, argv: list[str]) -> int:
    """Run ``module.main(argv)``, imported by name: the benchmarks and the simulator are
    separate top-level packages with optional dependencies (the ``bench`` and ``sim``
    extras), not layers the autoscaler builds on."""
    try:
        target = importlib.import_module(module)
    except ImportError as error:
        print(f"surge: error: {needs}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    run: Callable[[list[str]], int] = target.main
    return run(argv)


def _bench(args: argparse.Namespace) -> int:
    needs = (f"surge bench {args.suite} needs the benchmarks package and scipy "
             "(pip install 'surge-autoscaler[bench]')")
    return _forward(f"benchmarks.{args.suite}_bench", needs, list(args.args))


def _simulate(args: argparse.Namespace) -> int:
    needs = ("surge simulate needs the simulator package, rich and matplotlib "
             "(pip install 'surge-autoscaler[sim]')")
    return _forward("simulator.cli", needs, list(args.args))


def _twin(args: argparse.Namespace) -> int:
    return _forward("simulator.twin.kube_serve", "surge twin needs the simulator package",
                    list(args.args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``surge`` command; returns the exit code instead of exiting (the console
    script's wrapper passes it to ``sys.exit``)."""
    parser = _parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["simulate"]:
        # Forwarded untouched: argparse would claim the simulator's options (--seed, --help)
        # as unknown options of ``surge`` before the REMAINDER positional could take them.
        return _simulate(argparse.Namespace(args=arguments[1:]))
    if arguments[:1] == ["twin"]:
        return _twin(argparse.Namespace(args=arguments[1:]))
    try:
        args = parser.parse_args(arguments)
        code: int = args.handler(args)
    except SystemExit as stop:  # argparse (ours or a suite's) exits on --help and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    except ValidationError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
