"""What the reconcile loop reads and writes, wrapped: only the leader writes, every call is
counted, events are deduplicated and rate-limited, and the last view is kept for the status.

Callers: ``control.controller.Controller`` wraps the cluster cache in ``GuardedSource`` and the
AKS provider in ``GuardedCloud`` and hands the wrappers to ``control.loop.Reconciler``, which
sees the usual ``ClusterSource`` and ``CloudProvider``. The loop itself stays as the simulator
runs it; leadership, metrics and event hygiene are the in-cluster runner's concerns.

Leadership is asked at each write, not once per pass: a replica whose lease lapses mid-pass
stops writing at once. A refused write raises ``NotLeader``, a ``Conflict`` (the loop treats it
as "try again on a later pass", with no backoff), and cordons raise it too (scale-down reports
the node and moves on). Evictions answer ``ERROR``, as their protocol never raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from autoscaler.cloud.provider import (
    CloudError,
    CloudProvider,
    Conflict,
    Operation,
    OperationState,
    OperationStatus,
)
from autoscaler.control.config import EventConfig
from autoscaler.control.metrics import Metrics
from autoscaler.kube.source import EvictionResult, Observation
from autoscaler.model.pod import Pod
from autoscaler.model.pool import AgentPool, PoolMode

log = logging.getLogger(__name__)
SENT, DEDUPLICATED, RATE_LIMITED, NOT_SENT = "sent", "deduplicated", "rate-limited", "not-leader"
DEDUP_KEYS_LIMIT = 100_000  # past this many remembered events, forget the expired ones


class NotLeader(Conflict):
    """This replica does not hold the lease (any more): it must not write."""

    def __init__(self, what: str) -> None:
        super().__init__("NotLeader", f"not the leader: {what} not sent")


class ClusterReader(Protocol):
    """What the controller needs of a cluster source at least (``kube.cache.ClusterCache``);
    ``cordon`` and ``evict`` are used when the source has them."""

    def observe(self) -> Observation: ...

    def record_event(self, pod: Pod, reason: str, message: str) -> None: ...


class EventGate:
    """Deduplication per (pod, reason, message) within a window, and a token bucket."""

    def __init__(self, config: EventConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.sent: dict[tuple[str, str, str], float] = {}
        self.tokens = float(config.burst)
        self.filled_at = clock()

    def admit(self, pod: str, reason: str, message: str) -> str:
        now = self.clock()
        key = (pod, reason, message)
        last = self.sent.get(key)
        if last is not None and now - last < self.config.dedup_window:
            return DEDUPLICATED
        self.tokens = min(float(self.config.burst),
                          self.tokens + (now - self.filled_at) * self.config.per_second)
        self.filled_at = now
        if self.tokens < 1.0:
            return RATE_LIMITED
        self.tokens -= 1.0
        if len(self.sent) >= DEDUP_KEYS_LIMIT:
            window = self.config.dedup_window
            self.sent = {k: t for k, t in self.sent.items() if now - t < window}
        self.sent[key] = now
        return SENT


class GuardedSource:
    """A ``ClusterSource`` over a cluster reader, for the leader's loop."""

    def __init__(self, inner: ClusterReader, leading: Callable[[], bool], metrics: Metrics,
                 events: EventConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.leading = leading
        self.metrics = metrics
        self.gate = EventGate(events, clock)
        self.last: Observation | None = None

    @property
    def can_drain(self) -> bool:
        """Whether the source can cordon and evict (scale-down needs both)."""
        return hasattr(self.inner, "cordon") and hasattr(self.inner, "evict")

    def observe(self) -> Observation:
        self.last = self.inner.observe()
        return self.last

    def record_event(self, pod: Pod, reason: str, message: str) -> None:
        outcome = self.gate.admit(pod.key, reason, message) if self.leading() else NOT_SENT
        self.metrics.events.inc(reason=reason, outcome=outcome)
        if outcome != SENT:
            return
        failed = getattr(self.inner, "events_failed", 0)
        self.inner.record_event(pod, reason, message)
        if getattr(self.inner, "events_failed", 0) > failed:
            self.metrics.api_errors.inc(api="kubernetes", operation="events")

    def cordon(self, node: str, unschedulable: bool) -> None:
        if not self.leading():
            raise NotLeader(f"cordon of {node}")
        cordon: Callable[[str, bool], None] = getattr(self.inner, "cordon")  # noqa: B009
        try:
            cordon(node, unschedulable)
        except Exception:
            self.metrics.api_errors.inc(api="kubernetes", operation="cordon")
            raise

    def evict(self, pod: Pod, grace_seconds: int | None) -> EvictionResult:
        if not self.leading():
            return EvictionResult.ERROR
        evict: Callable[[Pod, int | None], EvictionResult] = getattr(self.inner, "evict")  # noqa: B009
        answer = evict(pod, grace_seconds)
        if answer is EvictionResult.ERROR:
            self.metrics.api_errors.inc(api="kubernetes", operation="evict")
        return answer


class GuardedCloud:
    """A ``CloudProvider`` that writes only while leading, counts errors and outcomes, applies
    the configured pool minimums, and keeps the last pool list (for the status)."""

    def __init__(self, inner: CloudProvider, leading: Callable[[], bool], metrics: Metrics,
                 min_counts: Mapping[str, int] | None = None) -> None:
        self.inner = inner
        self.leading = leading
        self.metrics = metrics
        self.min_counts = dict(min_counts or {})
        self.pools: tuple[AgentPool, ...] | None = None

    def _failed(self, operation: str) -> None:
        self.metrics.api_errors.inc(api="arm", operation=operation)

    def list_pools(self) -> tuple[AgentPool, ...]:
        try:
            pools = self.inner.list_pools()
        except CloudError:
            self._failed("list_pools")
            raise
        # The file's minimum wins over the pool's tag, as its maximum does (AksSettings); a
        # System pool keeps one node whatever is configured.
        pools = tuple(
            replace(p, min_count=max(self.min_counts[p.name], int(p.mode is PoolMode.SYSTEM)))
            if p.name in self.min_counts else p
            for p in pools
        )
        self.pools = pools
        return pools

    def scale(self, pool: str, count: int) -> Operation:
        if not self.leading():
            raise NotLeader(f"scale of {pool} to {count}")
        try:
            return self.inner.scale(pool, count)
        except CloudError:
            self._failed("scale")
            raise

    def delete_machines(self, pool: str, machines: Sequence[str]) -> Operation:
        if not self.leading():
            raise NotLeader(f"deletion of {len(machines)} machines of {pool}")
        try:
            return self.inner.delete_machines(pool, machines)
        except CloudError:
            self._failed("delete_machines")
            raise

    def operation(self, op: Operation) -> OperationStatus:
        try:
            status = self.inner.operation(op)
        except CloudError:
            self._failed("poll")
            raise
        if status.state is not OperationState.IN_PROGRESS:
            result = "succeeded" if status.state is OperationState.SUCCEEDED else "failed"
            self.metrics.scale_operations.inc(pool=op.pool, result=result)
            log.info("%s of %s to %d %s%s", op.kind, op.pool, op.target, result,
                     f": {status.error_code} {status.message}" if status.error_code else "",
                     extra={"fields": {"pool": op.pool, "kind": op.kind, "target": op.target,
                                       "result": result, "code": status.error_code}})
        return status
