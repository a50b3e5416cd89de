"""SimCloud: a simulated AKS behind the ``CloudProvider`` protocol, on simulated time.

Callers: ``simulator.run`` builds one per run and hands it to the control loop as its cloud;
scenario files configure it through ``simulator.cloud_pools.CloudModel``. This module is the AKS
operation model: calls, operations and their failures. The machines (VMSS instances) of every
agent pool, what the limits count, zone balancing, node registration and Spot evictions are
``simulator.cloud_pools.Fleet``'s, which tells the cluster (``SimCluster``) when a machine
registers or goes away.

AKS behaviour modelled:

* One operation at a time per pool: starting a second one while one runs raises
  ``Conflict("OperationNotAllowed")``, like ARM's 409.
* An operation reports its result ``operation_seconds`` after it starts, and its effect is
  decided then, as ARM reports an agent pool PUT's failure only when the long-running operation
  ends. While it runs, the pool's count is the count asked for (what ARM's GET shows for a pool
  that is scaling); afterwards it is the machines that exist or are still booting.
* Scale up creates machines one by one until the target or the first limit: the Spot vCPU
  quota (Spot VMs count only against it, across families) -> ``QuotaExceeded`` naming
  LowPriorityCores; the regional and per-family vCPU quotas (regular VMs) -> ``QuotaExceeded``;
  the capacity for (VM size, zone, priority) -> ``ZonalAllocationFailed`` (pool with zones) or
  ``AllocationFailed``. Machines created before the limit stay: partial success. Quotas count
  every machine that exists or is booting (Azure counts allocated vCPUs, booting or not).
* A Spot pool of a size Azure offers no Spot for fails with ``SkuNotAvailable``. (Azure may
  also report a lack of Spot capacity as ``SkuNotAvailable``; capacity limits here use the
  allocation codes for both priorities.) Spot quota facts: learn.microsoft.com/azure/
  azure-portal/supportability/spot-quota.
* Calls refused at once (409 conflict, 404, 400) raise ``CloudError`` and are recorded as
  operations ``<kind>:Rejected`` with their code among the recorder's failures.
* Scale down removes the newest machines; ``delete_machines`` removes the named ones.
* Each new machine becomes Ready a uniform draw from ``provision_seconds`` after its operation
  started (never before the operation ends); it registers with the cluster
  ``register_lead_seconds`` before that, not ready.
* Spot machines are evicted as a Poisson process (see ``simulator.cloud_pools``).

Every random draw comes from the generator passed in, in creation order: same seed, same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NoReturn

import numpy as np

from autoscaler.cloud.provider import (
    DELETE_MACHINES,
    SCALE,
    CloudError,
    Conflict,
    Operation,
    OperationState,
    OperationStatus,
)
from autoscaler.model.aks import Catalog
from autoscaler.model.pool import AgentPool, Priority
from simulator.cloud_pools import CloudModel, Fleet, NodeHost, Pool, Usage
from simulator.engine import NODE, Engine
from simulator.metrics import Recorder

MAX_POOL_NODES = 1000  # AKS's limit on nodes per agent pool


@dataclass(slots=True)
class _Running:
    op: Operation
    started: float  # simulated seconds
    machines: tuple[str, ...] = ()  # for delete-machines


class SimCloud:
    def __init__(
        self,
        engine: Engine,
        cluster: NodeHost,
        recorder: Recorder,
        pools: Sequence[AgentPool],
        catalog: Catalog,
        region: str,
        model: CloudModel,
        rng: np.random.Generator,
    ) -> None:
        self.engine = engine
        self.recorder = recorder
        self.region = region.lower()
        self.model = model
        self.rng = rng
        self._families = {k.lower(): v for k, v in model.family_cores.items()}
        self._results: dict[str, OperationStatus] = {}
        self._seq = 0
        self._running: dict[str, _Running] = {}  # by pool name
        self._fleet = Fleet(engine, cluster, recorder, pools, catalog, self.region, model, rng)

    # -- CloudProvider -------------------------------------------------------------------

    def list_pools(self) -> tuple[AgentPool, ...]:
        self.recorder.api_call("list_pools")
        pools = sorted(self._fleet.pools.items())
        return tuple(replace(p.spec, count=self._count(p)) for _, p in pools)

    def scale(self, pool: str, count: int) -> Operation:
        self.recorder.api_call(SCALE)
        state = self._pool_for_call(pool, SCALE)
        if state.spec.enable_autoscaling:
            self._refuse(SCALE, CloudError(
                "InvalidParameter", "Cannot scale cluster autoscaler enabled node pool."))
        if not 0 <= count <= MAX_POOL_NODES:
            self._refuse(SCALE, CloudError(
                "InvalidParameter", f"count must be between 0 and {MAX_POOL_NODES}, got {count}"))
        return self._start(state, SCALE, count, ())

    def delete_machines(self, pool: str, machines: Sequence[str]) -> Operation:
        self.recorder.api_call("delete_machines")
        state = self._pool_for_call(pool, DELETE_MACHINES)
        alive = {m.name for m in state.machines}
        names = tuple(machines)
        unknown = sorted(set(names) - alive)
        if not names or unknown or len(set(names)) != len(names):
            detail = f"unknown machines {unknown}" if unknown else "empty or repeated names"
            self._refuse(DELETE_MACHINES, CloudError("InvalidParameter", detail))
        return self._start(state, DELETE_MACHINES, len(alive) - len(names), names)

    def operation(self, op: Operation) -> OperationStatus:
        self.recorder.api_call("operation")
        running = self._running.get(op.pool)
        if running is not None and running.op.token == op.token:
            return OperationStatus(OperationState.IN_PROGRESS)
        status = self._results.get(op.token)
        if status is None:
            raise CloudError("NotFound", f"operation {op.token} not found")
        return status

    # -- calls ---------------------------------------------------------------------------

    def _pool_for_call(self, pool: str, kind: str) -> Pool:
        state = self._fleet.pools.get(pool)
        if state is None:
            self._refuse(kind, CloudError("NotFound", f"agent pool {pool!r} not found"))
        running = self._running.get(pool)
        if running is not None:
            self._refuse(kind, Conflict(
                "OperationNotAllowed",
                f"Operation is not allowed: another operation "
                f"({running.op.kind}) is in progress on agent pool {pool!r}",
            ))
        return state

    def _refuse(self, kind: str, error: CloudError) -> NoReturn:
        """A call ARM rejects at once: counted among the failures, then raised."""
        self.recorder.operation(kind, "Rejected", error.code)
        raise error

    def _start(self, state: Pool, kind: str, target: int, names: tuple[str, ...]) -> Operation:
        self._seq += 1
        op = Operation(state.spec.name, kind, target, f"sim-op-{self._seq:06d}",
                       self.engine.clock.now())
        self._running[state.spec.name] = _Running(op, self.engine.now, names)
        self.engine.after(self.model.operation_seconds, lambda: self._finish(state), NODE)
        return op

    def _count(self, pool: Pool) -> int:
        running = self._running.get(pool.spec.name)
        if running is not None and running.op.kind == SCALE:
            return running.op.target
        return len(pool.machines)

    # -- operation end -------------------------------------------------------------------

    def _finish(self, pool: Pool) -> None:
        running = self._running.pop(pool.spec.name)
        op = running.op
        status = OperationStatus(OperationState.SUCCEEDED)
        if op.kind == DELETE_MACHINES:
            wanted = set(running.machines)
            for machine in [m for m in pool.machines if m.name in wanted]:
                self._fleet.remove(pool, machine, DELETE_MACHINES)
        else:
            for machine in pool.machines[op.target:][::-1]:  # newest first
                self._fleet.remove(pool, machine, "scale-down")
            if op.target > len(pool.machines):
                status = self._grow(pool, op.target - len(pool.machines), running.started)
        self._results[op.token] = status
        self.recorder.operation(op.kind, status.state.value, status.error_code)

    def _grow(self, pool: Pool, wanted: int, started: float) -> OperationStatus:
        if pool.price is None:
            return OperationStatus(
                OperationState.FAILED, "SkuNotAvailable",
                f"{pool.spec.vm_size} is not available as Spot in {self.region}")
        fleet = self._fleet
        usage = fleet.usage()
        for _ in range(wanted):
            refusal = self._quota_refusal(pool, usage)
            if refusal is not None:
                return refusal
            zone = fleet.pick_zone(pool, usage)
            if zone == "":
                return OperationStatus(
                    OperationState.FAILED,
                    "ZonalAllocationFailed" if pool.spec.zones else "AllocationFailed",
                    f"Allocation failed: no capacity left for {pool.spec.vm_size} "
                    f"({pool.spec.priority.value}) in the requested location or zone")
            machine = fleet.new_machine(pool, zone)
            usage.add(pool, machine)
            fleet.record_requested(pool, machine, started)
            low, high = self.model.provision_seconds
            ready_at = started + float(self.rng.uniform(low, high))
            register_at = max(self.engine.now, ready_at - self.model.register_lead_seconds)
            ready_after = max(ready_at - register_at, 0.0)
            fleet.schedule_register(pool, machine, register_at, ready_after)
        return OperationStatus(OperationState.SUCCEEDED)

    def _quota_refusal(self, pool: Pool, usage: Usage) -> OperationStatus | None:
        need = pool.vm.vcpus
        if pool.spec.priority is Priority.SPOT:
            checks = [("LowPriorityCores", usage.spot, self.model.spot_cores)]
        else:
            family = pool.vm.family.lower()
            checks = [
                ("Total Regional Cores", usage.regular, self.model.regional_cores),
                (f"{pool.vm.family} Cores", usage.family.get(family, 0),
                 self._families.get(family)),
            ]
        for label, used, limit in checks:
            if limit is not None and used + need > limit:
                return OperationStatus(
                    OperationState.FAILED, "QuotaExceeded",
                    f"Operation could not be completed as it results in exceeding approved "
                    f"{label} quota. Location: {self.region}, Current Limit: {limit}, "
                    f"Current Usage: {used}, Additional Required: {need}")
        return None
