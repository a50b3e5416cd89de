"""Kubernetes pod, node and PodDisruptionBudget JSON -> the subset surge reads, and which pods
matter.

Callers: ``kube.cache`` classifies every listed or watched object here; ``control.kubeobjects``
decodes the subset into model objects with the snapshot readers; ``control.capture``
(``surge snapshot``) writes the subset as snapshot entries. Pure: dicts in, dicts out, no
``kubernetes`` import.

The subset is exactly the shape of the snapshot format's pod, node and budget entries
(docs/snapshot.md). The API server has already validated these objects, so fields the planner
does not model are dropped here rather than refused, and the strict snapshot readers only ever
see fields they know. Where Kubernetes has a field the snapshot format lacks but which changes
placement (``matchLabelKeys`` of a spread constraint), it is folded into one the format has.
Annotations are cut down to the keys scale-down reads: anything else (checksums, restart stamps,
tool bookkeeping) would make each replica's spec unique and defeat the decoder's sharing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from autoscaler.model.disruption import SAFE_TO_EVICT, SCALE_DOWN_DISABLED, SCALE_DOWN_MARK
from autoscaler.model.labels import AGENTPOOL_LABEL, LEGACY_AGENTPOOL_LABEL
from autoscaler.model.pod import MIRROR_ANNOTATION

PENDING = "pending"
BOUND = "bound"
IGNORED = "ignored"
DEFAULT_SCHEDULERS = ("default-scheduler",)
TERMINAL_PHASES = ("Succeeded", "Failed")

Json = dict[str, Any]

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_NODE_AXES = ("cpu", "memory", "pods")
# The only annotations any reader looks at (``planner.scaledown_rules``, ``model.pod``, and
# ``control.scaledown_recovery`` for surge's own cordon mark).
POD_ANNOTATIONS = (*SAFE_TO_EVICT, MIRROR_ANNOTATION)
NODE_ANNOTATIONS = (*SCALE_DOWN_DISABLED, SCALE_DOWN_MARK)


def _dict(value: object) -> Json:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones."""
    meta = _dict(obj.get("metadata"))
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def pod_role(obj: Mapping[str, Any], schedulers: Collection[str] = DEFAULT_SCHEDULERS) -> str:
    """``BOUND``, ``PENDING`` or ``IGNORED``.

    Bound pods hold node capacity until they end, terminating or not (kube-scheduler counts
    them too). A pod is pending for the autoscaler only once its scheduler (one of
    ``schedulers``) has tried and failed: ``PodScheduled=False`` with reason ``Unschedulable``.
    A pod the scheduler has not looked at yet, or that is being deleted, needs no node.
    """
    status = _dict(obj.get("status"))
    if status.get("phase") in TERMINAL_PHASES:
        return IGNORED
    spec = _dict(obj.get("spec"))
    if spec.get("nodeName"):
        return BOUND
    if _dict(obj.get("metadata")).get("deletionTimestamp"):
        return IGNORED
    if (spec.get("schedulerName") or "default-scheduler") not in schedulers:
        return IGNORED
    for condition in _list(status.get("conditions")):
        if isinstance(condition, dict) and condition.get("type") == "PodScheduled":
            unschedulable = condition.get("reason") == "Unschedulable"
            return PENDING if condition.get("status") == "False" and unschedulable else IGNORED
    return IGNORED


def node_pool(labels: Mapping[str, str]) -> str | None:
    """The AKS agent pool of a node; older node images carry only the legacy label."""
    return labels.get(AGENTPOOL_LABEL) or labels.get(LEGACY_AGENTPOOL_LABEL) or None


def node_ready(obj: Mapping[str, Any]) -> bool:
    for condition in _list(_dict(obj.get("status")).get("conditions")):
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def node_entry(obj: Mapping[str, Any]) -> Json:
    """A node as a snapshot ``nodes[]`` entry. Axes a node has not reported yet read as zero,
    which is what a just-registered node offers."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    labels = _dict(meta.get("labels"))
    allocatable = dict(_dict(_dict(obj.get("status")).get("allocatable")))
    for axis in _NODE_AXES:
        allocatable.setdefault(axis, "0")
    taints = [
        {k: t[k] for k in ("key", "value", "effect", "timeAdded") if t.get(k) is not None}
        for t in _list(spec.get("taints"))
        if isinstance(t, dict)
    ]
    entry: Json = {
        "name": meta.get("name"),
        "pool": node_pool(labels),
        "labels": labels,
        "taints": taints,
        "allocatable": allocatable,
        "ready": node_ready(obj),
        "unschedulable": bool(spec.get("unschedulable")),
    }
    annotations = _kept(_dict(meta.get("annotations")), NODE_ANNOTATIONS)
    if annotations:
        entry["annotations"] = annotations
    return entry


def _kept(annotations: Mapping[str, Any], keys: tuple[str, ...]) -> Json:
    return {k: annotations[k] for k in keys if k in annotations} if annotations else {}


def controller_of(meta: Mapping[str, Any]) -> Json | None:
    """The controlling owner reference as ``{kind, name}``; pods are grouped by it."""
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return {"kind": ref.get("kind"), "name": ref.get("name")}
    return None


# The pod half is on the sync's hot path (150,000 pods): plain ``get``s, no per-field helper
# calls. Objects come from the API server, so types are right; a malformed one raises
# AttributeError or TypeError, which the cache treats like an unreadable pod.

def _container(container: Mapping[str, Any], init: bool) -> Json:
    entry: Json = {"name": container.get("name")}
    resources = container.get("resources")
    if resources:
        kept = {k: resources[k] for k in ("requests", "limits") if resources.get(k)}
        if kept:
            entry["resources"] = kept
    if init and container.get("restartPolicy") == "Always":
        entry["restartPolicy"] = "Always"
    return entry


def _selector(value: Mapping[str, Any]) -> Json:
    return {k: value[k] for k in ("matchLabels", "matchExpressions") if value.get(k)}


def _pod_term(term: Mapping[str, Any]) -> Json:
    """A pod (anti-)affinity term without ``namespaceSelector`` and ``(mis)matchLabelKeys``,
    which the planner does not model: it sees the term as scoped to the listed namespaces."""
    entry: Json = {"topologyKey": term.get("topologyKey")}
    if term.get("labelSelector") is not None:
        entry["labelSelector"] = _selector(term["labelSelector"])
    if term.get("namespaces"):
        entry["namespaces"] = term["namespaces"]
    return entry


def _affinity(affinity: Mapping[str, Any]) -> Json | None:
    """Required terms only: preferred ones never restrict placement."""
    entry: Json = {}
    node = (affinity.get("nodeAffinity") or {}).get(_REQUIRED) or {}
    terms = [
        {k: term[k] for k in ("matchExpressions", "matchFields") if term.get(k)}
        for term in node.get("nodeSelectorTerms") or ()
    ]
    if terms:
        entry["nodeAffinity"] = {_REQUIRED: {"nodeSelectorTerms": terms}}
    for kind in ("podAffinity", "podAntiAffinity"):
        required = [_pod_term(t) for t in (affinity.get(kind) or {}).get(_REQUIRED) or ()]
        if required:
            entry[kind] = {_REQUIRED: required}
    return entry or None


def _spread(constraint: Mapping[str, Any], labels: Mapping[str, str]) -> Json:
    """One spread constraint; ``matchLabelKeys`` narrows the selector to the pod's own values
    for those keys (how kube-scheduler applies it, e.g. per ``pod-template-hash``)."""
    entry: Json = {
        k: constraint[k]
        for k in ("maxSkew", "topologyKey", "whenUnsatisfiable", "minDomains")
        if constraint.get(k) is not None
    }
    raw = constraint.get("labelSelector")
    selector = None if raw is None else _selector(raw)
    keys = [k for k in constraint.get("matchLabelKeys") or () if k in labels]
    if keys:
        selector = dict(selector or {})
        selector["matchLabels"] = {**selector.get("matchLabels", {}),
                                   **{k: labels[k] for k in keys}}
    if selector is not None:
        entry["labelSelector"] = selector
    return entry


_TOLERATION_KEYS = frozenset(("key", "operator", "value", "effect", "tolerationSeconds"))


def pod_entry(obj: Mapping[str, Any]) -> Json:
    """A pod as a snapshot ``pods[]`` entry: identity, owner, binding and scheduling spec."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    entry: Json = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace") or "default",
        "containers": [_container(c, False) for c in spec.get("containers") or ()],
    }
    if meta.get("uid"):
        entry["uid"] = meta["uid"]
    if meta.get("ownerReferences"):
        owner = controller_of(meta)
        if owner is not None:
            entry["owner"] = owner
    labels = meta.get("labels") or {}
    if labels:
        entry["labels"] = labels
    if spec.get("nodeName"):
        entry["nodeName"] = spec["nodeName"]
    if spec.get("priority") is not None:
        entry["priority"] = spec["priority"]
    if spec.get("initContainers"):
        entry["initContainers"] = [_container(c, True) for c in spec["initContainers"]]
    for key in ("overhead", "nodeSelector"):
        if spec.get(key):
            entry[key] = spec[key]
    if spec.get("affinity"):
        affinity = _affinity(spec["affinity"])
        if affinity is not None:
            entry["affinity"] = affinity
    if spec.get("tolerations"):
        entry["tolerations"] = [
            {k: v for k, v in t.items() if k in _TOLERATION_KEYS and v is not None}
            for t in spec["tolerations"]
        ]
    if spec.get("topologySpreadConstraints"):
        entry["topologySpreadConstraints"] = [
            _spread(c, labels) for c in spec["topologySpreadConstraints"]
        ]
    if spec.get("volumes"):
        volumes = [_volume(v) for v in spec["volumes"]
                   if "persistentVolumeClaim" in v or "emptyDir" in v]
        if volumes:
            entry["volumes"] = volumes
    if spec.get("terminationGracePeriodSeconds") is not None:
        entry["terminationGracePeriodSeconds"] = spec["terminationGracePeriodSeconds"]
    annotations = meta.get("annotations")
    # Most pods carry annotations and none of these: one C-level test, no dict built.
    if annotations and not annotations.keys().isdisjoint(POD_ANNOTATIONS):
        entry["annotations"] = {k: annotations[k] for k in POD_ANNOTATIONS if k in annotations}
    return entry


def _volume(volume: Mapping[str, Any]) -> Json:
    """A claim (placement: its volume's zone) or an emptyDir (scale-down: a disk-backed one
    loses its data with the node); the caller drops other kinds, which matter to neither."""
    claim = volume.get("persistentVolumeClaim")
    if claim is not None:
        return {"name": volume.get("name"),
                "persistentVolumeClaim": {"claimName": claim.get("claimName")}}
    empty = volume["emptyDir"] or {}
    return {"name": volume.get("name"),
            "emptyDir": {k: empty[k] for k in ("medium", "sizeLimit") if empty.get(k)}}


def pdb_entry(obj: Mapping[str, Any]) -> Json | None:
    """A ``policy/v1`` PodDisruptionBudget as a snapshot ``podDisruptionBudgets[]`` entry, or
    None for one that selects no pod (a null selector, in policy/v1).

    ``disruptionsAllowed`` is the disruption controller's count, kept only when its status
    describes the current spec (``observedGeneration``): a stale one is left out and the
    budget is computed from the pods in view. A budget with neither ``minAvailable`` nor
    ``maxUnavailable`` (which the API server accepts) is written as ``minAvailable: 100%``:
    the disruption controller allows such a budget no disruption, and so does this reading
    when no current status is there to say it."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    if spec.get("selector") is None:
        return None
    entry: Json = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace") or "default",
        "selector": _selector(_dict(spec["selector"])),
    }
    budget = {k: spec[k] for k in ("minAvailable", "maxUnavailable") if spec.get(k) is not None}
    entry.update(budget or {"minAvailable": "100%"})
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or (observed is not None and observed >= generation)
    if status.get("disruptionsAllowed") is not None and current:
        entry["disruptionsAllowed"] = status["disruptionsAllowed"]
    return entry
