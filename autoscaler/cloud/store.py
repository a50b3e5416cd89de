"""Where in-flight operations are kept so that a restarted loop resumes instead of repeating.

Callers: ``control.loop.Reconciler`` loads every stored operation when it is built, saves an
operation when it starts one and deletes it when it ends. Implementations: ``MemoryStore``
(tests, the simulator), ``JsonFileStore`` (a file on a volume; one writer). The status-ConfigMap
store of the in-cluster runner implements the same protocol with ``operation_to_json`` /
``operation_from_json``. At most one operation per pool is stored, matching the loop's rule of
one operation in flight per pool.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from autoscaler.cloud.provider import Operation
from autoscaler.model.errors import ValidationError


class OperationStore(Protocol):
    def save(self, op: Operation) -> None:
        """Keep ``op`` as its pool's operation in flight (replacing an older one)."""
        ...

    def load(self) -> dict[str, Operation]:
        """Every stored operation, by pool."""
        ...

    def delete(self, pool: str) -> None:
        """Forget the pool's operation; nothing happens when there is none."""
        ...


def operation_to_json(op: Operation) -> dict[str, object]:
    return {
        "pool": op.pool,
        "kind": op.kind,
        "target": op.target,
        "token": op.token,
        "started": op.started.isoformat(),
        **({"machines": list(op.machines)} if op.machines else {}),
        **({"before": op.before} if op.before is not None else {}),
    }


def operation_from_json(value: object, path: str) -> Operation:
    """The operation written by ``operation_to_json``; ValidationError names ``path``."""
    if not isinstance(value, Mapping):
        raise ValidationError(path, "expected an object")
    try:
        started = datetime.fromisoformat(str(value["started"]))
        target = value["target"]
        if not isinstance(target, int) or isinstance(target, bool):
            raise ValidationError(f"{path}.target", "expected an integer")
        fields = {k: value[k] for k in ("pool", "kind", "token")}
    except KeyError as err:
        raise ValidationError(path, f"missing field {err.args[0]!r}") from None
    except ValueError as err:
        if isinstance(err, ValidationError):
            raise
        raise ValidationError(f"{path}.started", f"not an ISO 8601 time: {err}") from None
    for key, field in fields.items():
        if not isinstance(field, str) or not field:
            raise ValidationError(f"{path}.{key}", "expected a non-empty string")
    if started.tzinfo is None:
        raise ValidationError(f"{path}.started", "needs a time zone")
    machines = value.get("machines", [])  # absent in what older versions stored
    if not isinstance(machines, list) or not all(isinstance(m, str) and m for m in machines):
        raise ValidationError(f"{path}.machines", "expected a list of node names")
    before = value.get("before")  # absent in what older versions stored
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)
                               or before < 0):
        raise ValidationError(f"{path}.before", "expected a non-negative integer")
    return Operation(
        str(fields["pool"]), str(fields["kind"]), target, str(fields["token"]), started,
        tuple(machines), before,
    )


class MemoryStore:
    """Operations in a dict; ``saves`` counts writes, for tests."""

    def __init__(self) -> None:
        self.ops: dict[str, Operation] = {}
        self.saves = 0

    def save(self, op: Operation) -> None:
        self.ops[op.pool] = op
        self.saves += 1

    def load(self) -> dict[str, Operation]:
        return dict(self.ops)

    def delete(self, pool: str) -> None:
        self.ops.pop(pool, None)


class JsonFileStore:
    """Operations in one JSON file, rewritten whole through a temporary file and a rename so
    that a crash mid-write leaves the old file, never half of one."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> dict[str, Operation]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValidationError(self.path, f"not JSON: {err}") from None
        ops = data.get("operations") if isinstance(data, dict) else None
        if not isinstance(ops, list):
            raise ValidationError(f"{self.path}$.operations", "expected a list")
        loaded = (
            operation_from_json(item, f"{self.path}$.operations[{i}]")
            for i, item in enumerate(ops)
        )
        return {op.pool: op for op in loaded}

    def save(self, op: Operation) -> None:
        ops = self.load()
        ops[op.pool] = op
        self._write(ops)

    def delete(self, pool: str) -> None:
        ops = self.load()
        if ops.pop(pool, None) is not None:
            self._write(ops)

    def _write(self, ops: Mapping[str, Operation]) -> None:
        body = {"operations": [operation_to_json(ops[name]) for name in sorted(ops)]}
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".ops-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
