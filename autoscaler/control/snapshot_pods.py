"""The pod reader of the snapshot loader: containers, volumes, tolerations, spread, ``PodReader``.

Callers: ``control.snapshot`` reads each entry of ``pods`` with one ``PodReader``, as do
``control.capture`` and ``control.kubeobjects`` for live pods (converted to the entry shape);
``control.snapshot_nodes`` reads node annotations with ``annotation_map``; ``simulator.loader``
reads scenario tolerations with ``toleration``. Selectors and affinity are read by
``control.snapshot_selectors``. Values are read through ``control.snapshot_fields``, so every
error names the JSON path of the offending value. The format is documented in docs/snapshot.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar, cast

from autoscaler.control.snapshot_fields import (
    INT32_MAX,
    Fields,
    as_enum,
    as_int,
    as_list,
    as_object,
    as_text,
    child,
    label_map,
    label_value,
    qualified_name,
)
from autoscaler.control.snapshot_selectors import affinity, label_selector
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import Labels, LabelSelector, labels_of
from autoscaler.model.pod import (
    AntiAffinity,
    Container,
    NodeSelectorTerm,
    Pod,
    TaintEffect,
    Toleration,
    TopologySpread,
)
from autoscaler.model.quantity import quantity_units
from autoscaler.model.resources import Resources


def toleration(value: object, path: str) -> Toleration:
    fields = Fields(
        value, path, optional=("key", "operator", "value", "effect", "tolerationSeconds")
    )
    key = fields.text("key", nonempty=False)
    if key:
        qualified_name(key, fields.at("key"))
    operator = fields.text("operator", nonempty=False) or "Equal"
    if operator not in ("Equal", "Exists"):
        raise ValidationError(fields.at("operator"), f"{operator!r} is not one of: Equal, Exists")
    value_text = label_value(fields.text("value", nonempty=False), fields.at("value"))
    if operator == "Exists" and value_text:
        raise ValidationError(fields.at("value"), "must be empty when operator is Exists")
    if not key and operator != "Exists":
        raise ValidationError(fields.at("operator"), "must be Exists when key is empty")
    effect = None
    if fields.text("effect", nonempty=False):
        effect = as_enum(TaintEffect, fields.get("effect"), fields.at("effect"))
    if fields.has("tolerationSeconds"):
        as_int(fields.get("tolerationSeconds"), fields.at("tolerationSeconds"), -(2**63))
        if effect is not TaintEffect.NO_EXECUTE:
            raise ValidationError(fields.at("tolerationSeconds"), "only valid with NoExecute")
    return Toleration(key, operator, value_text, effect)


def topology_spread(value: object, path: str) -> TopologySpread:
    fields = Fields(
        value,
        path,
        required=("maxSkew", "topologyKey", "whenUnsatisfiable"),
        optional=("labelSelector", "minDomains"),
    )
    when = fields.text("whenUnsatisfiable")
    if when not in ("DoNotSchedule", "ScheduleAnyway"):
        raise ValidationError(
            fields.at("whenUnsatisfiable"), f"{when!r} is not one of: DoNotSchedule, ScheduleAnyway"
        )
    if fields.has("minDomains") and when != "DoNotSchedule":
        raise ValidationError(fields.at("minDomains"), "only valid with DoNotSchedule")
    selector = LabelSelector()
    if fields.has("labelSelector"):
        selector = label_selector(fields.get("labelSelector"), fields.at("labelSelector"))
    return TopologySpread(
        max_skew=fields.integer("maxSkew", 1, 1, INT32_MAX),
        topology_key=qualified_name(fields.get("topologyKey"), fields.at("topologyKey")),
        when_unsatisfiable=when,
        label_selector=selector,
        min_domains=fields.integer("minDomains", 1, 1, INT32_MAX),
    )


def container(value: object, path: str, *, init: bool) -> Container:
    """A container's requests; a resource with a limit but no request requests its limit,
    as the API server defaults it."""
    optional = ("resources", "restartPolicy") if init else ("resources",)
    fields = Fields(value, path, required=("name",), optional=optional)
    name = as_text(fields.get("name"), fields.at("name"))
    sidecar = False
    if fields.has("restartPolicy"):
        if fields.get("restartPolicy") != "Always":
            raise ValidationError(fields.at("restartPolicy"), "only 'Always' is allowed")
        sidecar = True
    if not fields.has("resources"):
        return Container(name, Resources(), sidecar)
    resources = Fields(fields.get("resources"), fields.at("resources"),
                       optional=("requests", "limits"))
    requests, limits = resources.resources("requests"), resources.resources("limits")
    for resource, limit in limits.items():
        if resource in requests and requests[resource] > limit:
            at = child(resources.at("requests"), resource)
            raise ValidationError(at, f"request exceeds the limit of {resource}")
    defaulted = {axis: amount for axis, amount in limits.items() if axis not in requests}
    return Container(name, requests + Resources.of(defaulted), sidecar)


def volume_claims(fields: Fields) -> tuple[str, ...]:
    """Names of the PersistentVolumeClaims the pod mounts (see ``volumes``)."""
    return volumes(fields)[0]


def volumes(fields: Fields) -> tuple[tuple[str, ...], bool]:
    """(claim names, whether an ``emptyDir`` that is not memory-backed is mounted).

    Only claims matter to placement and only disk-backed emptyDirs to scale-down (their data
    dies with the node); other volume kinds are not modelled."""
    claims: list[str] = []
    names: set[str] = set()
    local = False
    for item, at in fields.items("volumes"):
        kinds = ("persistentVolumeClaim", "emptyDir")
        volume = Fields(item, at, required=("name",), optional=kinds)
        name = as_text(volume.get("name"), volume.at("name"))
        if name in names:
            raise ValidationError(volume.at("name"), f"duplicate volume name {name!r}")
        names.add(name)
        if volume.has("persistentVolumeClaim"):
            claim = Fields(volume.get("persistentVolumeClaim"), volume.at("persistentVolumeClaim"),
                           required=("claimName",), optional=("readOnly",))
            claim.boolean("readOnly", False)
            claims.append(as_text(claim.get("claimName"), claim.at("claimName")))
        if volume.has("emptyDir"):
            empty = Fields(volume.get("emptyDir"), volume.at("emptyDir"),
                           optional=("medium", "sizeLimit"))
            medium = empty.text("medium", "", nonempty=False)
            if medium not in ("", "Memory"):
                raise ValidationError(empty.at("medium"), f"{medium!r} is not one of: '', Memory")
            if empty.has("sizeLimit"):
                quantity_units("memory", empty.get("sizeLimit"), empty.at("sizeLimit"))
            local = local or medium != "Memory"
    return tuple(claims), local


POD_FIELDS = (
    "uid", "owner", "labels", "nodeName", "priority", "initContainers", "overhead",
    "nodeSelector", "affinity", "tolerations", "topologySpreadConstraints", "volumes",
    "namespace", "annotations", "terminationGracePeriodSeconds",
)
_Affinity = tuple[tuple[NodeSelectorTerm, ...], tuple[AntiAffinity, ...], bool]
T = TypeVar("T")


def _containers(value: object, path: str) -> tuple[Container, ...]:
    return tuple(container(v, p, init=False) for v, p in as_list(value, path))


def _init_containers(value: object, path: str) -> tuple[Container, ...]:
    return tuple(container(v, p, init=True) for v, p in as_list(value, path))


def _each(parse: Callable[[object, str], T]) -> Callable[[object, str], tuple[T, ...]]:
    return lambda value, path: tuple(parse(v, p) for v, p in as_list(value, path))


_TOLERATIONS = _each(toleration)
_SPREAD = _each(topology_spread)


class PodReader:
    """Reads ``pods[]`` entries of one snapshot.

    The replicas of one owner repeat the same containers, tolerations, constraints and labels,
    and a JSON value that parsed once parses to the same result at any path. So parsed parts
    are remembered by their JSON text (``repr``, which tells ``1``, ``1.0``, ``true`` and
    ``"1"`` apart): a 100k-pod snapshot loads in a few seconds. Errors are unaffected: a value
    is always parsed, at its own path, the first time it is seen.
    """

    def __init__(self, claim_zones: Mapping[tuple[str, str], tuple[str, ...]]) -> None:
        self.claim_zones = claim_zones
        self._seen: dict[tuple[str, str], object] = {}

    def _part(
        self, fields: Fields, key: str, parse: Callable[[object, str], T], default: T
    ) -> T:
        raw = fields.get(key)
        if raw is None:
            return default
        memo = (key, repr(raw))
        if memo not in self._seen:
            self._seen[memo] = parse(raw, fields.at(key))
        return cast(T, self._seen[memo])

    def read(self, value: object, path: str) -> tuple[Pod, bool]:
        """One entry -> (Pod, whether it uses required podAffinity, which is ignored).

        The pod's ``volume_zones`` is the intersection of the zones of its claims listed in
        ``claim_zones`` (None when none is listed).
        """
        fields = Fields(value, path, required=("name", "containers"), optional=POD_FIELDS)
        name = as_text(fields.get("name"), fields.at("name"))
        namespace = fields.text("namespace", "default")
        owner = ""
        if fields.has("owner"):
            ref = Fields(fields.get("owner"), fields.at("owner"), required=("kind", "name"))
            owner = f"{ref.text('kind')}/{ref.text('name')}"
        no_containers: tuple[Container, ...] = ()
        containers = self._part(fields, "containers", _containers, no_containers)
        if not containers:
            raise ValidationError(fields.at("containers"), "must not be empty")
        inits = self._part(fields, "initContainers", _init_containers, no_containers)
        seen: set[str] = set()
        for index, item in enumerate(containers + inits):
            if item.name in seen:
                key, i = ("containers", index) if index < len(containers) else (
                    "initContainers", index - len(containers))
                reason = f"duplicate name {item.name!r}"
                raise ValidationError(f"{fields.at(key)}[{i}].name", reason)
            seen.add(item.name)
        no_affinity: _Affinity = ((), (), False)
        terms, anti, uses_pod_affinity = self._part(fields, "affinity", affinity, no_affinity)
        zones: tuple[str, ...] | None = None
        claims, local_storage = volumes(fields)
        for claim in claims:
            listed = self.claim_zones.get((namespace, claim))
            if listed is not None:
                zones = listed if zones is None else tuple(z for z in zones if z in listed)
        pod = Pod(
            name=name,
            namespace=namespace,
            uid=fields.text("uid"),
            owner=owner,
            labels=self._part(fields, "labels", _labels, ()),
            containers=containers,
            init_containers=inits,
            overhead=fields.resources("overhead"),
            node_selector=self._part(fields, "nodeSelector", _labels, ()),
            required_affinity=terms,
            tolerations=self._part(fields, "tolerations", _TOLERATIONS, ()),
            topology_spread=self._part(fields, "topologySpreadConstraints", _SPREAD, ()),
            anti_affinity=anti,
            volume_zones=zones,
            node_name=fields.text("nodeName") or None,
            priority=fields.integer("priority", 0, -(2**31), INT32_MAX),
            annotations=self._part(fields, "annotations", annotation_map, ()),
            local_storage=local_storage,
            grace_seconds=(
                fields.integer("terminationGracePeriodSeconds", 0, 0, 2**63 - 1)
                if fields.has("terminationGracePeriodSeconds") else None
            ),
        )
        return pod, uses_pod_affinity


def annotation_map(value: object, path: str) -> Labels:
    """A ``{key: value}`` object of annotations: keys as label keys, values any string."""
    return labels_of({
        qualified_name(key, child(path, key)): as_text(item, child(path, key), nonempty=False)
        for key, item in as_object(value, path).items()
    })


def _labels(value: object, path: str) -> Labels:
    return labels_of(label_map(value, path))

