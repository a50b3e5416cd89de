"""An ARM twin model backed by a CloudProvider, normally SimCloud: simulated AKS over real ARM.

Callers: end-to-end runs and adapter tests that want the simulator's AKS behaviour (quotas,
capacity, partial success, provisioning delays on the simulated Engine) behind the wire protocol:
``ArmTwin(SimCloudArm(cloud, advance=lambda s: engine.run(engine.now + s)))``. The twin's own
``ArmModel`` keeps what ARM has and SimCloud does not: eTags, tags, operation records by id.
Failures at the end of an operation are SimCloud's (its ``CloudModel``); synchronous faults
(``fail_next``) work as on the plain model. ``advance(seconds)`` moves simulated time under the
model's lock, so no request is served half-way through an engine step.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autoscaler.cloud.aks_settings import MAX_COUNT_TAG, MIN_COUNT_TAG
from autoscaler.cloud.provider import (
    CloudError,
    CloudProvider,
    Conflict,
    Operation,
    OperationState,
)
from autoscaler.model.pool import AgentPool, PoolMode, Priority
from simulator.twin.arm_model import ArmFault, ArmModel, TwinOperation

_STATUS = {
    OperationState.IN_PROGRESS: "InProgress",
    OperationState.SUCCEEDED: "Succeeded",
    OperationState.FAILED: "Failed",
}


def pool_to_arm(pool: AgentPool, pool_id: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """ARM's JSON for ``pool``; bounds of a manually scaled pool travel as surge tags."""
    props: dict[str, Any] = {
        "count": pool.count,
        "vmSize": pool.vm_size,
        "osDiskSizeGB": pool.os_disk_size_gb,
        "maxPods": pool.max_pods,
        "osType": pool.os_type,
        "type": "VirtualMachineScaleSets",
        "mode": pool.mode.value,
        "orchestratorVersion": pool.kubernetes_version,
        "currentOrchestratorVersion": pool.kubernetes_version,
        "enableAutoScaling": pool.enable_autoscaling,
        "provisioningState": "Succeeded",
        "nodeLabels": dict(pool.labels),
        "nodeTaints": [
            f"{t.key}={t.value}:{t.effect.value}" if t.value else f"{t.key}:{t.effect.value}"
            for t in pool.taints
        ],
        "tags": {
            **tags,
            MAX_COUNT_TAG: str(pool.max_count),
            MIN_COUNT_TAG: str(pool.min_count if pool.mode is PoolMode.USER else 1),
        },
    }
    if pool.zones:
        props["availabilityZones"] = list(pool.zones)
    if pool.priority is Priority.SPOT:
        props.update(scaleSetPriority="Spot", scaleSetEvictionPolicy="Delete", spotMaxPrice=-1)
    return {
        "id": pool_id,
        "name": pool.name,
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": props,
    }


def _fault(err: CloudError) -> ArmFault:
    if isinstance(err, Conflict):
        return ArmFault(409, err.code, err.message)
    status = 404 if err.code in ("NotFound", "ResourceNotFound") else 400
    return ArmFault(status, err.code, err.message)


@dataclass(slots=True)
class SimCloudArm(ArmModel):
    cloud: CloudProvider | None = None
    advance_by: Callable[[float], None] | None = None
    pool_tags: dict[str, str] = field(default_factory=lambda: {"surge.io/managed": "true"})
    _etags: dict[str, str] = field(default_factory=dict)
    _backend_ops: dict[str, Operation] = field(default_factory=dict)

    def _provider(self) -> CloudProvider:
        if self.cloud is None:
            raise RuntimeError("SimCloudArm needs a cloud")
        return self.cloud

    def advance(self, seconds: float) -> None:
        """Move simulated time on; operations end and nodes boot as the backend decides."""
        if self.advance_by is None:
            raise RuntimeError("SimCloudArm was built without an advance function")
        with self._lock:
            self.advance_by(seconds)

    def complete_operations(self, pool: str | None = None) -> list[str]:
        raise NotImplementedError("operations end on simulated time: call advance(seconds)")

    def _refresh(self) -> None:
        """Pools as the backend reports them now, with the eTags and tags only ARM keeps."""
        pools = {p.name: p for p in self._provider().list_pools()}
        for name, spec in pools.items():
            body = pool_to_arm(spec, self.pool_id(name), self.pool_tags)
            old = self.pools.get(name)
            if old is None or old["properties"]["count"] != spec.count:
                self._etags[name] = f'"{uuid.uuid4()}"'
            busy = any(
                op.pool == name and op.status == "InProgress" for op in self.operations.values()
            )
            body["properties"]["eTag"] = self._etags[name]
            body["properties"]["provisioningState"] = "Scaling" if busy else "Succeeded"
            self.pools[name] = body

    def list_pools(self) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            return {"value": [self._copy(self.pools[name]) for name in sorted(self.pools)]}

    def get_pool(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            return self._copy(self._pool(name))

    def put_pool(self, name: str, body: Mapping[str, Any], if_match: str | None) -> TwinOperation:
        with self._lock:
            self.if_matches.append(if_match)
            self._refresh()
            props = self._pool(name)["properties"]
            if if_match is not None and if_match not in ("*", props["eTag"]):
                raise ArmFault(412, "PreconditionFailed", f"If-Match {if_match} is stale")
            sent = body.get("properties")
            count = sent.get("count") if isinstance(sent, Mapping) else None
            if not isinstance(count, int) or isinstance(count, bool):
                raise ArmFault(400, "InvalidParameter", "properties.count is required")
            try:
                backend = self._provider().scale(name, count)
            except CloudError as err:
                raise _fault(err) from err
            return self._track(name, "scale", int(props["count"]), backend, ())

    def delete_machines(self, name: str, body: Mapping[str, Any]) -> TwinOperation:
        with self._lock:
            self._refresh()
            before = int(self._pool(name)["properties"]["count"])
            names = tuple(str(n) for n in body.get("machineNames") or ())
            try:
                backend = self._provider().delete_machines(name, names)
            except CloudError as err:
                raise _fault(err) from err
            return self._track(name, "delete-machines", before, backend, names)

    def operation_status(self, op_id: str) -> dict[str, Any]:
        with self._lock:
            op = self.operations.get(op_id)
            backend = self._backend_ops.get(op_id)
            if op is None or backend is None:
                raise ArmFault(404, "NotFound", f"operation {op_id} not found")
            op.polls += 1
            status = self._provider().operation(backend)
            op.status = _STATUS[status.state]
            if status.state is OperationState.FAILED:
                code = status.error_code or "OperationFailed"
                op.error = {"code": code, "message": status.message or code}
            return op.as_json()

    def _track(
        self, name: str, kind: str, before: int, backend: Operation, machines: tuple[str, ...]
    ) -> TwinOperation:
        op = TwinOperation(
            str(uuid.uuid4()), name, kind, before, backend.target, machines, datetime.now(UTC)
        )
        self.operations[op.id] = op
        self._backend_ops[op.id] = backend
        self._refresh()
        return op
