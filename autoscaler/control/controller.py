"""One pass of the in-cluster controller: leadership, the reconcile loop, and what it records.

Callers: ``control.runner.Runner`` calls ``Controller.step`` on each batch or tick (``surge
run``), once for ``surge run --once``; adapter tests call it by hand with two replicas.

Per step: a replica that does not lead stands by (drops its loop state: the next leader term
starts from the operation store, which holds what the previous leader had in flight); a new
leader term builds a fresh ``control.loop.Reconciler`` (it loads the store and resumes those
operations); then one ``run_once`` through the guards of ``control.guard``, and the record:
metrics, the ``surge-status`` ConfigMap (``kube.status``), a log line when something happened,
the store flushed, health marked. The Reconciler is used from outside only, as the simulator
uses it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from autoscaler.cloud.provider import SCALE, CloudProvider
from autoscaler.cloud.store import OperationStore
from autoscaler.control.clock import Clock
from autoscaler.control.config import EventConfig
from autoscaler.control.guard import ClusterReader, GuardedCloud, GuardedSource
from autoscaler.control.loop import LoopConfig, LoopReport, Reconciler
from autoscaler.control.metrics import Health, Metrics
from autoscaler.kube.reflector import ApiError
from autoscaler.kube.status import LoopStatus, PoolStatus, Status, StatusConfigMap
from autoscaler.model.aks import Catalog, load_catalog
from autoscaler.model.pool import AgentPool, Priority

log = logging.getLogger(__name__)


class Leadership(Protocol):
    """``kube.lease.LeaderElector`` is one; ``SoleLeader`` when election is off."""

    @property
    def identity(self) -> str: ...

    @property
    def term(self) -> int: ...

    def is_leader(self) -> bool: ...


class SoleLeader:
    """Leadership when leader election is disabled: one replica, always leading."""

    def __init__(self, identity: str = "surge") -> None:
        self.identity = identity
        self.term = 1

    def is_leader(self) -> bool:
        return True


class Controller:
    def __init__(
        self, source: ClusterReader, cloud: CloudProvider, clock: Clock, loop: LoopConfig, *,
        leadership: Leadership | None = None, store: OperationStore | None = None,
        status: StatusConfigMap | None = None, metrics: Metrics | None = None,
        health: Health | None = None, events: EventConfig | None = None,
        min_counts: dict[str, int] | None = None, catalog: Catalog | None = None,
        timer: Callable[[], float] = time.perf_counter,
        monotonic: Callable[[], float] = time.monotonic, status_every: float = 10.0,
    ) -> None:
        self.leadership = leadership or SoleLeader()
        self.metrics = metrics or Metrics()
        self.health = health or Health(10.0, 6, monotonic)
        leading = self.leadership.is_leader
        self.source = GuardedSource(source, leading, self.metrics, events or EventConfig(),
                                    monotonic)
        self.cloud = GuardedCloud(cloud, leading, self.metrics, min_counts)
        if loop.scale_down.enabled and not self.source.can_drain:
            log.warning("scale-down disabled: the cluster source cannot cordon and evict")
            loop = replace(loop, scale_down=replace(loop.scale_down, enabled=False))
        self.clock = clock
        self.loop = loop
        self.store = store
        self.status = status
        self.catalog = catalog or load_catalog()
        self.timer = timer
        self.monotonic = monotonic
        self.status_every = status_every
        self.reconciler: Reconciler | None = None
        self.term = 0
        self.last_report: LoopReport | None = None
        self.last_status: Status | None = None
        self._status_key: object = None
        self._status_at: float | None = None
        self._said: tuple[object, ...] = ()

    # -- the step --------------------------------------------------------------------------

    def step(self, trigger: str = "tick") -> LoopReport | None:
        """One pass if leading; None when standing by or when the pass could not run."""
        started = self.timer()
        leading = self.leadership.is_leader()
        self.metrics.leader.set(1 if leading else 0)
        if not leading:
            if self.reconciler is not None:
                log.warning("lost leadership: standing by")
                self.reconciler = None
            self.metrics.passes.inc(trigger=trigger, outcome="standby")
            self.health.passed()
            return None
        reconciler = self._reconciler()
        if reconciler is None:
            self.metrics.passes.inc(trigger=trigger, outcome="error")
            self.health.passed()
            return None
        try:
            report = reconciler.run_once()
        except ApiError as error:  # a store write inside the pass; the next pass retries
            log.warning("reconcile pass interrupted: %s", error)
            self.metrics.passes.inc(trigger=trigger, outcome="error")
            return None
        duration = self.timer() - started
        self._record(report, trigger, duration, reconciler)
        flush = getattr(self.store, "flush", None)
        if callable(flush):
            flush()
        self.health.passed()
        self.last_report = report
        return report

    def _reconciler(self) -> Reconciler | None:
        term = self.leadership.term
        if self.reconciler is not None and self.term == term:
            return self.reconciler
        try:
            self.reconciler = Reconciler(self.source, self.cloud, self.clock, self.loop,
                                         self.catalog, self.timer, self.store)
        except ApiError as error:
            # Acting without knowing what the last leader left in flight could double it.
            self.metrics.api_errors.inc(api="kubernetes", operation="operations")
            log.warning("cannot read the operations in flight, not acting: %s", error)
            self.reconciler = None
            return None
        self.term = term
        inflight = sorted(self.reconciler.inflight)
        log.info("leading (term %d): resuming %d operations in flight%s", term, len(inflight),
                 f" ({', '.join(inflight)})" if inflight else "",
                 extra={"fields": {"term": term, "resumed": inflight}})
        return self.reconciler

    # -- record ----------------------------------------------------------------------------

    def _record(self, report: LoopReport, trigger: str, duration: float,
                reconciler: Reconciler) -> None:
        m = self.metrics
        view = self.source.last
        pending = sum(1 for p in view.pods if p.node_name is None) if view is not None else 0
        m.loop_duration.observe(duration)
        if report.decision_seconds > 0:
            m.decision_duration.observe(report.decision_seconds)
        m.pending_pods.set(pending)
        plan = report.plan
        m.planned_nodes.replace(
            ({"pool": t.pool}, t.delta) for t in (plan.pool_targets if plan else ()) if t.delta > 0
        )
        m.unplaced_pods.set(sum(g.unplaced for g in plan.groups) if plan else 0)
        for action in report.actions:
            m.scale_operations.inc(pool=action.pool, result=action.result)
        down = report.scale_down
        for outcome, nodes in (("uncordoned", down.uncordoned if down else ()),
                               ("unmarked", down.unmarked if down else ())):
            if nodes:
                m.recovered.inc(len(nodes), action=outcome)
        m.inflight.set(len(reconciler.inflight))
        self._record_fleet(reconciler)
        now = self.clock.now()
        active = reconciler.backoffs.active(now)
        m.backoffs.replace(
            ({"vm_size": b.vm_size, "zone": b.zone or "", "priority": b.priority.value,
              "reason": b.reason}, 1) for b in active
        )
        outcome = "skipped" if report.skipped else "acted" if report.actions else "idle"
        m.passes.inc(trigger=trigger, outcome=outcome)
        m.last_pass.set(now.timestamp())
        actions = tuple(_action_text(a.pool, a.current, a.target, a.result, a.detail)
                        for a in report.actions)
        said = (report.skipped, actions, report.failures)
        if said != self._said and (report.skipped or actions or report.failures):
            log.info("pass: %s", report.skipped or "; ".join(actions + report.failures) or "ok",
                     extra={"fields": {"trigger": trigger, "pending": pending,
                                       "actions": list(actions), "failures": list(report.failures),
                                       "skipped": report.skipped, "seconds": round(duration, 4)}})
        self._said = said
        loop_status = LoopStatus(now, trigger, duration, pending, report.skipped, actions,
                                 report.failures, report.warnings)
        health = f"Degraded: {report.skipped}" if report.skipped else "Healthy"
        status = Status(now, self.leadership.identity, health, loop_status,
                        self._pools(reconciler, now))
        self.last_status = status
        self._write_status(status)

    def _record_fleet(self, reconciler: Reconciler) -> None:
        """Nodes and their price per hour, by pool, VM size, priority and zone."""
        view = self.source.last
        pools = {p.name: p for p in self.cloud.pools or ()}
        nodes: dict[tuple[str, str, str, str], int] = {}
        cost: dict[tuple[str, str, str], float] = {}
        for node in view.nodes if view is not None else ():
            pool = pools.get(node.pool or "")
            if pool is None:
                continue
            zone = node.zone or ""
            key = (pool.name, pool.vm_size, pool.priority.value, zone)
            nodes[key] = nodes.get(key, 0) + 1
            vm = reconciler.catalog.get(pool.vm_size)
            price = None
            if vm is not None:
                spot = pool.priority is Priority.SPOT
                price = vm.spot_price_per_hour if spot else vm.price_per_hour
            if price is not None:
                where = (pool.name, pool.priority.value, zone)
                cost[where] = cost.get(where, 0.0) + price
        self.metrics.nodes.replace(
            ({"pool": p, "vm_size": v, "priority": r, "zone": z}, n)
            for (p, v, r, z), n in sorted(nodes.items())
        )
        self.metrics.cost.replace(
            ({"pool": p, "priority": r, "zone": z}, c) for (p, r, z), c in sorted(cost.items())
        )

    def _pools(self, reconciler: Reconciler, now: datetime) -> tuple[PoolStatus, ...]:
        view = self.source.last
        registered: dict[str, int] = {}
        ready: dict[str, int] = {}
        for node in view.nodes if view is not None else ():
            if node.pool is not None:
                registered[node.pool] = registered.get(node.pool, 0) + 1
                ready[node.pool] = ready.get(node.pool, 0) + (1 if node.ready else 0)
        backoffs = reconciler.backoffs.active(now)
        out = []
        for pool in self.cloud.pools or ():
            op = reconciler.inflight.get(pool.name)
            target = max(pool.count, op.target) if op is not None and op.kind == SCALE \
                else pool.count
            zone = f"{self.loop.region}-{pool.zones[0]}" if len(pool.zones) == 1 else None
            backoff = next((b for b in backoffs if _matches(b.vm_size, b.zone, b.priority.value,
                                                            pool, zone)), None)
            out.append(PoolStatus(
                name=pool.name, vm_size=pool.vm_size, priority=pool.priority.value,
                zones=pool.zones, min=pool.min_count, max=pool.max_count, target=target,
                ready=ready.get(pool.name, 0), registered=registered.get(pool.name, 0),
                upcoming=max(0, target - registered.get(pool.name, 0)),
                backoff=f"{backoff.reason} until {backoff.until:%Y-%m-%dT%H:%M:%SZ}"
                if backoff is not None else None,
                operation=f"{op.kind} to {op.target} since {op.started:%Y-%m-%dT%H:%M:%SZ}"
                if op is not None else None,
            ))
        return tuple(out)

    def _write_status(self, status: Status) -> None:
        """Written when something a reader cares about changed, else every ``status_every``
        seconds: a busy cluster's passes must not become a stream of ConfigMap writes."""
        if self.status is None:
            return
        key = (status.health, status.pools,
               status.last_loop.actions if status.last_loop else (),
               status.last_loop.failures if status.last_loop else ())
        now = self.monotonic()
        due = self._status_at is None or now - self._status_at >= self.status_every
        if key == self._status_key and not due:
            return
        if self.status.write(status):
            self._status_key, self._status_at = key, now


def _matches(vm_size: str, zone: str | None, priority: str, pool: AgentPool,
             pool_zone: str | None) -> bool:
    return (vm_size.lower() == pool.vm_size.lower() and priority == pool.priority.value
            and zone in (None, pool_zone))


def _action_text(pool: str, current: int, target: int, result: str, detail: str) -> str:
    text = f"{pool} {current}->{target} {result}"
    return f"{text} ({detail})" if detail else text
