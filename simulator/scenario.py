"""Scenario values: what a simulation run is given (pools, settings, cloud model, workloads).

Callers: ``simulator.loader`` builds a ``Scenario`` from YAML; ``simulator.traces`` builds
``TraceReplay`` values; ``simulator.workloads.WorkloadDriver`` turns the workloads into pods
over simulated time; ``simulator.run`` reads the rest. All frozen; times are simulated seconds
since the start of the run. The file format is documented in docs/scenarios.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from autoscaler.control.loop import LoopConfig
from autoscaler.model.aks import Catalog, load_catalog
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.labels import HOSTNAME_LABEL, SPOT_LABEL, ZONE_LABEL, Labels, LabelSelector
from autoscaler.model.pod import (
    Container,
    NodeSelectorTerm,
    Pod,
    TaintEffect,
    Toleration,
    TopologySpread,
)
from autoscaler.model.pool import AgentPool
from autoscaler.model.resources import CPU, GPU, MEMORY, Resources
from simulator.cloud_pools import CloudModel
from simulator.curves import Curve

SPOT_TOLERATION = Toleration(
    key=SPOT_LABEL, operator="Equal", value="spot", effect=TaintEffect.NO_SCHEDULE
)
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, midnight UTC


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """The pods of one workload: requests (millicores, bytes, GPUs) and placement constraints.

    ``labels`` identify the workload's pods; the zone and hostname spread constraints select
    the pods with these labels, so they should be set (the loader sets ``app: <name>``)."""

    cpu_m: int
    memory: int
    gpu: int = 0
    tolerate_spot: bool = False
    zone_spread_max_skew: int | None = None  # topology spread over zones, DoNotSchedule
    hostname_spread_max_skew: int | None = None  # topology spread over nodes, DoNotSchedule
    node_selector: Labels = ()
    tolerations: tuple[Toleration, ...] = ()
    labels: Labels = ()
    priority: int = 0
    required_affinity: tuple[NodeSelectorTerm, ...] = ()
    # Built once: a run creates up to hundreds of thousands of pods from one template.
    _containers: tuple[Container, ...] = field(init=False, repr=False, compare=False)
    _tolerations: tuple[Toleration, ...] = field(init=False, repr=False, compare=False)
    _spread: tuple[TopologySpread, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        requests = Resources.of({CPU: self.cpu_m, MEMORY: self.memory, GPU: self.gpu})
        # One tuple shared by every pod of the template: the planner groups pods and sums
        # requests by spec, and shared objects make those comparisons pointer-cheap.
        object.__setattr__(self, "_containers", (Container("main", requests),))
        tolerations = self.tolerations
        if self.tolerate_spot and SPOT_TOLERATION not in tolerations:
            tolerations = (*tolerations, SPOT_TOLERATION)
        object.__setattr__(self, "_tolerations", tolerations)
        selector = LabelSelector(match_labels=self.labels)
        spread = [
            TopologySpread(skew, key, "DoNotSchedule", selector)
            for skew, key in (
                (self.zone_spread_max_skew, ZONE_LABEL),
                (self.hostname_spread_max_skew, HOSTNAME_LABEL),
            )
            if skew is not None
        ]
        object.__setattr__(self, "_spread", tuple(spread))

    def pod(self, name: str, namespace: str, owner: str) -> Pod:
        """A new pending pod; ``owner`` is ``Kind/name`` ("" for a bare pod)."""
        return Pod(
            name=name,
            namespace=namespace,
            uid=f"uid-{namespace}-{name}",
            owner=owner,
            labels=self.labels,
            containers=self._containers,
            node_selector=self.node_selector,
            required_affinity=self.required_affinity,
            tolerations=self._tolerations,
            topology_spread=self._spread,
            priority=self.priority,
        )


@dataclass(frozen=True, slots=True)
class Deployment:
    """Replicas follow ``replicas(t)``, checked every ``sample_every`` seconds; ``noise`` is the
    relative standard deviation of a Gaussian factor applied to each check (0: none)."""

    name: str
    namespace: str
    template: PodTemplate
    replicas: Curve
    sample_every: float = 30.0
    noise: float = 0.0


@dataclass(frozen=True, slots=True)
class Batch:
    """``pods`` pods submitted at ``at`` (and again every ``every`` seconds, ``waves`` times in
    all); each runs ``run_seconds`` once it is running, then completes."""

    name: str
    namespace: str
    template: PodTemplate
    at: float
    pods: int
    run_seconds: float
    every: float = 0.0
    waves: int = 1

    def wave_times(self) -> tuple[float, ...]:
        return tuple(self.at + k * self.every for k in range(self.waves))


@dataclass(frozen=True, slots=True)
class TracePod:
    """One pod of a replayed trace: submitted at ``submit_at``, deleted at ``finish_at``."""

    name: str
    submit_at: float
    finish_at: float
    template: PodTemplate


@dataclass(frozen=True, slots=True)
class TraceReplay:
    """Pods replayed from a trace (``simulator.traces.load_openb``), sorted by submit time."""

    name: str
    namespace: str
    pods: tuple[TracePod, ...]

    @property
    def end(self) -> float:
        """The last submission or deletion time (0 for an empty replay)."""
        return max((max(p.submit_at, p.finish_at) for p in self.pods), default=0.0)


Workload = Deployment | Batch | TraceReplay


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything one run is given. ``vm_overrides`` are catalog overrides (``load_catalog``);
    ``sample_every_s`` is the period of the cluster samples in the report."""

    name: str
    duration: float
    pools: tuple[AgentPool, ...]
    workloads: tuple[Workload, ...] = ()
    description: str = ""
    start: datetime = DEFAULT_START
    region: str = "eastus"
    seed: int = 0
    vm_overrides: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    loop: LoopConfig = LoopConfig()
    loop_interval_s: float = 10.0
    sample_every_s: float = 60.0
    cloud: CloudModel = CloudModel()
    pdbs: tuple[PodDisruptionBudget, ...] = ()  # PodDisruptionBudgets the cluster enforces

    def catalog(self) -> Catalog:
        """The VM-size catalog with this scenario's overrides applied."""
        return load_catalog(self.vm_overrides or None)
