"""What the simulator observed, recorded as it happens; the report is computed from this.

Callers: ``simulator.cluster`` (pods and nodes), ``simulator.cloud`` (API calls, operations),
``simulator.cloud_pools`` (evictions, node lifetimes), ``simulator.run`` (loop passes, periodic
samples); then ``simulator.report`` reads it. Times are simulated seconds since the start of the
run.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PodRecord:
    key: str  # "namespace/name"
    workload: str
    created: float
    bound: float | None = None
    finished: float | None = None  # completed or deleted by its workload
    lost: str | None = None  # why a pod ended without running to its end (e.g. evicted bare pod)
    pending_reason: str | None = None  # last NotTriggerScaleUp reason seen while pending
    evictions: int = 0
    node: str | None = None  # the node it was last bound to


@dataclass(slots=True)
class NodeRecord:
    name: str
    pool: str
    zone: str | None
    priority: str  # "Spot" | "Regular"
    vm_size: str
    price_per_hour: float
    requested: float  # when the machine was asked for (billing starts)
    registered: float | None = None
    ready: float | None = None
    removed: float | None = None
    removal_reason: str | None = None  # "scale-down" | "spot-eviction" | "scale-back" ...


@dataclass(slots=True)
class LoopRecord:
    time: float
    decision_seconds: float
    pending: int
    actions: int
    skipped: str | None


@dataclass(slots=True)
class Sample:
    """Periodic snapshot of the cluster (every ``Recorder.sample_every`` simulated seconds)."""

    time: float
    pending: int
    running: int
    nodes_by_pool: dict[str, int]
    requested_cpu_m: int
    allocatable_cpu_m: int
    requested_memory: int
    allocatable_memory: int
    cost_per_hour: float


@dataclass(slots=True)
class Recorder:
    sample_every: float = 60.0
    pods: dict[str, PodRecord] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    loops: list[LoopRecord] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)  # method -> count
    operations: dict[str, int] = field(default_factory=dict)  # "scale:Succeeded" -> count
    failures: dict[str, int] = field(default_factory=dict)  # error code -> count
    spot_evictions: int = 0
    events: dict[str, int] = field(default_factory=dict)  # Kubernetes event reason -> count
    disrupted: int = 0  # pods the autoscaler evicted (scale-down drains)
    evictions_blocked: int = 0  # evictions refused by a PodDisruptionBudget (429)
    pdb_violations: dict[str, int] = field(default_factory=dict)  # budget -> times broken

    # pods ---------------------------------------------------------------------------------
    def pod_created(self, key: str, workload: str, t: float) -> None:
        self.pods[key] = PodRecord(key, workload, t)

    def pod_bound(self, key: str, t: float, node: str | None = None) -> None:
        record = self.pods[key]
        if record.bound is None:
            record.bound = t
        record.node = node

    def pod_finished(self, key: str, t: float) -> None:
        self.pods[key].finished = t

    def pod_evicted(self, key: str) -> None:
        self.pods[key].evictions += 1

    def pod_lost(self, key: str, reason: str, t: float) -> None:
        record = self.pods[key]
        record.lost = reason
        record.finished = t

    def pod_reason(self, key: str, reason: str) -> None:
        if key in self.pods:
            self.pods[key].pending_reason = reason

    # nodes --------------------------------------------------------------------------------
    def node_requested(self, record: NodeRecord) -> None:
        self.nodes[record.name] = record

    def node_registered(self, name: str, t: float) -> None:
        self.nodes[name].registered = t

    def node_ready(self, name: str, t: float) -> None:
        self.nodes[name].ready = t

    def node_removed(self, name: str, t: float, reason: str) -> None:
        record = self.nodes[name]
        if record.removed is None:
            record.removed = t
            record.removal_reason = reason

    # cloud --------------------------------------------------------------------------------
    def api_call(self, method: str) -> None:
        self.api_calls[method] = self.api_calls.get(method, 0) + 1

    def operation(self, kind: str, result: str, code: str | None = None) -> None:
        key = f"{kind}:{result}"
        self.operations[key] = self.operations.get(key, 0) + 1
        if code:
            self.failures[code] = self.failures.get(code, 0) + 1

    def spot_evicted(self) -> None:
        self.spot_evictions += 1

    def pod_disrupted(self) -> None:
        self.disrupted += 1

    def eviction_blocked(self) -> None:
        self.evictions_blocked += 1

    def pdb_violated(self, budget: str) -> None:
        self.pdb_violations[budget] = self.pdb_violations.get(budget, 0) + 1

    def event(self, reason: str) -> None:
        self.events[reason] = self.events.get(reason, 0) + 1

    # loop ---------------------------------------------------------------------------------
    def loop(self, record: LoopRecord) -> None:
        self.loops.append(record)

    def sample(self, sample: Sample) -> None:
        self.samples.append(sample)
