"""Initial sync of the Kubernetes cache: how long until ``observe()`` works on a large cluster.

Callers: ``python -m benchmarks.kube_sync [--nodes 5000] [--pods 150000] [--pending 10000]
[--page-size 2000] [--burst 2000] [--json FILE] [--check]`` (``main(argv)`` returns the exit
code: 1 with ``--check`` when the sync misses the target).

Setup: the Kubernetes twin (``simulator.twin.kube.KubeTwin``) runs in a child process, so its
JSON work does not share this process's interpreter lock, loaded with AKS-shaped nodes (12
pools: spot and regular, D8s/D16s v5, one per zone) and pods of 400 Deployments with realistic
padding (about 3.5 KB of JSON per pod: image, probes, service-account volume, statuses). This
process builds the real cache (``kube.client.KubeApi`` over the official ``kubernetes`` client,
``control.kubeobjects.KubeDecoder``) and measures, with ``time.perf_counter``: the initial
sync (start -> both lists loaded: what ``observe`` waits for), one ``observe()``, one planner
pass over the observed pods, a burst of ``--burst`` new pending pods arriving through the
watch, and this process's resident memory (VmRSS, VmHWM). Target: sync <= 20 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TARGET_SECONDS = 20.0
REGION = "eastus"


def cluster(n_nodes: int, n_pods: int, n_pending: int) -> tuple[list[Any], list[Any]]:
    """(pods, nodes) model values; deterministic. Bound pods go round the nodes."""
    from dataclasses import replace

    from autoscaler.model.aks import load_catalog
    from autoscaler.model.labels import SPOT_LABEL, ZONE_LABEL, LabelSelector, labels_of
    from autoscaler.model.pod import Container, Pod, TaintEffect, Toleration, TopologySpread
    from autoscaler.model.pool import AgentPool, Priority
    from autoscaler.model.resources import Resources
    from simulator.twin.kube_objects import aks_nodes

    pools = [AgentPool(f"{kind}d{size}z{zone}", f"Standard_D{size}s_v5", 0, max_count=1000,
                       zones=(str(zone),), priority=priority, max_pods=110)
             for size in (8, 16) for kind, priority in (("spot", Priority.SPOT),
                                                         ("reg", Priority.REGULAR))
             for zone in (1, 2, 3)]
    per_pool = -(-n_nodes // len(pools))
    pools = [replace(p, count=min(per_pool, n_nodes - i * per_pool)) for i, p in enumerate(pools)]
    nodes = aks_nodes([p for p in pools if p.count > 0], load_catalog(), REGION)
    spot = Toleration(SPOT_LABEL, "Equal", "spot", TaintEffect.NO_SCHEDULE)
    owners = 400
    pods = []
    for i in range(n_pods):
        owner = i % owners
        app = f"app{owner}"
        spread = (TopologySpread(1, ZONE_LABEL, label_selector=LabelSelector(
            labels_of({"app": app}))),) if owner % 3 == 0 else ()
        pending = i >= n_pods - n_pending
        pods.append(Pod(
            name=f"{app}-7d9f8c6b5d-{i:06x}", namespace=f"team{owner % 20}",
            owner=f"ReplicaSet/{app}-7d9f8c6b5d",
            labels=labels_of({"app": app, "pod-template-hash": "7d9f8c6b5d"}),
            containers=(Container("app", Resources.of({
                "cpu": 100 * (1 + owner % 8), "memory": 2**27 * (1 + owner % 16)})),),
            tolerations=(spot,) if owner % 2 == 0 else (), topology_spread=spread,
            node_name=None if pending else nodes[i % len(nodes)].name,
        ))
    return pods, nodes


def serve(args: argparse.Namespace) -> None:
    """Child process: load the twin, print its port, then obey stdin (``burst N``, ``quit``)."""
    from autoscaler.model.labels import labels_of
    from autoscaler.model.pod import Container, Pod
    from autoscaler.model.resources import Resources
    from simulator.twin.kube import KubeTwin

    pods, nodes = cluster(args.nodes, args.pods, args.pending)
    twin = KubeTwin()
    twin.load(pods, nodes, padding=True)
    del pods, nodes
    twin.start()
    print(twin.port, flush=True)
    for line in sys.stdin:
        word, _, count = line.strip().partition(" ")
        if word == "burst":
            for i in range(int(count)):
                twin.add_pod(Pod(
                    name=f"burst-{i:06x}", namespace="burst", owner="ReplicaSet/burst-1",
                    labels=labels_of({"app": "burst"}),
                    containers=(Container("app", Resources.of({"cpu": 250})),),
                ), padding=True)
            print("done", flush=True)
        elif word == "quit":
            break
    twin.stop()


def _memory() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from autoscaler.control.kubeobjects import KubeDecoder
    from autoscaler.kube.cache import CacheOptions, ClusterCache
    from autoscaler.kube.client import KubeApi, api_client
    from simulator.twin.kube import KubeTwin

    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.kube_sync", "--serve", "--nodes", str(args.nodes),
         "--pods", str(args.pods), "--pending", str(args.pending)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    loaded = time.perf_counter()
    port = int(child.stdout.readline())
    setup = time.perf_counter() - loaded
    try:
        with tempfile.TemporaryDirectory() as scratch:
            twin = KubeTwin()  # only to write a kubeconfig for the child's port
            twin.port = port
            kubeconfig = twin.write_kubeconfig(f"{scratch}/kubeconfig")
            before = _memory()
            started = time.perf_counter()
            cache = ClusterCache(KubeApi(api_client(kubeconfig)), KubeDecoder(),
                                 CacheOptions(page_size=args.page_size)).start()
            cache.wait_for(lambda: cache.pods.synced and cache.nodes.synced, 600)
            synced = time.perf_counter() - started
            after = _memory()
            started = time.perf_counter()
            view = cache.observe()
            observe = time.perf_counter() - started
            plan = _plan(view)
            version = cache.version
            started = time.perf_counter()
            child.stdin.write(f"burst {args.burst}\n")
            child.stdin.flush()
            last = f"burst/burst-{args.burst - 1:06x}"  # the watch keeps creation order
            cache.wait_for(lambda: last in cache.pods.table, 600)
            burst = time.perf_counter() - started
            cache.close()
    finally:
        child.stdin.write("quit\n")
        child.stdin.close()
        child.wait(30)
    pending = sum(1 for p in view.pods if p.node_name is None)
    return {
        "nodes": len(view.nodes), "pods": len(view.pods), "pending": pending,
        "page_size": args.page_size, "twin_setup_seconds": round(setup, 2),
        "initial_sync_seconds": round(synced, 2), "observe_seconds": round(observe, 4),
        "plan_seconds": round(plan, 3), "burst_pods": args.burst,
        "burst_seconds": round(burst, 3), "changes_seen": cache.version - version,
        "rss_before_bytes": before.get("VmRSS"), "rss_after_sync_bytes": after.get("VmRSS"),
        "rss_peak_bytes": after.get("VmHWM"), "target_seconds": TARGET_SECONDS,
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }


def _plan(view: Any) -> float:
    """One planner pass over the observed pods and nodes, pools read off the node labels."""
    from collections import Counter

    from autoscaler.model.aks import load_catalog
    from autoscaler.model.labels import INSTANCE_TYPE_LABEL, SPOT_LABEL
    from autoscaler.model.pool import AgentPool, Priority
    from autoscaler.model.state import ClusterState
    from autoscaler.planner.options import build_options
    from autoscaler.planner.scaleup import plan_scale_up

    counts = Counter(n.pool for n in view.nodes)
    first = {n.pool: n for n in reversed(view.nodes)}
    pools = []
    for name, count in sorted(counts.items()):
        labels = dict(first[name].labels)
        pools.append(AgentPool(
            name, labels[INSTANCE_TYPE_LABEL], count, max_count=1000,
            zones=((first[name].zone or "-0").rpartition("-")[2],),
            priority=Priority.SPOT if labels.get(SPOT_LABEL) else Priority.REGULAR,
            max_pods=110))
    options, _ = build_options(REGION, pools, view.nodes, load_catalog())
    started = time.perf_counter()
    plan_scale_up(ClusterState(REGION, tuple(pools), options, view.nodes, view.pods))
    return time.perf_counter() - started


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kube_sync", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=2000, help="list page size")
    parser.add_argument("--burst", type=int, default=2000, help="pods created after the sync")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if the sync misses")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.serve:
        serve(args)
        return 0
    result = measure(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 1 if args.check and result["initial_sync_seconds"] > TARGET_SECONDS else 0


if __name__ == "__main__":
    sys.exit(main())
