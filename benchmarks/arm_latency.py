"""Plan-to-PUT latency: how long after the planner decides does the ARM PUT reach ARM.

Callers: ``python -m benchmarks.arm_latency [--repeat N] [--pods P] [--json FILE] [--check]``
(``main(argv)`` returns the exit code: 1 with ``--check`` when the median misses the target).

Setup: the ARM twin (``simulator.twin.ArmTwin``, loopback HTTPS) with a spot and a regular pool;
the real ``AksProvider`` (azure-mgmt-containerservice, ClientSecretCredential); the real
``Reconciler`` over a fake cluster source holding ``--pods`` pending pods that tolerate spot.
Each run is a fresh Reconciler on a pool reset to 0 nodes, so every run plans the same
scale-up and sends one GET and one PUT. The Reconciler's ``timer`` is called right before and
right after ``plan_scale_up``; its second call is the moment the plan exists. The twin stamps
each request with ``time.perf_counter()`` when its headers have been read. Latency = PUT stamp -
plan stamp (same process, same clock): it covers the loop's hand-off, the GET of the pool (for
its eTag), serialising the body, TLS and the PUT on the wire. The first run also fetches a
token and opens the connection; it is reported apart as "cold". Target: median <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.identity import ClientSecretCredential

from autoscaler.cloud.aks import AksProvider
from autoscaler.cloud.aks_settings import AksSettings
from autoscaler.control.clock import FixedClock
from autoscaler.control.loop import LoopConfig, Reconciler
from autoscaler.kube.fake import FakeSource
from autoscaler.model.labels import SPOT_LABEL, labels_of
from autoscaler.model.pod import Container, Pod, TaintEffect, Toleration
from autoscaler.model.resources import Resources
from simulator.twin import ArmModel, ArmTwin

TARGET_SECONDS = 0.100
CLIENT, SECRET = "bench-client", "bench-secret"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arm_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed runs (default 30)")
    parser.add_argument("--pods", type=int, default=200, help="pending pods (default 200)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if the median misses")
    return parser


def _pods(n: int) -> list[Pod]:
    spot = Toleration(SPOT_LABEL, "Equal", "spot", TaintEffect.NO_SCHEDULE)
    return [
        Pod(
            name=f"web-{i}",
            namespace="default",
            uid=f"uid-web-{i}",
            owner="ReplicaSet/web",
            labels=labels_of({"app": "web"}),
            containers=(Container("main", Resources.of({"cpu": 500, "memory": 2**30})),),
            tolerations=(spot,),
        )
        for i in range(n)
    ]


class _PlanTimer:
    """The Reconciler's timer; remembers its latest reading (the end of the plan)."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self) -> float:
        self.last = time.perf_counter()
        return self.last


def _reset(model: ArmModel) -> None:
    model.complete_operations()
    for name in model.pools:
        model.pools[name]["properties"]["count"] = 0
        model.machines[name].clear()


def _one_run(twin: ArmTwin, provider: AksProvider, pods: list[Pod]) -> dict[str, float]:
    _reset(twin.model)
    timer = _PlanTimer()
    loop = Reconciler(FakeSource(pods), provider, FixedClock(START), LoopConfig(), timer=timer)
    twin.reset_counts()
    report = loop.run_once()
    returned = time.perf_counter()
    if [a.result for a in report.actions] != ["started"]:
        raise RuntimeError(f"expected one started scale-up, got {report.actions}")
    put = next(at for at, route, _ in twin.arrivals if route == "PUT agentPool")
    return {
        "plan_to_put": put - timer.last,
        "plan_to_started": returned - timer.last,
        "decision": report.decision_seconds,
    }


def run(repeat: int, n_pods: int) -> dict[str, Any]:
    model = ArmModel()
    model.secrets[CLIENT] = SECRET
    tags = {"surge.io/managed": "true"}
    model.add_pool("spot1", "Standard_D4s_v5", 0, zones=("1",), spot=True, tags=tags)
    model.add_pool("reg1", "Standard_D4s_v5", 0, zones=("1",), tags=tags)
    pods = _pods(n_pods)
    with ArmTwin(model) as twin:
        credential = ClientSecretCredential(
            model.tenant, CLIENT, SECRET, authority=twin.url,
            connection_verify=twin.ca_file, disable_instance_discovery=True,
        )
        settings = AksSettings(
            model.subscription, model.resource_group, model.cluster,
            arm_endpoint=twin.url, connection_verify=twin.ca_file,
        )
        provider = AksProvider(settings, credential)
        cold = _one_run(twin, provider, pods)
        runs = [_one_run(twin, provider, pods) for _ in range(repeat)]
    latencies = sorted(r["plan_to_put"] for r in runs)
    return {
        "target_seconds": TARGET_SECONDS,
        "repeat": repeat,
        "pods": n_pods,
        "cold_plan_to_put_seconds": cold["plan_to_put"],
        "median_plan_to_put_seconds": statistics.median(latencies),
        "p90_plan_to_put_seconds": latencies[int(0.9 * (len(latencies) - 1))],
        "min_plan_to_put_seconds": latencies[0],
        "max_plan_to_put_seconds": latencies[-1],
        "median_plan_to_started_seconds": statistics.median(r["plan_to_started"] for r in runs),
        "median_decision_seconds": statistics.median(r["decision"] for r in runs),
        "runs": runs,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.repeat < 1 or args.pods < 1:
        print("arm_latency: --repeat and --pods must be >= 1", file=sys.stderr)
        return 2
    result = run(args.repeat, args.pods)
    ms = {k: v * 1000 for k, v in result.items() if k.endswith("_seconds")}
    print(f"plan-to-PUT on the ARM twin, {args.repeat} runs, {args.pods} pending pods")
    print(f"  median {ms['median_plan_to_put_seconds']:.1f} ms   "
          f"p90 {ms['p90_plan_to_put_seconds']:.1f} ms   "
          f"min {ms['min_plan_to_put_seconds']:.1f} ms   "
          f"max {ms['max_plan_to_put_seconds']:.1f} ms")
    print(f"  first run {ms['cold_plan_to_put_seconds']:.1f} ms")
    print(f"  plan to scale() returned (PUT answered) {ms['median_plan_to_started_seconds']:.1f}"
          f" ms median; planning itself {ms['median_decision_seconds']:.1f} ms median")
    met = result["median_plan_to_put_seconds"] <= TARGET_SECONDS
    print(f"  target <= {TARGET_SECONDS * 1000:.0f} ms: {'met' if met else 'MISSED'}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
