"""SimCloud: a simulated AKS behind the ``CloudProvider`` protocol, on simulated time.

Callers: ``simulator.run`` builds one per run and hands it to the control loop as its cloud;
scenario files configure it through ``CloudModel``. It owns the machines (VMSS instances) of
every agent pool and tells the cluster (``SimCluster``) when one registers or goes away.

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
* Spot machines are evicted as a Poisson process (``spot_evictions_per_node_hour``): the
  eviction notice comes at an exponential draw after creation and taints the node (AKS node
  auto-drain's ``remediator.kubernetes.azure.com/unschedulable``, through
  ``NodeHost.eviction_notice``), the machine is deleted ``eviction_notice_seconds`` later and
  the pool's count drops (eviction policy Delete).

Every random draw comes from the generator passed in, in creation order: same seed, same run.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn, Protocol

import numpy as np

from autoscaler.cloud.provider import (
    CloudError,
    Conflict,
    Operation,
    OperationState,
    OperationStatus,
)
from autoscaler.model.aks import (
    REGION_LABEL,
    Catalog,
    VmSize,
    node_allocatable,
    node_labels,
    node_taints,
    zone_label,
)
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import HOSTNAME_LABEL, labels_of
from autoscaler.model.node import Node
from autoscaler.model.pool import AgentPool, Priority
from autoscaler.planner.options import template_ephemeral_storage
from simulator.engine import NODE, Engine
from simulator.metrics import NodeRecord, Recorder

CapacityKey = tuple[str, str | None, str]  # (vm size lower-case, zone label or None, priority)
MAX_POOL_NODES = 1000  # AKS's limit on nodes per agent pool


@dataclass(frozen=True, slots=True)
class CloudModel:
    """How the simulated AKS behaves; quotas are in vCPUs, absent limits are unlimited."""

    provision_seconds: tuple[float, float] = (90.0, 240.0)
    operation_seconds: float = 30.0
    capacity: Mapping[CapacityKey, int] = field(default_factory=dict)
    regional_cores: int | None = None
    family_cores: Mapping[str, int] = field(default_factory=dict)  # compared ignoring case
    spot_cores: int | None = None
    spot_evictions_per_node_hour: float = 0.0
    eviction_notice_seconds: float = 30.0
    register_lead_seconds: float = 15.0  # kubelet registers this long before the node is Ready

    def __post_init__(self) -> None:
        low, high = self.provision_seconds
        if not 0 <= low <= high:
            raise ValidationError("cloud.provision_seconds", f"need 0 <= low <= high, got "
                                  f"{self.provision_seconds}")
        for name in ("operation_seconds", "spot_evictions_per_node_hour",
                     "eviction_notice_seconds", "register_lead_seconds"):
            if getattr(self, name) < 0:
                raise ValidationError(f"cloud.{name}", "must not be negative")
        limits = {**{str(k): v for k, v in self.capacity.items()}, **self.family_cores,
                  "regional_cores": self.regional_cores, "spot_cores": self.spot_cores}
        for name, value in limits.items():
            if value is not None and value < 0:
                raise ValidationError(f"cloud.{name}", f"must not be negative, got {value}")


class NodeHost(Protocol):
    """What SimCloud needs from the cluster (``simulator.cluster.SimCluster`` provides it)."""

    def add_node(self, node: Node, *, ready_after: float) -> None: ...

    def remove_node(self, name: str, reason: str) -> None: ...

    def eviction_notice(self, name: str) -> None: ...


@dataclass(slots=True)
class _Machine:
    name: str
    zone: str | None  # zone label, e.g. "eastus-1"
    vcpus: int
    registered: bool = False
    alive: bool = True


@dataclass(slots=True)
class _Running:
    op: Operation
    started: float  # simulated seconds
    machines: tuple[str, ...] = ()  # for delete-machines


@dataclass(slots=True)
class _Pool:
    spec: AgentPool
    vm: VmSize
    price: float | None  # None: a Spot pool of a size without Spot
    machines: list[_Machine] = field(default_factory=list)  # alive ones, oldest first
    next_index: int = 0
    running: _Running | None = None


@dataclass(slots=True)
class _Usage:
    """What the quotas and capacity limits count: machines that exist or are booting."""

    spot: int = 0  # vCPUs of Spot machines
    regular: int = 0  # vCPUs of regular machines
    family: dict[str, int] = field(default_factory=dict)  # regular vCPUs per family (lower)
    machines: dict[CapacityKey, int] = field(default_factory=dict)

    def add(self, pool: _Pool, machine: _Machine) -> None:
        if pool.spec.priority is Priority.SPOT:
            self.spot += machine.vcpus
        else:
            self.regular += machine.vcpus
            family = pool.vm.family.lower()
            self.family[family] = self.family.get(family, 0) + machine.vcpus
        key = (pool.vm.name.lower(), machine.zone, pool.spec.priority.value)
        self.machines[key] = self.machines.get(key, 0) + 1


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
        self.cluster = cluster
        self.recorder = recorder
        self.region = region.lower()
        self.model = model
        self.rng = rng
        self._families = {k.lower(): v for k, v in model.family_cores.items()}
        self._capacity = {(k[0].lower(), k[1], str(k[2])): v for k, v in model.capacity.items()}
        self._results: dict[str, OperationStatus] = {}
        self._seq = 0
        self._pools: dict[str, _Pool] = {}
        for i, spec in enumerate(pools):
            if spec.name in self._pools:
                raise ValidationError(f"pools[{i}].name", f"duplicate pool {spec.name!r}")
            vm = catalog.get(spec.vm_size)
            if vm is None:
                raise ValidationError(f"pools[{i}].vmSize", f"{spec.vm_size} is not in the "
                                      "VM-size catalog; add it as an override")
            spot = spec.priority is Priority.SPOT
            price = vm.spot_price_per_hour if spot else vm.price_per_hour
            self._pools[spec.name] = _Pool(spec, vm, price)
        # The pools' initial nodes exist already: registered and ready at the start.
        for name in sorted(self._pools):
            pool = self._pools[name]
            for _ in range(pool.spec.count):
                machine = self._new_machine(pool, self._pick_zone(pool, None))
                self._record_requested(pool, machine, engine.now)
                self._register(pool, machine, ready_after=0.0)

    # -- CloudProvider -------------------------------------------------------------------

    def list_pools(self) -> tuple[AgentPool, ...]:
        self.recorder.api_call("list_pools")
        return tuple(replace(p.spec, count=self._count(p)) for _, p in sorted(self._pools.items()))

    def scale(self, pool: str, count: int) -> Operation:
        self.recorder.api_call("scale")
        state = self._pool_for_call(pool, "scale")
        if state.spec.enable_autoscaling:
            self._refuse("scale", CloudError(
                "InvalidParameter", "Cannot scale cluster autoscaler enabled node pool."))
        if not 0 <= count <= MAX_POOL_NODES:
            self._refuse("scale", CloudError(
                "InvalidParameter", f"count must be between 0 and {MAX_POOL_NODES}, got {count}"))
        return self._start(state, "scale", count, ())

    def delete_machines(self, pool: str, machines: Sequence[str]) -> Operation:
        self.recorder.api_call("delete_machines")
        state = self._pool_for_call(pool, "delete-machines")
        alive = {m.name for m in state.machines}
        names = tuple(machines)
        unknown = sorted(set(names) - alive)
        if not names or unknown or len(set(names)) != len(names):
            detail = f"unknown machines {unknown}" if unknown else "empty or repeated names"
            self._refuse("delete-machines", CloudError("InvalidParameter", detail))
        return self._start(state, "delete-machines", len(alive) - len(names), names)

    def operation(self, op: Operation) -> OperationStatus:
        self.recorder.api_call("operation")
        state = self._pools.get(op.pool)
        if state is not None and state.running is not None and state.running.op.token == op.token:
            return OperationStatus(OperationState.IN_PROGRESS)
        status = self._results.get(op.token)
        if status is None:
            raise CloudError("NotFound", f"operation {op.token} not found")
        return status

    # -- calls ---------------------------------------------------------------------------

    def _pool_for_call(self, pool: str, kind: str) -> _Pool:
        state = self._pools.get(pool)
        if state is None:
            self._refuse(kind, CloudError("NotFound", f"agent pool {pool!r} not found"))
        if state.running is not None:
            self._refuse(kind, Conflict(
                "OperationNotAllowed",
                f"Operation is not allowed: another operation "
                f"({state.running.op.kind}) is in progress on agent pool {pool!r}",
            ))
        return state

    def _refuse(self, kind: str, error: CloudError) -> NoReturn:
        """A call ARM rejects at once: counted among the failures, then raised."""
        self.recorder.operation(kind, "Rejected", error.code)
        raise error

    def _start(self, state: _Pool, kind: str, target: int, names: tuple[str, ...]) -> Operation:
        self._seq += 1
        op = Operation(state.spec.name, kind, target, f"sim-op-{self._seq:06d}",
                       self.engine.clock.now())
        state.running = _Running(op, self.engine.now, names)
        self.engine.after(self.model.operation_seconds, lambda: self._finish(state), NODE)
        return op

    def _count(self, pool: _Pool) -> int:
        if pool.running is not None and pool.running.op.kind == "scale":
            return pool.running.op.target
        return len(pool.machines)

    # -- operation end -------------------------------------------------------------------

    def _finish(self, pool: _Pool) -> None:
        running = pool.running
        assert running is not None
        pool.running = None
        op = running.op
        status = OperationStatus(OperationState.SUCCEEDED)
        if op.kind == "delete-machines":
            wanted = set(running.machines)
            for machine in [m for m in pool.machines if m.name in wanted]:
                self._remove(pool, machine, "delete-machines")
        else:
            for machine in pool.machines[op.target:][::-1]:  # newest first
                self._remove(pool, machine, "scale-down")
            if op.target > len(pool.machines):
                status = self._grow(pool, op.target - len(pool.machines), running.started)
        self._results[op.token] = status
        self.recorder.operation(op.kind, status.state.value, status.error_code)

    def _grow(self, pool: _Pool, wanted: int, started: float) -> OperationStatus:
        if pool.price is None:
            return OperationStatus(
                OperationState.FAILED, "SkuNotAvailable",
                f"{pool.spec.vm_size} is not available as Spot in {self.region}")
        usage = self._usage()
        for _ in range(wanted):
            refusal = self._quota_refusal(pool, usage)
            if refusal is not None:
                return refusal
            zone = self._pick_zone(pool, usage)
            if zone == "":
                return OperationStatus(
                    OperationState.FAILED,
                    "ZonalAllocationFailed" if pool.spec.zones else "AllocationFailed",
                    f"Allocation failed: no capacity left for {pool.spec.vm_size} "
                    f"({pool.spec.priority.value}) in the requested location or zone")
            machine = self._new_machine(pool, zone)
            usage.add(pool, machine)
            self._record_requested(pool, machine, started)
            low, high = self.model.provision_seconds
            ready_at = started + float(self.rng.uniform(low, high))
            register_at = max(self.engine.now, ready_at - self.model.register_lead_seconds)
            ready_after = max(ready_at - register_at, 0.0)
            self._schedule_register(pool, machine, register_at, ready_after)
        return OperationStatus(OperationState.SUCCEEDED)

    def _schedule_register(
        self, pool: _Pool, machine: _Machine, at: float, ready_after: float
    ) -> None:
        self.engine.at(at, lambda: self._register(pool, machine, ready_after), NODE)

    # -- limits --------------------------------------------------------------------------

    def _usage(self) -> _Usage:
        usage = _Usage()
        for pool in self._pools.values():
            for machine in pool.machines:
                usage.add(pool, machine)
        return usage

    def _quota_refusal(self, pool: _Pool, usage: _Usage) -> OperationStatus | None:
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

    def _zones(self, pool: _Pool) -> list[str | None]:
        return [zone_label(self.region, z) for z in pool.spec.zones] or [None]

    def _pick_zone(self, pool: _Pool, usage: _Usage | None) -> str | None:
        """The zone for one more machine: AKS balances a pool's machines over its zones, so the
        zone with the fewest among those with capacity left; "" when there is none."""
        open_zones: list[str | None] = []
        for zone in self._zones(pool):
            key = (pool.vm.name.lower(), zone, pool.spec.priority.value)
            limit = self._capacity.get(key)
            if usage is None or limit is None or usage.machines.get(key, 0) < limit:
                open_zones.append(zone)
        if not open_zones:
            return ""
        counts = dict.fromkeys(open_zones, 0)
        for machine in pool.machines:
            if machine.zone in counts:
                counts[machine.zone] += 1
        return min(open_zones, key=lambda z: counts[z])

    # -- machines ------------------------------------------------------------------------

    def _new_machine(self, pool: _Pool, zone: str | None) -> _Machine:
        # VMSS computer names: aks-<pool>-<8 digits>-vmss<instance id, 6 base-36 digits>.
        digits = zlib.crc32(pool.spec.name.encode()) % 10**8
        instance = np.base_repr(pool.next_index, 36).lower().zfill(6)
        name = f"aks-{pool.spec.name}-{digits:08d}-vmss{instance}"
        pool.next_index += 1
        machine = _Machine(name, zone, pool.vm.vcpus)
        pool.machines.append(machine)
        rate = self.model.spot_evictions_per_node_hour
        if pool.spec.priority is Priority.SPOT and rate > 0:
            # The notice (Scheduled Events' Preempt) comes at a Poisson arrival; nothing in AKS
            # acts on it by default, so the only effect is the VM going once it runs out.
            notice = float(self.rng.exponential(3600.0 / rate))
            self.engine.after(notice, lambda: self._notice(machine), NODE)
            self.engine.after(notice + self.model.eviction_notice_seconds,
                              lambda: self._evicted(pool, machine), NODE)
        return machine

    def _record_requested(self, pool: _Pool, machine: _Machine, at: float) -> None:
        self.recorder.node_requested(NodeRecord(
            name=machine.name, pool=pool.spec.name, zone=machine.zone,
            priority=pool.spec.priority.value, vm_size=pool.spec.vm_size,
            price_per_hour=pool.price or 0.0, requested=at))

    def _register(self, pool: _Pool, machine: _Machine, ready_after: float) -> None:
        if not machine.alive:
            return
        spec = pool.spec
        labels = dict(node_labels(spec, pool.vm, machine.zone))
        labels[HOSTNAME_LABEL] = machine.name
        labels[REGION_LABEL] = self.region
        allocatable = node_allocatable(
            pool.vm, spec.max_pods, spec.kubernetes_version,
            ephemeral_storage_bytes=template_ephemeral_storage(spec.os_disk_size_gb))
        node = Node(machine.name, spec.name, labels_of(labels), node_taints(spec), allocatable,
                    ready=False)
        machine.registered = True
        self.cluster.add_node(node, ready_after=ready_after)
        self.recorder.node_registered(machine.name, self.engine.now)
        self.engine.after(ready_after, lambda: self._ready(machine), NODE)

    def _ready(self, machine: _Machine) -> None:
        if machine.alive:
            self.recorder.node_ready(machine.name, self.engine.now)

    def _notice(self, machine: _Machine) -> None:
        if machine.alive and machine.registered:
            self.cluster.eviction_notice(machine.name)

    def _evicted(self, pool: _Pool, machine: _Machine) -> None:
        if machine.alive:
            self.recorder.spot_evicted()
            self._remove(pool, machine, "spot-eviction")

    def _remove(self, pool: _Pool, machine: _Machine, reason: str) -> None:
        machine.alive = False
        pool.machines.remove(machine)
        if machine.registered:
            self.cluster.remove_node(machine.name, reason)
        self.recorder.node_removed(machine.name, self.engine.now, reason)

