"""A pod as the planner sees it: requests, placement constraints, owner and binding.

Callers: the snapshot loader and the kube adapter build these; ``planner.encode`` groups the
pending ones; the simulator's scheduler binds them. Only scheduling-relevant fields are kept, and
the few scale-down reads (annotations, owner kind, local storage: ``planner.scaledown_rules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from autoscaler.model.labels import Labels, LabelSelector, Requirement
from autoscaler.model.resources import Resources

# Set by the kubelet on the API copy of a static pod (kubernetes.io "Static Pods").
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


@dataclass(frozen=True, slots=True)
class Toleration:
    """``operator`` is ``Equal`` or ``Exists``; an empty key with Exists tolerates every taint;
    an empty effect matches every effect."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: TaintEffect | None = None


@dataclass(frozen=True, slots=True)
class Container:
    """A container's requests; ``sidecar`` marks an init container with restartPolicy Always."""

    name: str
    requests: Resources = Resources()
    sidecar: bool = False


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """Requirements AND-ed; the terms of a required node affinity are OR-ed."""

    match_expressions: tuple[Requirement, ...] = ()


@dataclass(frozen=True, slots=True)
class TopologySpread:
    """One ``topologySpreadConstraints`` entry (only DoNotSchedule restricts placement)."""

    max_skew: int
    topology_key: str
    when_unsatisfiable: str = "DoNotSchedule"
    label_selector: LabelSelector = LabelSelector()
    min_domains: int = 1


@dataclass(frozen=True, slots=True)
class AntiAffinity:
    """A *required* pod anti-affinity term (preferred terms do not restrict and are dropped)."""

    topology_key: str
    label_selector: LabelSelector = LabelSelector()
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    namespace: str = "default"
    uid: str = ""
    owner: str = ""  # "Kind/name" of the controlling owner, "" for a bare pod
    labels: Labels = ()
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    overhead: Resources = Resources()
    node_selector: Labels = ()
    required_affinity: tuple[NodeSelectorTerm, ...] = ()  # empty: no required node affinity
    tolerations: tuple[Toleration, ...] = ()
    topology_spread: tuple[TopologySpread, ...] = ()
    anti_affinity: tuple[AntiAffinity, ...] = ()
    volume_zones: tuple[str, ...] | None = None  # zones allowed by bound PVs; None: any
    node_name: str | None = None
    priority: int = 0
    annotations: Labels = ()  # sorted (key, value) pairs; read by scale-down only
    local_storage: bool = False  # mounts an emptyDir that is not memory-backed
    grace_seconds: int | None = None  # terminationGracePeriodSeconds; None: not known

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def owner_kind(self) -> str:
        """Kind of the controlling owner ("ReplicaSet", "DaemonSet", ...), "" for a bare pod."""
        return self.owner.partition("/")[0] if self.owner else ""

    @property
    def mirror(self) -> bool:
        """A static pod's mirror: the kubelet owns it, the API server cannot evict it."""
        return any(key == MIRROR_ANNOTATION for key, _ in self.annotations)

    @property
    def daemonset(self) -> bool:
        return self.owner_kind == "DaemonSet"
