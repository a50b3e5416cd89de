"""``surge twin``: serve the Kubernetes twin with a cluster loaded, for kubectl and the controller.

Callers: ``surge twin`` (``autoscaler.control.cli`` forwards every argument here) and
``python -m simulator.twin.kube_serve``. The cluster comes from a snapshot (its nodes and pods,
as captured by ``surge snapshot``), from a scenario (its pools' nodes and each Deployment's
replicas at time 0, pending) or is empty; the PodDisruptionBudgets either declares are served
too. The command writes a kubeconfig, prints how to use it, and serves until interrupted (or
for ``--seconds``, which tests use).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_objects import aks_nodes

Cluster = tuple[list[Pod], list[Node], list[PodDisruptionBudget]]


def snapshot_cluster(path: str) -> tuple[list[Pod], list[Node]]:
    pods, nodes, _ = _snapshot(path)
    return pods, nodes


def _snapshot(path: str) -> Cluster:
    from autoscaler.control.snapshot import load_snapshot

    state, _ = load_snapshot(path)
    return list(state.pods), list(state.nodes), list(state.pdbs)


def scenario_cluster(path: str) -> tuple[list[Pod], list[Node]]:
    """The scenario's pools at their starting counts, and its Deployments' starting replicas."""
    pods, nodes, _ = _scenario(path)
    return pods, nodes


def _scenario(path: str) -> Cluster:
    from simulator.loader import load_scenario
    from simulator.scenario import Deployment

    scenario = load_scenario(path)
    nodes = aks_nodes(scenario.pools, scenario.catalog(), scenario.region)
    pods = []
    for workload in scenario.workloads:
        if isinstance(workload, Deployment):
            owner = f"ReplicaSet/{workload.name}-0"
            pods += [workload.template.pod(f"{workload.name}-0-{i:05x}", workload.namespace,
                                           owner) for i in range(workload.replicas.replicas(0))]
    return pods, nodes, list(scenario.pdbs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surge twin", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--snapshot", metavar="FILE", help="load a snapshot's nodes and pods")
    source.add_argument("--scenario", metavar="FILE", help="load a scenario's starting cluster")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument("--kubeconfig", metavar="FILE", default="twin.kubeconfig",
                        help="where to write the kubeconfig (default: twin.kubeconfig)")
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    try:
        pods: list[Pod] = []
        nodes: list[Node] = []
        pdbs: list[PodDisruptionBudget] = []
        if args.snapshot:
            pods, nodes, pdbs = _snapshot(args.snapshot)
        elif args.scenario:
            pods, nodes, pdbs = _scenario(args.scenario)
    except ValidationError as error:
        print(f"surge: error: {error}", file=sys.stderr)
        return 2
    twin = KubeTwin()
    for pdb in pdbs:
        twin.add_pdb(pdb)
    twin.load(pods, nodes)
    twin.start(args.port)
    twin.write_kubeconfig(args.kubeconfig)
    pending = sum(1 for p in pods if p.node_name is None)
    budgets = f", {len(pdbs)} PodDisruptionBudgets" if pdbs else ""
    print(f"Kubernetes twin on {twin.url}: {len(nodes)} nodes, {len(pods)} pods ({pending} "
          f"pending){budgets}\n  kubectl --kubeconfig {args.kubeconfig} get pods -A\n"
          f"  surge snapshot --kubeconfig {args.kubeconfig}\nCtrl-C stops it.", flush=True)
    try:
        threading.Event().wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        twin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
