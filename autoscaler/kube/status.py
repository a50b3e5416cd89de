"""The ``surge-status`` ConfigMap: what the autoscaler is doing, for people and for programs, and
the operations in flight, so that a new leader resumes them instead of starting them again.

Callers: ``control.controller`` fills a ``Status`` after every pass and hands it to
``StatusConfigMap.write``; ``control.serve`` builds a ``ConfigMapStore`` as the loop's
``OperationStore`` (``control.loop.Reconciler`` loads, saves and deletes through it). Adapter
tests read the ConfigMap back from the Kubernetes twin.

One ConfigMap, three keys, each written alone with a merge patch so that writers of different
keys never overwrite each other: ``status`` (a text report, ``kubectl describe``-style),
``status.json`` (the same as JSON) and ``operations.json`` (the store). A failed status write is
logged and counted, never raised: the next pass writes a newer status anyway. A failed store
write is retried by ``flush`` (the controller calls it after every pass); until then this
process still tracks the operation in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kubernetes import client as k8s

from autoscaler.cloud.provider import Operation
from autoscaler.cloud.store import operation_from_json, operation_to_json
from autoscaler.kube.client import NOT_FOUND, json_call, json_or_none
from autoscaler.kube.reflector import ApiError, Json

log = logging.getLogger(__name__)
STATUS_KEY = "status"
STATUS_JSON_KEY = "status.json"
OPERATIONS_KEY = "operations.json"


class ConfigMapApi(Protocol):
    def get(self, namespace: str, name: str) -> Json | None:
        """The ConfigMap, or None when there is none."""
        ...

    def create(self, namespace: str, body: Json) -> Json: ...

    def patch(self, namespace: str, name: str, body: Json) -> Json:
        """A merge patch (404 when there is no such ConfigMap)."""
        ...


class KubeConfigMapApi:
    """``ConfigMapApi`` over the official client."""

    def __init__(self, api: k8s.ApiClient, request_timeout: float = 10.0) -> None:
        self.core = k8s.CoreV1Api(api)
        self.timeout = request_timeout

    def get(self, namespace: str, name: str) -> Json | None:
        return json_or_none(lambda: self.core.read_namespaced_config_map(
            name, namespace, _preload_content=False, _request_timeout=self.timeout))

    def create(self, namespace: str, body: Json) -> Json:
        raw: Any = body  # the client sends a dict as it is
        return json_call(lambda: self.core.create_namespaced_config_map(
            namespace, raw, _preload_content=False, _request_timeout=self.timeout))

    def patch(self, namespace: str, name: str, body: Json) -> Json:
        return json_call(lambda: self.core.patch_namespaced_config_map(
            name, namespace, body, _preload_content=False, _request_timeout=self.timeout))


def put_keys(api: ConfigMapApi, namespace: str, name: str, data: Mapping[str, str]) -> None:
    """Set ``data`` keys of the ConfigMap, creating it when missing; raises ``ApiError``."""
    try:
        api.patch(namespace, name, {"data": dict(data)})
        return
    except ApiError as error:
        if error.status != NOT_FOUND:
            raise
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/name": "surge"}},
            "data": dict(data)}
    try:
        api.create(namespace, body)
    except ApiError as error:
        if error.status != 409:  # created meanwhile (by the status writer): patch it
            raise
        api.patch(namespace, name, {"data": dict(data)})


# --- the operation store ----------------------------------------------------------------------


class _Keys:
    """Keys of one ConfigMap written with ``put_keys``: a write that fails is logged, handed to
    ``on_error`` and reported as False, never raised (both writers below)."""

    def __init__(self, api: ConfigMapApi, namespace: str, name: str = "surge-status",
                 on_error: Callable[[ApiError], None] | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.on_error = on_error

    def _put(self, data: Mapping[str, str], failed: str) -> bool:
        try:
            put_keys(self.api, self.namespace, self.name, data)
        except ApiError as error:
            log.warning("%s: %s", failed, error)
            if self.on_error is not None:
                self.on_error(error)
            return False
        return True


class ConfigMapStore(_Keys):
    """An ``OperationStore`` in the ``operations.json`` key of a ConfigMap."""

    def __init__(self, api: ConfigMapApi, namespace: str, name: str = "surge-status",
                 on_error: Callable[[ApiError], None] | None = None) -> None:
        super().__init__(api, namespace, name, on_error)
        self.ops: dict[str, Operation] = {}
        self.dirty = False  # memory has changes the ConfigMap does not have yet

    def load(self) -> dict[str, Operation]:
        """Reads the ConfigMap (raises ``ApiError``: a leader must not start without knowing
        what is in flight); a key it cannot read is logged and read as empty."""
        cm = self.api.get(self.namespace, self.name)
        text = ((cm or {}).get("data") or {}).get(OPERATIONS_KEY)
        ops: dict[str, Operation] = {}
        if text:
            where = f"configmap {self.namespace}/{self.name} {OPERATIONS_KEY}"
            try:
                items = json.loads(text).get("operations") or []
                ops = {op.pool: op for op in (
                    operation_from_json(item, f"{where}$.operations[{i}]")
                    for i, item in enumerate(items))}
            except (ValueError, AttributeError) as error:
                log.error("%s unreadable, ignored: %s", where, error)
        self.ops, self.dirty = ops, False
        return dict(ops)

    def save(self, op: Operation) -> None:
        self.ops[op.pool] = op
        self.dirty = True
        self.flush()

    def delete(self, pool: str) -> None:
        if self.ops.pop(pool, None) is not None:
            self.dirty = True
            self.flush()

    def flush(self) -> bool:
        """Write the operations if memory changed since the last write; False if it failed."""
        if not self.dirty:
            return True
        body = {"operations": [operation_to_json(self.ops[p]) for p in sorted(self.ops)]}
        data = {OPERATIONS_KEY: json.dumps(body, indent=1, sort_keys=True)}
        if not self._put(data, f"operations not saved to configmap {self.name} "
                               "(retried after the pass)"):
            return False
        self.dirty = False
        return True


# --- the status -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolStatus:
    name: str
    vm_size: str
    priority: str
    zones: tuple[str, ...]
    min: int
    max: int
    target: int  # the count asked of AKS (an operation in flight counts its target)
    ready: int  # registered nodes that are Ready
    registered: int  # nodes of the pool known to Kubernetes
    upcoming: int  # requested, not registered yet
    backoff: str | None = None  # "<reason> until <time>" when the pool's option is backed off
    operation: str | None = None  # "<kind> to <target> since <time>" when one is in flight


@dataclass(frozen=True, slots=True)
class LoopStatus:
    at: datetime
    trigger: str
    duration_seconds: float
    pending_pods: int
    skipped: str | None = None
    actions: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    updated: datetime
    leader: str
    health: str  # "Healthy", or "Degraded: <why>"
    last_loop: LoopStatus | None
    pools: tuple[PoolStatus, ...] = field(default=())


def status_json(status: Status) -> str:
    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    return json.dumps(convert(asdict(status)), indent=1, sort_keys=True)


def status_text(status: Status) -> str:
    """The report a person reads with ``kubectl get cm surge-status -o yaml``."""
    stamp = "%Y-%m-%d %H:%M:%S %Z"
    lines = [
        f"Surge autoscaler status at {status.updated.strftime(stamp)}",
        f"Leader:  {status.leader}",
        f"Health:  {status.health}",
    ]
    loop = status.last_loop
    if loop is not None:
        lines.append(f"Last loop: {loop.at.strftime(stamp)} ({loop.trigger}, "
                     f"{loop.duration_seconds:.3f}s), {loop.pending_pods} pending pods")
        if loop.skipped:
            lines.append(f"  skipped: {loop.skipped}")
        lines += [f"  action: {a}" for a in loop.actions]
        lines += [f"  failed: {f}" for f in loop.failures]
        lines += [f"  warning: {w}" for w in loop.warnings]
    lines.append("")
    lines.append(f"{'POOL':<13}{'VM SIZE':<22}{'PRIORITY':<9}{'MIN':>4}{'MAX':>6}{'TARGET':>7}"
                 f"{'READY':>6}{'UPCOMING':>9}  BACKOFF / OPERATION")
    for pool in status.pools:
        notes = "; ".join(n for n in (pool.backoff, pool.operation) if n) or "-"
        lines.append(f"{pool.name:<13}{pool.vm_size:<22}{pool.priority:<9}{pool.min:>4}"
                     f"{pool.max:>6}{pool.target:>7}{pool.ready:>6}{pool.upcoming:>9}  {notes}")
    return "\n".join(lines) + "\n"


class StatusConfigMap(_Keys):
    """Writes ``status`` and ``status.json``; ``failures`` counts writes that did not land."""

    def __init__(self, api: ConfigMapApi, namespace: str, name: str = "surge-status",
                 on_error: Callable[[ApiError], None] | None = None) -> None:
        super().__init__(api, namespace, name, on_error)
        self.failures = 0

    def write(self, status: Status) -> bool:
        data = {STATUS_KEY: status_text(status), STATUS_JSON_KEY: status_json(status)}
        if not self._put(data, f"status configmap {self.name} not written"):
            self.failures += 1
            return False
        return True
