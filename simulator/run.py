"""One simulation run: wires the simulated cluster and cloud to the real control loop.

Callers: ``simulator.cli`` (``surge simulate``), tests and benchmarks. ``simulate`` builds the
engine, the recorder, ``SimCluster``, ``SimCloud`` and the ``WorkloadDriver`` for a scenario,
hands the cluster, the cloud and the simulated clock to ``autoscaler.control.loop.Reconciler``
(the loop that runs in the cluster, unmodified), runs one loop pass every loop interval and one
sample every ``Recorder.sample_every`` simulated seconds, and returns what was recorded.

Determinism: the cloud's draws come from a generator seeded here with the run's seed, and the
scenario handed to the parts carries that seed (the workloads derive their own stream from it),
so a scenario and a seed fix the run event for event. The only wall-clock values are the
loop's decision times and the run's wall time; the report keeps them apart
(``simulator.report``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from autoscaler.control.loop import LoopReport, Reconciler
from autoscaler.kube.source import Observation
from autoscaler.model.plan import GroupOutcome
from autoscaler.planner.groups import group_pending
from simulator.cloud import SimCloud
from simulator.cluster import SimCluster
from simulator.engine import LOOP, SAMPLE, Engine
from simulator.metrics import LoopRecord, Recorder, Sample
from simulator.report import build_report, build_timing
from simulator.scenario import Scenario
from simulator.workloads import WorkloadDriver


@dataclass(frozen=True, slots=True)
class Result:
    """What a run recorded, and how it was run."""

    scenario: Scenario
    seed: int
    recorder: Recorder
    end: float  # simulated seconds the run covered
    events: int  # engine events processed
    wall_seconds: float
    view: Observation  # the cluster at the end of the run

    def run_info(self) -> dict[str, object]:
        """What identifies the run in the report (no wall-clock values)."""
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "start": self.scenario.start.isoformat(),
            "duration_s": self.end,
            "loop_interval_s": self.scenario.loop_interval_s,
            "events": self.events,
        }

    def report(self) -> dict[str, Any]:
        return build_report(self.recorder, end=self.end, run=self.run_info())

    def timing(self) -> dict[str, Any]:
        return build_timing(self.recorder, wall_seconds=self.wall_seconds)


class _Sampler:
    """Periodic samples; keeps the set of billed nodes incrementally so a sample costs O(live
    nodes), not O(every node ever requested)."""

    def __init__(self, recorder: Recorder, cluster: SimCluster, pools: tuple[str, ...]) -> None:
        self.recorder = recorder
        self.cluster = cluster
        self.pools = pools
        self.seen = 0  # node records already looked at (the recorder's dict only grows)
        self.live: dict[str, float] = {}  # billed node -> price per hour

    def cost_per_hour(self) -> float:
        nodes = self.recorder.nodes
        if len(nodes) > self.seen:
            for record in list(nodes.values())[self.seen :]:
                self.live[record.name] = record.price_per_hour
            self.seen = len(nodes)
        for name in [n for n in self.live if nodes[n].removed is not None]:
            del self.live[name]
        return sum(self.live[name] for name in sorted(self.live))

    def take(self, now: float) -> None:
        totals = self.cluster.totals()
        self.recorder.sample(
            Sample(
                time=now,
                pending=totals["pending"],
                running=totals["running"],
                nodes_by_pool={p: len(self.cluster.node_names(p)) for p in self.pools},
                requested_cpu_m=totals["requested_cpu_m"],
                allocatable_cpu_m=totals["allocatable_cpu_m"],
                requested_memory=totals["requested_memory"],
                allocatable_memory=totals["allocatable_memory"],
                cost_per_hour=self.cost_per_hour(),
            )
        )


def _why(outcome: GroupOutcome | None, last: LoopReport | None) -> str:
    """Why a group's pods are still pending, as the autoscaler's last pass saw them."""
    if last is None:
        return "the autoscaler never ran"
    if last.plan is None:
        return f"the last loop pass planned nothing: {last.skipped}"
    if outcome is None:
        return "arrived after the last loop pass"
    if outcome.unplaced:
        share = "" if outcome.unplaced == outcome.pods else (
            f" ({outcome.unplaced} of {outcome.pods} pods of its group; the others have room)"
        )
        return f"pod didn't trigger scale-up: {outcome.reason}{share}"
    if outcome.on_new or outcome.on_upcoming:
        return "waiting for nodes being provisioned"
    return "fits free capacity on existing nodes; not bound yet"


class _Reasons:
    """Per-pod reasons for the report's "never scheduled" list.

    The loop writes a NotTriggerScaleUp event on one pod per group, and only when the message
    changes (as it should: events are for people), so most pods of a group never get a reason
    of their own. After each pass that left pods unplaced, every pending pod of such a group
    is given its group's reason; the work is skipped while neither those reasons nor the pods
    changed, and only pods not yet given the same reason are written. At the end, every pod
    still pending gets its group's status in the last pass (``_why``)."""

    def __init__(self, recorder: Recorder, cluster: SimCluster) -> None:
        self.recorder = recorder
        self.cluster = cluster
        self.seen: tuple[object, ...] = ()
        self.given: dict[str, tuple[str, set[str]]] = {}  # group -> (reason, pod keys given it)

    def after_pass(self, report: LoopReport) -> None:
        if report.plan is None:
            return
        unplaced = {
            g.group: f"pod didn't trigger scale-up: {g.reason}"
            for g in report.plan.groups
            if g.unplaced
        }
        if not unplaced:
            return
        seen = (tuple(sorted(unplaced.items())), len(self.recorder.pods))
        if seen == self.seen:
            return
        self.seen = seen
        for group in group_pending(self.cluster.observe().pods):
            reason = unplaced.get(group.key)
            if reason is None:
                continue
            keys = {f"{group.pod.namespace}/{name}" for name in group.pods}
            given, done = self.given.get(group.key, ("", set()))
            for key in sorted(keys - done if given == reason else keys):
                self.recorder.pod_reason(key, reason)
            self.given[group.key] = (reason, keys)

    def at_end(self, view: Observation, last: LoopReport | None) -> None:
        pending = [pod for pod in view.pods if pod.node_name is None]
        if not pending:
            return
        outcomes = {g.group: g for g in last.plan.groups} if last and last.plan else {}
        for group in group_pending(pending):
            reason = _why(outcomes.get(group.key), last)
            for name in group.pods:
                self.recorder.pod_reason(f"{group.pod.namespace}/{name}", reason)


def _pending(report: LoopReport, cluster: SimCluster) -> int:
    if report.plan is not None:
        return sum(group.pods for group in report.plan.groups)
    return cluster.totals()["pending"]


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Run ``scenario`` (with ``seed`` instead of its own, when given) to its duration.

    ``progress`` is called with the simulated second now and then (for a progress bar)."""
    if seed is not None and seed != scenario.seed:
        scenario = replace(scenario, seed=seed)
    wall = time.perf_counter()
    engine = Engine(scenario.start)
    recorder = Recorder(sample_every=scenario.sample_every_s)
    catalog = scenario.catalog()
    rng = np.random.default_rng(scenario.seed)
    cluster = SimCluster(engine, recorder, scenario.pdbs)
    cloud = SimCloud(
        engine, cluster, recorder, scenario.pools, catalog, scenario.region, scenario.cloud, rng
    )
    driver = WorkloadDriver(engine, cluster, scenario)
    loop = Reconciler(
        source=cluster, cloud=cloud, clock=engine.clock, config=scenario.loop, catalog=catalog
    )
    sampler = _Sampler(recorder, cluster, tuple(sorted(p.name for p in scenario.pools)))
    interval = scenario.loop_interval_s
    reasons = _Reasons(recorder, cluster)
    last: list[LoopReport] = []  # the latest pass's report, for the pods pending at the end

    def tick() -> None:
        report = loop.run_once()
        last[:] = [report]
        reasons.after_pass(report)
        recorder.loop(
            LoopRecord(
                time=engine.now,
                decision_seconds=report.decision_seconds,
                pending=_pending(report, cluster),
                actions=len(report.actions),
                skipped=report.skipped,
            )
        )
        engine.after(interval, tick, LOOP)

    def sample() -> None:
        sampler.take(engine.now)
        engine.after(recorder.sample_every, sample, SAMPLE)

    driver.start()
    engine.at(0.0, tick, LOOP)
    engine.at(0.0, sample, SAMPLE)
    engine.run(scenario.duration, progress)
    if not recorder.samples or recorder.samples[-1].time < engine.now:
        sampler.take(engine.now)  # the report's series always reach the end of the run
    view = cluster.observe()
    reasons.at_end(view, last[0] if last else None)
    return Result(
        scenario=scenario,
        seed=scenario.seed,
        recorder=recorder,
        end=float(scenario.duration),
        events=engine.processed,
        wall_seconds=time.perf_counter() - wall,
        view=view,
    )
