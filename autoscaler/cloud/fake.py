"""A CloudProvider for tests that records every call and answers from a script.

Callers: unit tests of ``control.loop``. Operations succeed at once unless a failure code is
queued for the pool; ``calls`` lists ``(method, args)`` in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from autoscaler.cloud.provider import (
    DELETE_MACHINES,
    SCALE,
    CloudError,
    Operation,
    OperationState,
    OperationStatus,
)
from autoscaler.model.pool import AgentPool


class FakeCloud:
    def __init__(self, pools: Sequence[AgentPool], now: datetime) -> None:
        self.pools = {p.name: p for p in pools}
        self.now = now
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.failures: dict[str, list[str]] = {}  # pool -> error codes for its next operations
        self.refuse: dict[str, CloudError] = {}  # pool -> error raised when an op is started
        self.pending: set[str] = set()  # tokens reported InProgress until completed
        self._results: dict[str, OperationStatus] = {}
        self._seq = 0

    def list_pools(self) -> tuple[AgentPool, ...]:
        self.calls.append(("list_pools", ()))
        return tuple(self.pools[name] for name in sorted(self.pools))

    def _start(
        self, pool: str, kind: str, target: int, machines: tuple[str, ...] = ()
    ) -> Operation:
        if pool in self.refuse:
            raise self.refuse.pop(pool)
        self._seq += 1
        op = Operation(pool, kind, target, f"op-{self._seq}", self.now, machines)
        codes = self.failures.get(pool)
        if codes:
            self._results[op.token] = OperationStatus(OperationState.FAILED, codes.pop(0), "")
        else:
            self.pools[pool] = replace(self.pools[pool], count=target)
            self._results[op.token] = OperationStatus(OperationState.SUCCEEDED)
        return op

    def scale(self, pool: str, count: int) -> Operation:
        self.calls.append((SCALE, (pool, count)))
        return self._start(pool, SCALE, count)

    def delete_machines(self, pool: str, machines: Sequence[str]) -> Operation:
        self.calls.append(("delete_machines", (pool, tuple(machines))))
        return self._start(pool, DELETE_MACHINES, self.pools[pool].count - len(machines),
                           tuple(machines))

    def finish(self, token: str, code: str | None = None) -> None:
        """End an operation (one started by an earlier process too): failed with ``code``,
        else succeeded."""
        self.pending.discard(token)
        state = OperationState.FAILED if code else OperationState.SUCCEEDED
        self._results[token] = OperationStatus(state, code, "")

    def operation(self, op: Operation) -> OperationStatus:
        self.calls.append(("operation", (op.token,)))
        if op.token in self.pending:
            return OperationStatus(OperationState.IN_PROGRESS)
        return self._results[op.token]
