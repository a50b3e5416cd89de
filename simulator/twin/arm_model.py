"""The state behind the ARM twin: one cluster's agent pools, their operations and the faults.

Callers: ``simulator.twin.arm`` (its HTTP handler calls the ``handle_*`` methods) and tests,
which set the scene (``add_pool``), inject faults (``fail_next``, ``fail_operation``, ``touch``)
and end operations when they choose (``complete_operations``), so no test waits on a clock.

An in-memory model rather than SimCloud: the twin must keep what ARM keeps and SimCloud does
not (the pool's JSON as sent, eTags, tags, machine names, operation records) and tests need to
end operations on demand. AKS semantics kept: one operation per pool at a time (409
OperationNotAllowed), If-Match against the pool's eTag (412), the pool's count is the goal as
soon as a PUT is accepted, failures are decided when the operation ends and partial success
leaves the count that was reached. Thread-safe: one lock around every change.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Properties ARM computes: a PUT may carry them (the SDK drops read-only ones) but never sets them.
_READ_ONLY = frozenset(
    {"eTag", "provisioningState", "currentOrchestratorVersion", "powerState", "nodeImageVersion"}
)
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class ArmFault(Exception):
    """An ARM error answer: HTTP ``status`` with ``{"error": {"code", "message"}}``."""

    def __init__(
        self, status: int, code: str, message: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message or code
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class AsyncFault:
    code: str
    message: str = ""
    achieved: int | None = None  # the count reached before failing (partial success); None: none


@dataclass(slots=True)
class TwinOperation:
    id: str
    pool: str
    kind: str  # "scale" | "delete-machines"
    before: int
    target: int
    machines: tuple[str, ...]
    started: datetime
    status: str = "InProgress"
    error: dict[str, str] | None = None
    polls: int = 0

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.id,
            "status": self.status,
            "startTime": self.started.isoformat(),
        }
        if self.error is not None:
            body["error"] = dict(self.error)
        return body


@dataclass(slots=True)
class _SyncFault:
    route: str
    pool: str | None
    fault: ArmFault
    times: int


@dataclass(slots=True)
class ArmModel:
    subscription: str = "00000000-0000-0000-0000-000000000001"
    resource_group: str = "rg-surge"
    cluster: str = "aks-surge"
    region: str = "eastus"
    tenant: str = "00000000-0000-0000-0000-0000000000aa"
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    machines: dict[str, list[str]] = field(default_factory=dict)
    operations: dict[str, TwinOperation] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # client id -> client secret
    assertions: dict[str, str] = field(default_factory=dict)  # client id -> federated token
    tokens: set[str] = field(default_factory=set)
    prices: list[dict[str, Any]] = field(default_factory=list)  # Retail Prices API items
    price_page_size: int = 100
    complete_after_polls: int | None = None  # end an operation on its n-th status poll
    if_matches: list[str | None] = field(default_factory=list)  # If-Match of each PUT, in order
    grants: list[str] = field(default_factory=list)  # "client_secret" / "client_assertion"
    _sync: list[_SyncFault] = field(default_factory=list)
    _async: dict[str, list[AsyncFault]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _next: dict[str, int] = field(default_factory=dict)  # pool -> next machine index

    # -- scene ---------------------------------------------------------------------------

    def pool_id(self, name: str) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.cluster}"
            f"/agentPools/{name}"
        )

    def add_pool(
        self,
        name: str,
        vm_size: str = "Standard_D4s_v5",
        count: int = 0,
        *,
        zones: Sequence[str] = (),
        spot: bool = False,
        mode: str = "User",
        tags: Mapping[str, str] | None = None,
        **properties: Any,
    ) -> dict[str, Any]:
        """A pool as ARM would return it; ``properties`` are extra ARM properties (camelCase)."""
        props: dict[str, Any] = {
            "count": count,
            "vmSize": vm_size,
            "osDiskSizeGB": 128,
            "maxPods": 30,
            "osType": "Linux",
            "type": "VirtualMachineScaleSets",
            "mode": mode,
            "orchestratorVersion": "1.30.6",
            "currentOrchestratorVersion": "1.30.6",
            "enableAutoScaling": False,
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "tags": dict(tags if tags is not None else {"surge.io/managed": "true"}),
        }
        if zones:
            props["availabilityZones"] = list(zones)
        if spot:
            props.update(
                scaleSetPriority="Spot", scaleSetEvictionPolicy="Delete", spotMaxPrice=-1
            )
        props.update(properties)
        with self._lock:
            self.pools[name] = {
                "id": self.pool_id(name),
                "name": name,
                "type": "Microsoft.ContainerService/managedClusters/agentPools",
                "properties": props,
            }
            self._next[name] = 0
            self.machines[name] = [self._new_machine(name) for _ in range(count)]
            self._new_etag(name)
            return self.pools[name]

    def fail_next(
        self,
        route: str,
        status: int,
        code: str,
        message: str = "",
        *,
        pool: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests on ``route`` (e.g. "PUT agentPool"; for ``pool`` only
        when given) answer ``status`` with ARM error ``code`` instead of being served."""
        with self._lock:
            self._sync.append(
                _SyncFault(route, pool, ArmFault(status, code, message, retry_after), times)
            )

    def fail_operation(
        self, pool: str, code: str, message: str = "", achieved: int | None = None
    ) -> None:
        """The pool's next operation ends Failed with ``code`` (asynchronous failure); code
        "Canceled" ends it Canceled, with no error object, as an aborted operation does."""
        with self._lock:
            self._async.setdefault(pool, []).append(AsyncFault(code, message, achieved))

    def touch(self, pool: str) -> str:
        """Someone else changed the pool: a new eTag, so a PUT with the old one gets 412."""
        with self._lock:
            return self._new_etag(pool)

    def complete_operations(self, pool: str | None = None) -> list[str]:
        """End every operation in progress (of ``pool`` only, when given); returns their ids."""
        with self._lock:
            ended = [
                op for op in self.operations.values()
                if op.status == "InProgress" and (pool is None or op.pool == pool)
            ]
            for op in ended:
                self._end(op)
            return [op.id for op in ended]

    def in_progress(self) -> list[TwinOperation]:
        with self._lock:
            return [op for op in self.operations.values() if op.status == "InProgress"]

    def count(self, pool: str) -> int:
        with self._lock:
            return int(self.pools[pool]["properties"]["count"])

    # -- requests ------------------------------------------------------------------------

    def check_faults(self, route: str, pool: str | None) -> None:
        with self._lock:
            for entry in self._sync:
                if entry.route == route and entry.pool in (None, pool):
                    entry.times -= 1
                    if entry.times <= 0:
                        self._sync.remove(entry)
                    raise entry.fault

    def list_pools(self) -> dict[str, Any]:
        with self._lock:
            return {"value": [self._copy(self.pools[name]) for name in sorted(self.pools)]}

    def get_pool(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._copy(self._pool(name))

    def put_pool(self, name: str, body: Mapping[str, Any], if_match: str | None) -> TwinOperation:
        with self._lock:
            self.if_matches.append(if_match)
            pool = self._pool(name)
            props = pool["properties"]
            if if_match is not None and if_match not in ("*", props["eTag"]):
                raise ArmFault(
                    412, "PreconditionFailed",
                    f"If-Match {if_match} does not match the agent pool's eTag {props['eTag']}",
                )
            self._refuse_if_busy(name)
            sent = body.get("properties")
            if not isinstance(sent, Mapping):
                raise ArmFault(400, "InvalidParameter", "properties are required")
            count = sent.get("count", props["count"])
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 1000:
                raise ArmFault(400, "InvalidParameter", f"count {count!r} is not in 0..1000")
            if sent.get("enableAutoScaling") and count != props["count"]:
                raise ArmFault(
                    400, "InvalidParameter",
                    "cannot change the node count of a pool with autoscaling enabled",
                )
            before = int(props["count"])
            props.update({k: v for k, v in sent.items() if k not in _READ_ONLY})
            props["provisioningState"] = "Scaling" if count != before else "Updating"
            return self._start(name, "scale", before, count, ())

    def delete_machines(self, name: str, body: Mapping[str, Any]) -> TwinOperation:
        with self._lock:
            pool = self._pool(name)
            self._refuse_if_busy(name)
            names = body.get("machineNames")
            if not isinstance(names, list) or not names:
                raise ArmFault(400, "InvalidParameter", "machineNames must be a non-empty list")
            unknown = sorted(set(map(str, names)) - set(self.machines[name]))
            if unknown:
                raise ArmFault(
                    400, "InvalidParameter", f"machines not in pool {name}: {', '.join(unknown)}"
                )
            before = int(pool["properties"]["count"])
            pool["properties"]["provisioningState"] = "Scaling"
            return self._start(name, "delete-machines", before, before - len(names), tuple(names))

    def operation_status(self, op_id: str) -> dict[str, Any]:
        with self._lock:
            op = self.operations.get(op_id)
            if op is None:
                raise ArmFault(404, "NotFound", f"operation {op_id} not found")
            op.polls += 1
            if (
                op.status == "InProgress"
                and self.complete_after_polls is not None
                and op.polls >= self.complete_after_polls
            ):
                self._end(op)
            return op.as_json()

    def issue_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token endpoint: client credentials with a secret or a client assertion."""
        client = form.get("client_id", "")
        if form.get("grant_type") != "client_credentials":
            raise ArmFault(400, "unsupported_grant_type", "only client_credentials")
        with self._lock:
            self.grants.append("client_secret" if "client_secret" in form else "client_assertion")
            if "client_secret" in form:
                good = self.secrets.get(client) == form["client_secret"]
            else:
                good = (
                    form.get("client_assertion_type", "").endswith("jwt-bearer")
                    and self.assertions.get(client) == form.get("client_assertion")
                )
            if not good:
                raise ArmFault(
                    401, "invalid_client", f"AADSTS7000215: bad credentials for {client}"
                )
            token = uuid.uuid4().hex
            self.tokens.add(token)
        return {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                "access_token": token}

    def price_page(self, filters: Mapping[str, str], skip: int) -> tuple[list[Any], bool]:
        """One page of Retail Prices items matching ``filters`` (field -> value, ``eq`` only)."""
        with self._lock:
            rows = [
                item for item in self.prices
                if all(str(item.get(k)) == v for k, v in filters.items())
            ]
        page = rows[skip : skip + self.price_page_size]
        return page, skip + self.price_page_size < len(rows)

    # -- internals -----------------------------------------------------------------------

    def _pool(self, name: str) -> dict[str, Any]:
        pool = self.pools.get(name)
        if pool is None:
            raise ArmFault(404, "NotFound", f"agent pool {name} not found")
        return pool

    def _refuse_if_busy(self, name: str) -> None:
        if any(op.pool == name and op.status == "InProgress" for op in self.operations.values()):
            raise ArmFault(
                409, "OperationNotAllowed",
                f"Operation is not allowed because there's an in progress operation on "
                f"agent pool {name}; wait for it to finish",
            )

    def _start(
        self, name: str, kind: str, before: int, target: int, machines: tuple[str, ...]
    ) -> TwinOperation:
        op = TwinOperation(str(uuid.uuid4()), name, kind, before, target, machines,
                           datetime.now(UTC))
        self.operations[op.id] = op
        self.pools[name]["properties"]["count"] = target  # AKS reports the goal at once
        self._new_etag(name)
        return op

    def _end(self, op: TwinOperation) -> None:
        faults = self._async.get(op.pool)
        fault = faults.pop(0) if faults else None
        if fault is None:
            reached, op.status = op.target, "Succeeded"
        else:
            reached = op.before if fault.achieved is None else fault.achieved
            if fault.code == "Canceled":  # ARM reports a cancelled operation without an error
                op.status = "Canceled"
            else:
                op.status = "Failed"
                op.error = {"code": fault.code, "message": fault.message or fault.code}
        pool = self.pools.get(op.pool)
        if pool is None:
            return
        have = self.machines[op.pool]
        if op.kind == "delete-machines" and op.status == "Succeeded":
            have[:] = [m for m in have if m not in op.machines]
        while len(have) > reached:
            have.pop()  # the newest go first
        while len(have) < reached:
            have.append(self._new_machine(op.pool))
        pool["properties"]["count"] = reached
        pool["properties"]["provisioningState"] = op.status
        self._new_etag(op.pool)

    def _new_machine(self, pool: str) -> str:
        """AKS's VMSS instance naming: ``aks-<pool>-<hash>-vmss`` and a base-36 index."""
        index = self._next[pool]
        self._next[pool] = index + 1
        digits = ""
        while True:
            index, rest = divmod(index, 36)
            digits = _BASE36[rest] + digits
            if index == 0:
                break
        return f"aks-{pool}-12345678-vmss{digits.rjust(6, '0')}"

    def _new_etag(self, name: str) -> str:
        etag = f'"{uuid.uuid4()}"'
        self.pools[name]["properties"]["eTag"] = etag
        return etag

    @staticmethod
    def _copy(pool: Mapping[str, Any]) -> dict[str, Any]:
        props = dict(pool["properties"])
        for key in ("tags", "nodeLabels"):
            if isinstance(props.get(key), dict):
                props[key] = dict(props[key])
        return {**pool, "properties": props}
