"""Static scheduling predicates with kube-scheduler semantics: requests, labels, taints, fit.

Callers: ``planner.encode`` (the group x option compatibility matrix and the reasons attached to
unplaceable groups) and the simulator's scheduler (``simulator``'s SimCluster binding pods). Both
use these functions so that the planner never promises a placement the scheduler would refuse.

Each predicate mirrors one kube-scheduler filter plugin (NodeResourcesFit, NodeAffinity,
TaintToleration, VolumeZone/VolumeBinding, PodTopologySpread, InterPodAffinity); the
docstrings name it. All are pure functions of their arguments. Topology helpers take counts the
caller has gathered, so the planner (arrays) and the simulator (objects) can share them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from autoscaler.model.labels import (
    HOSTNAME_LABEL,
    ZONE_LABEL,
    LabelSelector,
    Operator,
    Requirement,
)
from autoscaler.model.node import Taint
from autoscaler.model.pod import AntiAffinity, Pod, TaintEffect, Toleration
from autoscaler.model.quantity import format_units
from autoscaler.model.resources import BASE_AXES, PODS, Resources

# Operators a metav1.LabelSelector accepts; Gt/Lt exist only in node-selector requirements.
_LABEL_SELECTOR_OPERATORS = frozenset(
    {Operator.IN, Operator.NOT_IN, Operator.EXISTS, Operator.DOES_NOT_EXIST}
)
# Go's strconv.ParseInt(s, 10, 64): optional sign, ASCII digits, no spaces or underscores.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_BLOCKING_EFFECTS = frozenset({TaintEffect.NO_SCHEDULE, TaintEffect.NO_EXECUTE})


# --- requests -------------------------------------------------------------------------------


def effective_requests(pod: Pod) -> Resources:
    """The pod's effective request, as kube-scheduler's NodeResourcesFit plugin computes it.

    Per resource: the larger of the steady phase (all regular containers plus all sidecars) and
    the initialisation peak (each regular init container plus the sidecars declared before it,
    since init containers run one at a time next to the sidecars already started), plus the
    pod overhead (RuntimeClass). A sidecar's own start-up is covered by the steady phase.
    The ``pods`` axis is then set to exactly 1: every pod takes one slot of the node's pod
    capacity whatever its containers say.

    Ref: kubernetes.io "Effective Pod requests and limits"; KEP-753 (sidecar containers),
    section "Resources calculation for scheduling and pod admission".
    """
    if not pod.init_containers and not pod.overhead and len(pod.containers) == 1:
        total = pod.containers[0].requests  # the common case, without the sums below
        return Resources.of([*((n, v) for n, v in total.items_ if n != PODS), (PODS, 1)])
    steady = Resources()
    for container in pod.containers:
        steady = steady + container.requests
    started_sidecars = Resources()
    init_peak = Resources()
    for init in pod.init_containers:
        if init.sidecar:
            started_sidecars = started_sidecars + init.requests
        else:
            init_peak = init_peak.maximum(init.requests + started_sidecars)
    total = (steady + started_sidecars).maximum(init_peak) + pod.overhead
    return Resources.of([*((n, v) for n, v in total.items() if n != PODS), (PODS, 1)])


def insufficient(requests: Resources, free: Resources) -> str | None:
    """None if every requested amount is at most the free amount, else why not (first axis).

    As the NodeResourcesFit filter plugin: a request of zero never fails, an axis missing from
    ``free`` counts as zero. Axes are checked in the planner's order (cpu, memory, pods,
    nvidia.com/gpu, ephemeral-storage, then extended resources by name) so the reason is
    deterministic, e.g. ``"cpu 96000m > 63260m allocatable"``.
    """
    extended = sorted(name for name in requests if name not in BASE_AXES)
    for axis in (*BASE_AXES, *extended):
        wanted = requests.get_units(axis)
        available = free.get_units(axis)
        if wanted > 0 and wanted > available:
            have = format_units(axis, available)
            return f"{axis} {format_units(axis, wanted)} > {have} allocatable"
    return None


# --- labels ---------------------------------------------------------------------------------


def _int64(text: str) -> int | None:
    if _INTEGER.fullmatch(text) is None:
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def requirement_matches(req: Requirement, labels: Mapping[str, str]) -> bool:
    """Whether node ``labels`` satisfy one node-selector requirement (NodeAffinity semantics).

    ``In``: the label is present and its value is listed. ``NotIn``: the label is absent or its
    value is not listed. ``Exists`` / ``DoesNotExist``: presence of the key. ``Gt`` / ``Lt``:
    ``values`` must hold exactly one integer and the label must be present and parse as an
    integer, compared numerically; anything else is False (the API server treats such a
    requirement as unsatisfiable). Ref: kubernetes.io "Assigning Pods to Nodes", node affinity;
    API reference NodeSelectorRequirement.
    """
    value = labels.get(req.key)
    match req.operator:
        case Operator.IN:
            return value is not None and value in req.values
        case Operator.NOT_IN:
            return value is None or value not in req.values
        case Operator.EXISTS:
            return value is not None
        case Operator.DOES_NOT_EXIST:
            return value is None
        case Operator.GT | Operator.LT:
            if value is None or len(req.values) != 1:
                return False
            bound, actual = _int64(req.values[0]), _int64(value)
            if bound is None or actual is None:
                return False
            return actual > bound if req.operator == Operator.GT else actual < bound
    return False


def label_selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy a ``metav1.LabelSelector``: matchLabels AND matchExpressions.

    Expressions use In, NotIn (true when the key is absent), Exists, DoesNotExist. An empty
    selector matches everything. ``Gt``/``Lt`` are not valid in a label selector; the API
    server would reject it, so such a selector matches nothing here.
    Ref: kubernetes.io "Labels and Selectors", set-based requirements.
    """
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    for expression in selector.match_expressions:
        if expression.operator not in _LABEL_SELECTOR_OPERATORS:
            return False
        if not requirement_matches(expression, labels):
            return False
    return True


# --- taints ---------------------------------------------------------------------------------


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Whether one toleration tolerates one taint (core/v1 Toleration matching).

    An unset effect matches every effect; an empty key matches every key (the API requires
    operator Exists then, giving "tolerate everything"); ``Exists`` ignores the value;
    ``Equal`` (also the meaning of an empty operator) compares values. Any other operator
    tolerates nothing. Ref: kubernetes.io "Taints and Tolerations"; API reference Toleration.
    """
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    if toleration.operator in ("Equal", ""):
        return toleration.value == taint.value
    return False


def untolerated_taint(tolerations: Sequence[Toleration], taints: Sequence[Taint]) -> Taint | None:
    """The first NoSchedule/NoExecute taint no toleration tolerates, else None.

    As the TaintToleration filter plugin: PreferNoSchedule only affects scoring and never
    blocks a placement. Ref: kubernetes.io "Taints and Tolerations".
    """
    for taint in taints:
        if taint.effect not in _BLOCKING_EFFECTS:
            continue
        if not any(tolerates(toleration, taint) for toleration in tolerations):
            return taint
    return None


def _taint_text(taint: Taint) -> str:
    # Same shape as `kubectl describe node` prints taints.
    head = f"{taint.key}={taint.value}" if taint.value else taint.key
    return f"{head}:{taint.effect}"


# --- whole-node static fit ------------------------------------------------------------------


def node_mismatch(pod: Pod, labels: Mapping[str, str], taints: Sequence[Taint]) -> str | None:
    """None if the static predicates admit ``pod`` on a node with ``labels`` and ``taints``.

    Otherwise a short reason, from the first failing check in this order:

    1. ``nodeSelector`` (every pair must be a node label): ``"node selector disktype=ssd not
       matched"``.
    2. Required node affinity, as the NodeAffinity plugin: terms are OR-ed, the expressions of
       a term AND-ed, a term without expressions matches nothing; an empty ``required_affinity``
       means no constraint. ``"required node affinity not matched"``.
    3. Zones of bound volumes (VolumeZone / VolumeBinding plugins, PV node affinity): when
       ``pod.volume_zones`` is not None the node's ``topology.kubernetes.io/zone`` must be one
       of them. ``"volume zone eastus-2 not in [eastus-1]"`` or ``"node has no zone label for
       bound volume"``.
    4. Topology spread with ``whenUnsatisfiable: DoNotSchedule``: PodTopologySpread filters out
       nodes without the constraint's topology key. ``"node lacks topology key <key>"``.
       (Skew depends on other pods: see ``spread_min`` and ``spread_headroom``.)
    5. Taints, as TaintToleration: ``"untolerated taint key=value:NoSchedule"``.

    Not checked here: resources (``insufficient``), cordoning and readiness (properties of a
    node, not of labels), pod anti-affinity (needs the node's pods).
    """
    for key, value in pod.node_selector:
        if labels.get(key) != value:
            return f"node selector {key}={value} not matched"
    if pod.required_affinity and not any(
        term.match_expressions
        and all(requirement_matches(req, labels) for req in term.match_expressions)
        for term in pod.required_affinity
    ):
        return "required node affinity not matched"
    if pod.volume_zones is not None:
        zone = labels.get(ZONE_LABEL)
        if zone is None:
            return "node has no zone label for bound volume"
        if zone not in pod.volume_zones:
            return f"volume zone {zone} not in [{', '.join(pod.volume_zones)}]"
    for spread in pod.topology_spread:
        if spread.when_unsatisfiable == "DoNotSchedule" and spread.topology_key not in labels:
            return f"node lacks topology key {spread.topology_key}"
    taint = untolerated_taint(pod.tolerations, taints)
    if taint is not None:
        return f"untolerated taint {_taint_text(taint)}"
    return None


# --- topology: spread and anti-affinity ------------------------------------------------------


def spread_min(counts: Mapping[str, int], eligible: Collection[str], min_domains: int) -> int:
    """The global minimum of a topology spread constraint (PodTopologySpread filter).

    ``counts`` maps a domain (topology value) to its matching pods; ``eligible`` are the domains
    of nodes the pod could use (by default nodes passing its node selector and required node
    affinity; taints are ignored, ``nodeTaintsPolicy: Ignore``). Eligible domains absent from
    ``counts`` count 0. With fewer eligible domains than ``min_domains`` the global minimum is
    0, which is what lets the scheduler, and the autoscaler, open new domains (KEP-3022,
    kubernetes.io "Pod Topology Spread Constraints", minDomains).
    """
    if len(eligible) < min_domains or not eligible:
        return 0
    return min(counts.get(domain, 0) for domain in eligible)


def spread_headroom(max_skew: int, domain_count: int, min_count: int) -> int:
    """How many more matching pods a domain holding ``domain_count`` may take, min held fixed.

    PodTopologySpread admits a pod into a domain while ``count + 1 - min <= maxSkew`` (the
    incoming pod matches its own selector, true for replicas of one owner), so the domain may
    take ``min + maxSkew - count`` more before the global minimum ``min_count`` rises. Never
    negative. Ref: kubernetes.io "Pod Topology Spread Constraints", maxSkew.
    """
    return max(0, min_count + max_skew - domain_count)


def selects(pod: Pod, selector: LabelSelector, namespace: str) -> bool:
    """Whether ``pod`` is counted by ``selector`` of a pod in ``namespace``.

    Topology spread counts only pods of the constraint owner's namespace whose labels match
    (PodTopologySpread). For anti-affinity terms with explicit namespaces use
    ``anti_affinity_term_selects``.
    """
    return pod.namespace == namespace and label_selector_matches(selector, dict(pod.labels))


def anti_affinity_term_selects(term: AntiAffinity, owner_namespace: str, pod: Pod) -> bool:
    """Whether a required anti-affinity ``term`` of a pod in ``owner_namespace`` selects ``pod``.

    As InterPodAffinity: the term applies to ``term.namespaces`` when set, else to the owner's
    own namespace (``namespaceSelector`` is not modelled).
    """
    namespaces = term.namespaces or (owner_namespace,)
    return pod.namespace in namespaces and label_selector_matches(
        term.label_selector, dict(pod.labels)
    )


def anti_affinity_blocks(pod: Pod, node_pods: Iterable[Pod]) -> bool:
    """Whether required pod anti-affinity forbids ``pod`` on a node already running ``node_pods``.

    As the InterPodAffinity filter plugin, both directions: a required term of ``pod`` selects
    a pod on the node, or (symmetry) a required term of a pod on the node selects ``pod``.

    Only terms with topology key ``kubernetes.io/hostname`` are handled, where the domain is
    the node itself; terms with any other key (zone, ...) are ignored by the planner, which may
    therefore be optimistic for zone-level anti-affinity. ``node_pods`` must not contain the
    pod being placed: an entry equal to ``pod`` is taken as another replica (which is what the
    planner means when it places copies of a group's representative pod).
    Ref: kubernetes.io "Assigning Pods to Nodes", inter-pod affinity and anti-affinity.
    """
    own_terms = [t for t in pod.anti_affinity if t.topology_key == HOSTNAME_LABEL]
    for other in node_pods:
        if any(anti_affinity_term_selects(t, pod.namespace, other) for t in own_terms):
            return True
        if any(
            t.topology_key == HOSTNAME_LABEL and anti_affinity_term_selects(t, other.namespace, pod)
            for t in other.anti_affinity
        ):
            return True
    return False
