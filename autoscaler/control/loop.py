"""The reconcile loop: observe -> plan -> act -> record, one pass per call of ``run_once``.

Callers: the in-cluster runner (``surge run``, on a timer and on pod events) and the simulator
(``simulator.run``, on simulated time). Both drive this same class through the same protocols:
a ``ClusterSource``, a ``CloudProvider`` and a ``Clock``. Nothing here blocks on the cloud:
scale operations are started, tracked across passes and polled.

Safety rules: no action when the agent pools or the cluster view could not be read (or the pool
list is stale); at most one operation in flight per pool; a pool whose requested nodes have not
registered within ``max_node_provision_time`` is backed off and scaled back to what registered.

Operations outlive the process: with an ``OperationStore`` the loop saves each operation it
starts and forgets it when it ends, and a new Reconciler (restart, new leader) loads them and
polls them instead of starting them again. A 409/412 makes the next pass re-read the pools; a
refused request (400, quota at submission, ...) backs its option off like a failed operation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from autoscaler.cloud.provider import (
    DELETE_MACHINES,
    SCALE,
    CloudError,
    CloudProvider,
    Conflict,
    Operation,
    OperationState,
    OperationStatus,
    Throttled,
)
from autoscaler.cloud.store import OperationStore
from autoscaler.control.backoff import Backoffs
from autoscaler.control.clock import Clock
from autoscaler.control.scaledown import ScaleDown, ScaleDownConfig, ScaleDownReport
from autoscaler.kube.source import ClusterSource, NotSynced, Observation
from autoscaler.model.aks import Catalog, load_catalog
from autoscaler.model.plan import ClusterLimits, Policy, ScaleUpPlan
from autoscaler.model.pool import AgentPool
from autoscaler.model.state import ClusterState
from autoscaler.planner.options import build_options
from autoscaler.planner.scaleup import plan_scale_up


@dataclass(frozen=True, slots=True)
class LoopConfig:
    region: str = "eastus"
    managed_pools: tuple[str, ...] | None = None  # None: every pool the options can model
    limits: ClusterLimits = ClusterLimits()
    policy: Policy = Policy()
    max_node_provision_time: timedelta = timedelta(minutes=15)
    pool_refresh_interval: timedelta = timedelta(seconds=30)
    dry_run: bool = False
    scale_down: ScaleDownConfig = ScaleDownConfig()  # scale_down.enabled: the on/off flag


@dataclass(frozen=True, slots=True)
class ScaleAction:
    pool: str
    current: int
    target: int
    result: str  # "started" | "dry-run" | "conflict" | "throttled" | "error" | "scale-back"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LoopReport:
    at: datetime
    plan: ScaleUpPlan | None = None
    actions: tuple[ScaleAction, ...] = ()
    failures: tuple[str, ...] = ()  # operations that ended in failure this pass
    skipped: str | None = None  # why nothing was planned or done
    decision_seconds: float = 0.0  # wall time of encode + plan
    warnings: tuple[str, ...] = ()
    scale_down: ScaleDownReport | None = None


@dataclass(slots=True)
class _Pools:
    pools: dict[str, AgentPool] = field(default_factory=dict)
    read_at: datetime | None = None


class Reconciler:
    def __init__(
        self,
        source: ClusterSource,
        cloud: CloudProvider,
        clock: Clock,
        config: LoopConfig,
        catalog: Catalog | None = None,
        timer: Callable[[], float] = time.perf_counter,
        store: OperationStore | None = None,
    ) -> None:
        self.source = source
        self.cloud = cloud
        self.clock = clock
        self.config = config
        self.catalog = catalog or load_catalog()
        self.timer = timer
        self.backoffs = Backoffs.empty()
        self.store = store
        # Operations a previous process started resume here: polled, never started again.
        self.inflight: dict[str, Operation] = dict(store.load()) if store is not None else {}
        self.requested: dict[str, datetime] = {  # pool -> when its count was last raised
            name: op.started for name, op in self.inflight.items() if op.kind == SCALE
        }
        self.hold_until: datetime | None = None  # after a 429, no cloud call before this
        self._pools = _Pools()
        self._said: dict[str, str] = {}  # group key -> last event message (deduplication)
        self.scale_down = ScaleDown(
            config.scale_down, source, cloud, self.inflight, store, config.dry_run
        )

    # -- observe ---------------------------------------------------------------------------

    def _poll(self) -> list[tuple[Operation, OperationStatus]]:
        """Poll the operations in flight; returns those that ended, with their status."""
        ended: list[tuple[Operation, OperationStatus]] = []
        for name, op in sorted(self.inflight.items()):
            status = self.cloud.operation(op)
            if status.state is not OperationState.IN_PROGRESS:
                del self.inflight[name]
                if self.store is not None:
                    self.store.delete(name)
                ended.append((op, status))
        return ended

    def _back_off(
        self,
        now: datetime,
        ended: list[tuple[Operation, OperationStatus]],
        pools: Mapping[str, AgentPool],
    ) -> list[str]:
        """Failed operations put their (VM size, zone, priority) in backoff."""
        failures: list[str] = []
        for op, status in ended:
            if op.kind == DELETE_MACHINES:
                # Not a capacity signal: scale-down backs itself off and uncordons the nodes.
                failed = self.scale_down.operation_ended(op, status, now)
                if failed is not None:
                    failures.append(failed)
                continue
            if status.state is not OperationState.FAILED:
                continue
            code = status.error_code or "Unknown"
            failures.append(f"{op.kind} {op.pool} to {op.target}: {code} {status.message}".strip())
            pool = pools.get(op.pool)
            if pool is None:
                continue
            # Partial success (the pool grew although the operation failed): quota is low,
            # not gone, so the shorter backoff class applies.
            partial = op.before is not None and pool.count > op.before
            self.backoffs.record(
                pool.vm_size,
                self._zone(pool),
                pool.priority,
                code,
                now,
                partial=partial,
                message=status.message,
            )
        return failures

    def _zone(self, pool: AgentPool) -> str | None:
        return f"{self.config.region}-{pool.zones[0]}" if len(pool.zones) == 1 else None

    def _read_pools(self, now: datetime, force: bool) -> dict[str, AgentPool]:
        cache = self._pools
        fresh = (
            cache.read_at is not None and now - cache.read_at < self.config.pool_refresh_interval
        )
        if fresh and not force:
            return cache.pools
        try:
            pools = self.cloud.list_pools()
        except CloudError:
            stale = (
                cache.read_at is None or now - cache.read_at > 2 * self.config.pool_refresh_interval
            )
            if stale:
                raise
            return cache.pools
        cache.pools = {p.name: p for p in pools}
        cache.read_at = now
        return cache.pools

    # -- the pass --------------------------------------------------------------------------

    def run_once(self) -> LoopReport:
        now = self.clock.now()
        if self.hold_until is not None and now < self.hold_until:
            return LoopReport(now, skipped=f"throttled by ARM until {self.hold_until:%H:%M:%S}")
        try:
            ended = self._poll()
            pools = self._read_pools(now, force=bool(ended))
        except Throttled as err:
            self.hold_until = now + timedelta(seconds=err.retry_after)
            return LoopReport(now, skipped=f"throttled by ARM for {err.retry_after:g}s")
        except CloudError as err:
            return LoopReport(now, skipped=f"agent pools unknown: {err}")
        failures = self._back_off(now, ended, pools)
        try:
            view = self.source.observe()
        except NotSynced as err:
            return LoopReport(
                now, failures=tuple(failures), skipped=f"cluster view not synced: {err}"
            )

        # A pool with a scale-up in flight counts its target: those nodes are coming.
        effective = {
            name: replace(p, count=max(p.count, self.inflight[name].target))
            if name in self.inflight and self.inflight[name].kind == SCALE
            else p
            for name, p in pools.items()
        }
        registered = _registered(view)
        actions = self._provision_timeouts(now, effective, registered)
        pool_list = tuple(effective[n] for n in sorted(effective))
        options, warnings = build_options(
            self.config.region, pool_list, view.nodes, self.catalog, self.config.managed_pools
        )
        plan, decision = ScaleUpPlan((), ()), 0.0
        # Nothing pending (what most passes of a steady cluster see): the plan would be empty
        # by definition, and is not computed.
        if any(pod.node_name is None for pod in view.pods):
            state = ClusterState(
                region=self.config.region,
                pools=pool_list,
                options=options,
                nodes=view.nodes,
                pods=view.pods,
                backoffs=self.backoffs.active(now),
                limits=self.config.limits,
                policy=self.config.policy,
                now=now,
            )
            started = self.timer()
            plan = plan_scale_up(state)
            decision = self.timer() - started
            actions += self._act(now, plan)
            self._record(plan, view)
        down = self.scale_down.run(now, view, effective, options, plan, self.config.region)
        actions += _deletions(down, effective)
        return LoopReport(
            now, plan, tuple(actions), tuple(failures), None, decision, warnings, down
        )

    # -- act -------------------------------------------------------------------------------

    def _act(self, now: datetime, plan: ScaleUpPlan) -> list[ScaleAction]:
        actions: list[ScaleAction] = []
        for target in plan.pool_targets:
            if target.delta <= 0:
                continue
            if self.config.dry_run:
                actions.append(ScaleAction(target.pool, target.current, target.target, "dry-run"))
                continue
            if target.pool in self.inflight:
                actions.append(
                    ScaleAction(
                        target.pool,
                        target.current,
                        target.target,
                        "conflict",
                        "operation in flight",
                    )
                )
                continue
            actions.append(self._scale(now, target.pool, target.current, target.target))
        return actions

    def _scale(self, now: datetime, pool: str, current: int, target: int) -> ScaleAction:
        if self.hold_until is not None and now < self.hold_until:
            return ScaleAction(pool, current, target, "throttled", "holding after 429")
        try:
            op = self.cloud.scale(pool, target)
        except Throttled as err:
            self.hold_until = now + timedelta(seconds=err.retry_after)
            return ScaleAction(pool, current, target, "throttled", str(err))
        except Conflict as err:
            # 409: another operation runs; 412: the pool changed under us. Either way our view
            # of the pools is out of date: re-read it before planning again.
            self._pools.read_at = None
            return ScaleAction(pool, current, target, "conflict", str(err))
        except CloudError as err:
            known = self._pools.pools.get(pool)
            if known is not None:
                self.backoffs.record(
                    known.vm_size,
                    self._zone(known),
                    known.priority,
                    err.code,
                    now,
                    message=err.message,
                )
            return ScaleAction(pool, current, target, "error", str(err))
        op = replace(op, before=current)  # stored with it: a resumed failure still knows
        self.inflight[pool] = op
        if self.store is not None:
            self.store.save(op)
        if target > current:
            self.requested[pool] = now
            self.scale_down.note_scale_up(now)
        return ScaleAction(pool, current, target, "started")

    def _provision_timeouts(
        self, now: datetime, pools: Mapping[str, AgentPool], registered: Mapping[str, int]
    ) -> list[ScaleAction]:
        """Back off pools whose requested nodes did not register in time; scale them back."""
        actions: list[ScaleAction] = []
        for name, since in sorted(self.requested.items()):
            pool = pools.get(name)
            have = registered.get(name, 0)
            if pool is None or have >= pool.count:
                del self.requested[name]
                continue
            if now - since < self.config.max_node_provision_time or name in self.inflight:
                continue
            self.backoffs.record(
                pool.vm_size, self._zone(pool), pool.priority, "ProvisionTimeout", now
            )
            del self.requested[name]
            if not self.config.dry_run:
                action = self._scale(now, name, pool.count, have)
                actions.append(
                    replace(action, result="scale-back") if action.result == "started" else action
                )
        return actions

    # -- record ----------------------------------------------------------------------------

    def _record(self, plan: ScaleUpPlan, view: Observation) -> None:
        """One event per group, on its first pending pod, only when the message changes."""
        pending = {p.key: p for p in view.pods if p.node_name is None}
        for outcome in plan.groups:
            if outcome.on_new:
                pools = ", ".join(f"{pool} ({k} pods)" for pool, k in outcome.on_new)
                reason, message = "TriggeredScaleUp", f"pod triggered scale-up: {pools}"
            elif outcome.unplaced:
                reason = "NotTriggerScaleUp"
                message = f"pod didn't trigger scale-up: {outcome.reason}"
            else:
                continue
            if self._said.get(outcome.group) == message:
                continue
            self._said[outcome.group] = message
            pod = pending.get(outcome.first_pod)
            if pod is not None:
                self.source.record_event(pod, reason, message)


def _deletions(down: ScaleDownReport, pools: Mapping[str, AgentPool]) -> list[ScaleAction]:
    """One action per pool whose nodes scale-down asked AKS to delete this pass."""
    by_pool: dict[str, list[str]] = {}
    for pool, name in down.deleting:
        by_pool.setdefault(pool, []).append(name)
    actions = []
    for pool, names in sorted(by_pool.items()):
        current = pools[pool].count if pool in pools else len(names)
        detail = "delete-machines " + ", ".join(names)
        actions.append(ScaleAction(pool, current, current - len(names), "started", detail))
    return actions


def _registered(view: Observation) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in view.nodes:
        if node.pool is not None:
            counts[node.pool] = counts.get(node.pool, 0) + 1
    return counts
