"""The simulated AKS's settings and its pool bookkeeping: machines, usage, zones, node lifecycles.

Callers: ``simulator.cloud.SimCloud`` (the operation model) builds one ``Fleet`` and asks it for
machines, usage and zones; ``simulator.settings`` and ``simulator.scenario`` build the
``CloudModel`` a scenario's ``cloud:`` section describes. The operations themselves, their
failures and their timing are ``simulator.cloud``'s.

What is kept here:

* Every agent pool's machines (VMSS instances), alive ones oldest first, named as AKS names
  them (``aks-<pool>-<8 digits>-vmss<6 base-36 digits>``). The pools' initial machines exist
  at the start, registered and ready.
* What the quotas and capacity limits count (``Usage``): every machine that exists or is
  booting (Azure counts allocated vCPUs, booting or not), Spot vCPUs apart from regular ones.
* Zone choice: AKS balances a pool's machines over its zones, so one more machine goes to the
  zone with the fewest among those with capacity left for (VM size, zone, priority).
* Node lifecycles towards the cluster (``NodeHost``, ``SimCluster`` provides it): a machine
  registers as a not-ready node, becomes Ready later, and is removed with a reason.
* Spot machines are evicted as a Poisson process (``spot_evictions_per_node_hour``): the
  eviction notice comes at an exponential draw after creation and taints the node (AKS node
  auto-drain's ``remediator.kubernetes.azure.com/unschedulable``, through
  ``NodeHost.eviction_notice``), the machine is deleted ``eviction_notice_seconds`` later and
  the pool's count drops (eviction policy Delete).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

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
    """What the cloud needs from the cluster (``simulator.cluster.SimCluster`` provides it)."""

    def add_node(self, node: Node, *, ready_after: float) -> None: ...

    def remove_node(self, name: str, reason: str) -> None: ...

    def eviction_notice(self, name: str) -> None: ...


@dataclass(slots=True)
class Machine:
    name: str
    zone: str | None  # zone label, e.g. "eastus-1"
    vcpus: int
    registered: bool = False
    alive: bool = True


@dataclass(slots=True)
class Pool:
    spec: AgentPool
    vm: VmSize
    price: float | None  # None: a Spot pool of a size without Spot
    machines: list[Machine] = field(default_factory=list)  # alive ones, oldest first
    next_index: int = 0


@dataclass(slots=True)
class Usage:
    """What the quotas and capacity limits count: machines that exist or are booting."""

    spot: int = 0  # vCPUs of Spot machines
    regular: int = 0  # vCPUs of regular machines
    family: dict[str, int] = field(default_factory=dict)  # regular vCPUs per family (lower)
    machines: dict[CapacityKey, int] = field(default_factory=dict)

    def add(self, pool: Pool, machine: Machine) -> None:
        if pool.spec.priority is Priority.SPOT:
            self.spot += machine.vcpus
        else:
            self.regular += machine.vcpus
            family = pool.vm.family.lower()
            self.family[family] = self.family.get(family, 0) + machine.vcpus
        key = (pool.vm.name.lower(), machine.zone, pool.spec.priority.value)
        self.machines[key] = self.machines.get(key, 0) + 1


class Fleet:
    """The agent pools and their machines; registers, readies and removes their nodes."""

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
        self.region = region
        self.model = model
        self.rng = rng
        self._capacity = {(k[0].lower(), k[1], str(k[2])): v for k, v in model.capacity.items()}
        self.pools: dict[str, Pool] = {}
        for i, spec in enumerate(pools):
            if spec.name in self.pools:
                raise ValidationError(f"pools[{i}].name", f"duplicate pool {spec.name!r}")
            vm = catalog.get(spec.vm_size)
            if vm is None:
                raise ValidationError(f"pools[{i}].vmSize", f"{spec.vm_size} is not in the "
                                      "VM-size catalog; add it as an override")
            spot = spec.priority is Priority.SPOT
            price = vm.spot_price_per_hour if spot else vm.price_per_hour
            self.pools[spec.name] = Pool(spec, vm, price)
        # The pools' initial nodes exist already: registered and ready at the start.
        for name in sorted(self.pools):
            pool = self.pools[name]
            for _ in range(pool.spec.count):
                machine = self.new_machine(pool, self.pick_zone(pool, None))
                self.record_requested(pool, machine, engine.now)
                self._register(pool, machine, ready_after=0.0)

    # -- limits --------------------------------------------------------------------------

    def usage(self) -> Usage:
        usage = Usage()
        for pool in self.pools.values():
            for machine in pool.machines:
                usage.add(pool, machine)
        return usage

    def _zones(self, pool: Pool) -> list[str | None]:
        return [zone_label(self.region, z) for z in pool.spec.zones] or [None]

    def pick_zone(self, pool: Pool, usage: Usage | None) -> str | None:
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

    def new_machine(self, pool: Pool, zone: str | None) -> Machine:
        # VMSS computer names: aks-<pool>-<8 digits>-vmss<instance id, 6 base-36 digits>.
        digits = zlib.crc32(pool.spec.name.encode()) % 10**8
        instance = np.base_repr(pool.next_index, 36).lower().zfill(6)
        name = f"aks-{pool.spec.name}-{digits:08d}-vmss{instance}"
        pool.next_index += 1
        machine = Machine(name, zone, pool.vm.vcpus)
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

    def record_requested(self, pool: Pool, machine: Machine, at: float) -> None:
        self.recorder.node_requested(NodeRecord(
            name=machine.name, pool=pool.spec.name, zone=machine.zone,
            priority=pool.spec.priority.value, vm_size=pool.spec.vm_size,
            price_per_hour=pool.price or 0.0, requested=at))

    def schedule_register(
        self, pool: Pool, machine: Machine, at: float, ready_after: float
    ) -> None:
        self.engine.at(at, lambda: self._register(pool, machine, ready_after), NODE)

    def _register(self, pool: Pool, machine: Machine, ready_after: float) -> None:
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

    def _ready(self, machine: Machine) -> None:
        if machine.alive:
            self.recorder.node_ready(machine.name, self.engine.now)

    def _notice(self, machine: Machine) -> None:
        if machine.alive and machine.registered:
            self.cluster.eviction_notice(machine.name)

    def _evicted(self, pool: Pool, machine: Machine) -> None:
        if machine.alive:
            self.recorder.spot_evicted()
            self.remove(pool, machine, "spot-eviction")

    def remove(self, pool: Pool, machine: Machine, reason: str) -> None:
        machine.alive = False
        pool.machines.remove(machine)
        if machine.registered:
            self.cluster.remove_node(machine.name, reason)
        self.recorder.node_removed(machine.name, self.engine.now, reason)
