"""Scale-down in the loop: unneeded timers, guards, cordon and drain, deletion by name.

Callers: ``control.loop.Reconciler`` calls ``ScaleDown.run`` once per pass after scale-up, and
``operation_ended`` when a delete-machines operation it started (or resumed) ends. The planning
itself is ``planner.scaledown.plan_scale_down`` (pure); this module holds the state across
passes. One ``ScaleDown`` lives one leadership term (a new leader builds a new ``Reconciler``).

First pass of a term: drains an earlier leader left half-way (nodes carrying surge's cordon
mark that no deletion in flight covers) are undone: ``control.scaledown_recovery``. Every
cordon here marks the node, every uncordon unmarks it (``ClusterSource.cordon``).

Per pass:

1. Drains in progress go on: pods still on a draining node are evicted through the Eviction
   API (grace period capped); a 429 (PodDisruptionBudget) is retried on the next pass until
   ``drain_timeout``; an eviction error or the timeout fails the drain: the node is uncordoned
   and scale-down backs off for ``delay_after_failure``. A drained node (only DaemonSet or
   mirror pods left) is deleted by name: one ``delete_machines`` call per pool, when no other
   operation runs on the pool.
2. The unneeded set is planned (every node that could go together, no cap) and each node's
   "unneeded since" timer is kept; a node that stops being unneeded loses its timer.
3. A new wave starts only when none is in flight and no guard holds: scale-down enabled, not
   within ``delay_after_scale_up`` of a scale-up nor ``delay_after_failure`` of a failed drain
   or deletion, no pending pod the scale-up plan places (they need the capacity). The wave is
   planned again over the nodes unneeded for at least ``unneeded_time``, capped by the
   disruption budget (``max_disrupted_fraction`` of the nodes), so each choice is checked
   against the cluster as it is now. Its nodes are cordoned and drained at once.

One wave at a time keeps the plan honest: while nodes drain, their pods are on their way to the
nodes that stay, and a second plan would count that room twice. Spot nodes with an eviction
notice are left to AKS (they are never chosen, and never take pods in a plan).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from autoscaler.cloud.provider import (
    CloudError,
    CloudProvider,
    Conflict,
    Operation,
    OperationState,
    OperationStatus,
    Throttled,
)
from autoscaler.cloud.store import OperationStore
from autoscaler.control.scaledown_recovery import leftovers, undo
from autoscaler.kube.source import ClusterSource, EvictionResult, Observation
from autoscaler.model.disruption import ScaleDownPlan
from autoscaler.model.plan import ScaleUpPlan
from autoscaler.model.pod import Pod
from autoscaler.model.pool import AgentPool, NodeOption
from autoscaler.model.state import ClusterState
from autoscaler.planner.scaledown import plan_scale_down
from autoscaler.planner.scaledown_rules import ScaleDownParams, disruption_budget, ignored

SCALE_DOWN_EVENT = "ScaleDown"


@dataclass(frozen=True, slots=True)
class ScaleDownConfig:
    """Cluster Autoscaler's defaults: ``--scale-down-unneeded-time``, ``-delay-after-add``,
    ``-delay-after-failure``, ``--scale-down-utilization-threshold``,
    ``--max-graceful-termination-sec``; the disruption budget is Karpenter's default 10%."""

    enabled: bool = True
    utilisation_threshold: float = 0.5
    unneeded_time: timedelta = timedelta(minutes=10)
    delay_after_scale_up: timedelta = timedelta(minutes=10)
    delay_after_failure: timedelta = timedelta(minutes=3)
    max_disrupted_fraction: float = 0.1
    drain_timeout: timedelta = timedelta(minutes=10)
    max_grace_seconds: int = 600


@dataclass(frozen=True, slots=True)
class ScaleDownReport:
    """What scale-down did in one pass."""

    unneeded: tuple[str, ...] = ()  # nodes that could go together now
    cordoned: tuple[str, ...] = ()  # drains started this pass
    deleting: tuple[tuple[str, str], ...] = ()  # (pool, node) deletions requested this pass
    failed: tuple[str, ...] = ()  # "node: why" for drains or deletions that failed
    uncordoned: tuple[str, ...] = ()  # drains an earlier leader left, undone this pass
    unmarked: tuple[str, ...] = ()  # marked by an earlier leader, already uncordoned
    evicted: int = 0
    blocked: int = 0  # evictions refused (429) by a PodDisruptionBudget
    skipped: str | None = None  # why no new wave started
    plan: ScaleDownPlan | None = None  # the wave planned this pass, if any


@dataclass(slots=True)
class _Drain:
    node: str
    pool: str
    started: datetime
    evicted: set[str] = field(default_factory=set)
    deleting: bool = False


@dataclass(slots=True)
class _Pass:
    now: datetime
    cordoned: list[str] = field(default_factory=list)
    deleting: list[tuple[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    uncordoned: list[str] = field(default_factory=list)
    unmarked: list[str] = field(default_factory=list)
    evicted: int = 0
    blocked: int = 0


class ScaleDown:
    def __init__(
        self,
        config: ScaleDownConfig,
        source: ClusterSource,
        cloud: CloudProvider,
        inflight: dict[str, Operation],
        store: OperationStore | None = None,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.source = source
        self.cloud = cloud
        self.inflight = inflight  # shared with the Reconciler: one operation per pool
        self.store = store
        self.dry_run = dry_run
        self.unneeded_since: dict[str, datetime] = {}
        self.drains: dict[str, _Drain] = {}
        self.last_scale_up: datetime | None = None
        self.last_failure: datetime | None = None
        # Marked nodes still to look at: None until the first pass has looked at every node,
        # then those whose undo failed (retried each pass until it succeeds or they go).
        self.recovering: frozenset[str] | None = None
        self.deleted: list[Operation] = []  # deletions that succeeded before that first look

    # -- hooks from the loop ------------------------------------------------------------------

    def note_scale_up(self, now: datetime) -> None:
        self.last_scale_up = now

    def operation_ended(self, op: Operation, status: OperationStatus, now: datetime) -> str | None:
        """A delete-machines operation ended; on failure the nodes are uncordoned and
        scale-down backs off. Returns a failure line for the loop's report, if any."""
        if self.recovering is None and status.state is OperationState.SUCCEEDED:
            self.deleted.append(op)  # its nodes are gone or going: not to be uncordoned
        mine = [d for d in self.drains.values() if d.pool == op.pool and d.deleting]
        for drain in mine:
            del self.drains[drain.node]
        if status.state is OperationState.SUCCEEDED:
            return None
        self.last_failure = now
        for drain in mine:
            self._uncordon(drain.node)
        code = status.error_code or "Unknown"
        names = ", ".join(d.node for d in mine)
        return f"delete-machines {op.pool} [{names}]: {code} {status.message}".strip()

    # -- the pass -----------------------------------------------------------------------------

    def run(
        self,
        now: datetime,
        view: Observation,
        pools: Mapping[str, AgentPool],
        options: Sequence[NodeOption],
        scale_up: ScaleUpPlan,
        region: str,
    ) -> ScaleDownReport:
        step = _Pass(now)
        # Before the flag: a node left cordoned by an earlier leader comes back even when
        # scale-down has been turned off since.
        self._recover(step, view)
        if not self.config.enabled:
            return ScaleDownReport(failed=tuple(step.failed), uncordoned=tuple(step.uncordoned),
                                   unmarked=tuple(step.unmarked), skipped="scale-down disabled")
        self._progress(step, view)
        self._delete(step, view)
        state = self._state(view, pools, options, region, now)
        unneeded = plan_scale_down(state, ScaleDownParams(self.config.utilisation_threshold))
        names = unneeded.names
        self.unneeded_since = {n: self.unneeded_since.get(n, now) for n in names}
        skipped = self._guard(now, scale_up)
        plan = None
        if skipped is None:
            plan = self._wave(step, view, state)
            if plan is None:
                skipped = "no node unneeded long enough"
            elif not plan.remove:
                skipped = "no unneeded node can go now"
        return ScaleDownReport(
            unneeded=names,
            cordoned=tuple(step.cordoned),
            deleting=tuple(step.deleting),
            failed=tuple(step.failed),
            uncordoned=tuple(step.uncordoned),
            unmarked=tuple(step.unmarked),
            evicted=step.evicted,
            blocked=step.blocked,
            skipped=skipped,
            plan=plan,
        )

    def _recover(self, step: _Pass, view: Observation) -> None:
        """Undo the drains an earlier leader left (``control.scaledown_recovery``); nodes a
        deletion in flight covers become drains being deleted, ended by ``operation_ended``."""
        if self.dry_run or self.recovering == frozenset():
            return  # dry-run writes nothing; a term's own marks are never undone
        todo = self.recovering
        nodes = view.nodes if todo is None else [n for n in view.nodes if n.name in todo]
        found = leftovers(nodes, self.drains, self.inflight, self.deleted)
        self.deleted = []
        for pool, name in found.deleting:
            self.drains[name] = _Drain(name, pool, step.now, deleting=True)
        done = undo(self.source, found.undo)
        step.uncordoned += done.uncordoned
        step.unmarked += done.unmarked
        step.failed += [f"{name}: uncordon failed: {why}" for name, why in done.failed.items()]
        self.recovering = frozenset(done.failed)

    def _guard(self, now: datetime, scale_up: ScaleUpPlan) -> str | None:
        config = self.config
        if self.drains:
            return f"{len(self.drains)} node(s) still draining or being deleted"
        up, failed = self.last_scale_up, self.last_failure
        if up is not None and now - up < config.delay_after_scale_up:
            return f"scale-up at {up:%H:%M:%S}"
        if failed is not None and now - failed < config.delay_after_failure:
            return f"failed scale-down at {failed:%H:%M:%S}"
        if any(group.placed for group in scale_up.groups):
            return "pending pods that fit the cluster are waiting for a node"
        return None

    def _state(
        self,
        view: Observation,
        pools: Mapping[str, AgentPool],
        options: Sequence[NodeOption],
        region: str,
        now: datetime,
    ) -> ClusterState:
        # Nodes on their way out no longer count towards their pool (its minimum).
        leaving: dict[str, int] = {}
        for drain in self.drains.values():
            leaving[drain.pool] = leaving.get(drain.pool, 0) + 1
        counted = tuple(
            replace(p, count=max(0, p.count - leaving.get(name, 0)))
            for name, p in sorted(pools.items())
        )
        return ClusterState(
            region=region,
            pools=counted,
            options=tuple(options),
            nodes=view.nodes,
            pods=view.pods,
            pdbs=view.pdbs,
            now=now,
        )

    def _wave(self, step: _Pass, view: Observation, state: ClusterState) -> ScaleDownPlan | None:
        config = self.config
        ripe = frozenset(
            n for n, since in self.unneeded_since.items()
            if step.now - since >= config.unneeded_time
        )
        if not ripe:
            return None
        budget = disruption_budget(len(view.nodes), config.max_disrupted_fraction)
        params = ScaleDownParams(config.utilisation_threshold, budget, ripe)
        plan = plan_scale_down(state, params)
        if self.dry_run:
            return plan
        for removal in plan.remove:
            try:
                self.source.cordon(removal.node, True)
            except Exception as err:  # any API failure: this node is skipped, and reported
                step.failed.append(f"{removal.node}: cordon failed: {err}")
                continue
            self.drains[removal.node] = _Drain(removal.node, removal.pool, step.now)
            self.unneeded_since.pop(removal.node, None)
            step.cordoned.append(removal.node)
        if step.cordoned:
            self._progress(step, view)
            self._delete(step, view)
        return plan

    # -- drains -------------------------------------------------------------------------------

    def _progress(self, step: _Pass, view: Observation) -> None:
        if not self.drains:
            return  # the common pass: nothing to look up
        present = {n.name for n in view.nodes}
        on: dict[str, list[str]] = {}
        pods: dict[str, Pod] = {}
        for pod in view.pods:
            if pod.node_name in self.drains and not ignored(pod):
                on.setdefault(pod.node_name, []).append(pod.key)
                pods[pod.key] = pod
        for name in sorted(self.drains):
            drain = self.drains[name]
            if drain.deleting:
                continue
            if name not in present:
                del self.drains[name]  # gone already (AKS, a person): nothing left to do
                continue
            remaining = sorted(on.get(name, []))
            if not remaining:
                continue  # drained: _delete takes it from here
            if step.now - drain.started >= self.config.drain_timeout:
                self._fail(step, name, "drain timed out")
                continue
            # Evicted pods may still be terminating (grace period): they are not asked again.
            for pod in [pods[key] for key in remaining if key not in drain.evicted]:
                grace = self.config.max_grace_seconds
                if pod.grace_seconds is not None:
                    grace = min(grace, pod.grace_seconds)
                answer = self.source.evict(pod, grace)
                if answer in (EvictionResult.EVICTED, EvictionResult.GONE):
                    drain.evicted.add(pod.key)
                    if answer is EvictionResult.EVICTED:
                        step.evicted += 1
                        self.source.record_event(
                            pod, SCALE_DOWN_EVENT, f"evicted to remove node {name} (scale-down)"
                        )
                elif answer is EvictionResult.BLOCKED_BY_PDB:
                    step.blocked += 1
                else:
                    self._fail(step, name, f"eviction of {pod.key} failed")
                    break

    def _drained(self, view: Observation) -> list[str]:
        busy = {p.node_name for p in view.pods if p.node_name in self.drains and not ignored(p)}
        return [
            name for name, drain in sorted(self.drains.items())
            if not drain.deleting and name not in busy
        ]

    def _delete(self, step: _Pass, view: Observation) -> None:
        by_pool: dict[str, list[str]] = {}
        present = {n.name for n in view.nodes}
        for name in self._drained(view):
            if name in present:
                by_pool.setdefault(self.drains[name].pool, []).append(name)
        for pool, names in sorted(by_pool.items()):
            if pool in self.inflight:
                continue  # one operation per pool: the next pass asks again
            try:
                op = self.cloud.delete_machines(pool, names)
            except (Conflict, Throttled):
                continue
            except CloudError as err:
                self.last_failure = step.now
                for name in names:
                    self._fail(step, name, f"delete-machines refused: {err}")
                continue
            self.inflight[pool] = op
            if self.store is not None:
                self.store.save(op)
            for name in names:
                self.drains[name].deleting = True
            step.deleting.extend((pool, name) for name in names)

    def _fail(self, step: _Pass, name: str, why: str) -> None:
        self.drains.pop(name, None)
        self.last_failure = step.now
        self._uncordon(name)
        step.failed.append(f"{name}: {why}")

    def _uncordon(self, name: str) -> None:
        # Best effort: a node left cordoned is in the report's failures already.
        with contextlib.suppress(Exception):
            self.source.cordon(name, False)

