"""The agent pool reader of the snapshot loader: one ``pools[]`` entry, as AKS describes it.

Callers: ``control.snapshot`` reads each entry of ``pools`` with ``read_pool``, and
``simulator.settings`` reads scenario pools with it; ``control.capture`` caps pool sizes at
``MAX_POOL_NODES``; ``control.snapshot`` checks zone labels against ``AKS_ZONE``. Values are read
through ``control.snapshot_fields``, so every error names the JSON path of the offending value.
The format is documented in docs/snapshot.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from autoscaler.control.snapshot_fields import Fields, as_enum, as_text, label_value, qualified_name
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import labels_of
from autoscaler.model.node import Taint
from autoscaler.model.pod import TaintEffect
from autoscaler.model.pool import AgentPool, PoolMode, Priority

MAX_POOL_NODES = 1000  # AKS caps an agent pool at 1000 nodes; also the default maxCount
AKS_ZONE = re.compile(r"[1-9][0-9]?")  # an AKS zone number, also the end of a zone label
_POOL_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")  # AKS agent pool naming rule
_K8S_VERSION = re.compile(r"[0-9]+\.[0-9]+(?:\.[0-9]+)?")
Choice = TypeVar("Choice", Priority, PoolMode)
POOL_FIELDS = (
    "minCount", "maxCount", "zones", "priority", "mode", "nodeLabels", "nodeTaints", "maxPods",
    "kubernetesVersion", "enableAutoScaling", "osType",
)


def read_pool(
    value: object,
    path: str,
    *,
    count_required: bool = True,
    labels_key: str = "nodeLabels",
    taints_key: str = "nodeTaints",
    zone: Callable[[object, str], str] | None = None,
) -> AgentPool:
    """One agent pool entry, as AKS describes it. Also the scenario files' reader
    (``simulator.settings``), which names labels and taints ``labels``/``taints``, lets
    ``count`` default to 0 and reads zones written as numbers (``zone``)."""
    renamed = {"nodeLabels": labels_key, "nodeTaints": taints_key}
    optional = tuple(renamed.get(f, f) for f in POOL_FIELDS)
    required: tuple[str, ...] = ("name", "vmSize")
    if count_required:
        required += ("count",)
    else:
        optional += ("count",)
    fields = Fields(value, path, required=required, optional=optional)
    name = fields.text("name")
    if _POOL_NAME.fullmatch(name) is None:
        rule = "1-12 lowercase letters and digits, starting with a letter"
        raise ValidationError(fields.at("name"), f"invalid pool name {name!r} ({rule})")
    count = fields.integer("count", 0, 0, MAX_POOL_NODES)
    min_count = fields.integer("minCount", 0, 0, MAX_POOL_NODES)
    max_count = fields.integer("maxCount", MAX_POOL_NODES, 0, MAX_POOL_NODES)
    for floor, floor_value in (("count", count), ("minCount", min_count)):
        if max_count < floor_value:
            reason = f"{max_count} is less than {floor} {floor_value}"
            raise ValidationError(fields.at("maxCount"), reason)
    zones: list[str] = []
    for item, at in fields.items("zones"):
        number = zone(item, at) if zone is not None else as_text(item, at)
        if AKS_ZONE.fullmatch(number) is None:
            raise ValidationError(at, f"invalid zone {number!r} (AKS zone numbers: '1', '2', '3')")
        if number in zones:
            raise ValidationError(at, f"duplicate zone {number!r}")
        zones.append(number)
    version = fields.text("kubernetesVersion", "1.30")
    if _K8S_VERSION.fullmatch(version) is None:
        raise ValidationError(fields.at("kubernetesVersion"), f"invalid version {version!r}")
    os_type = fields.text("osType", "Linux")
    if os_type not in ("Linux", "Windows"):
        raise ValidationError(fields.at("osType"), f"{os_type!r} is not one of: Linux, Windows")
    return AgentPool(
        name=name,
        vm_size=fields.text("vmSize"),
        count=count,
        min_count=min_count,
        max_count=max_count,
        zones=tuple(zones),
        priority=_enum_field(fields, "priority", Priority, Priority.REGULAR),
        mode=_enum_field(fields, "mode", PoolMode, PoolMode.USER),
        labels=labels_of(fields.labels(labels_key)),
        taints=tuple(aks_taint(v, p) for v, p in fields.items(taints_key)),
        max_pods=fields.integer("maxPods", 30, 1, 250),
        kubernetes_version=version,
        os_type=os_type,
        enable_autoscaling=fields.boolean("enableAutoScaling", False),
    )


def _enum_field(fields: Fields, key: str, cls: type[Choice], default: Choice) -> Choice:
    return default if not fields.has(key) else as_enum(cls, fields.get(key), fields.at(key))


def aks_taint(value: object, path: str) -> Taint:
    """AKS ``nodeTaints`` string form: ``key=value:Effect`` or ``key:Effect``."""
    text = as_text(value, path)
    head, sep, effect = text.rpartition(":")
    if not sep:
        raise ValidationError(path, f"expected 'key=value:Effect', got {text!r}")
    key, _, taint_value = head.partition("=")
    qualified_name(key, path)
    return Taint(key, label_value(taint_value, path), as_enum(TaintEffect, effect, path))
