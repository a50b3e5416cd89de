"""The node reader of the snapshot loader: one ``nodes[]`` entry -> a ``Node``.

Callers: ``control.snapshot`` reads each entry of ``nodes`` with ``read_node``;
``control.kubeobjects`` reads live nodes with it (converted to the entry shape), and
``control.capture`` checks the entries it writes. Values are read through
``control.snapshot_fields``, so every error names the JSON path of the offending value.
The format is documented in docs/snapshot.md.
"""

from __future__ import annotations

from collections.abc import Collection

from autoscaler.control.snapshot_fields import (
    Fields,
    as_enum,
    as_object,
    child,
    label_value,
    qualified_name,
    resources_of,
    timestamp,
)
from autoscaler.control.snapshot_pods import annotation_map
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import labels_of
from autoscaler.model.node import Node, Taint
from autoscaler.model.pod import TaintEffect


def read_node(value: object, path: str, pools: Collection[str] | None = None) -> Node:
    """One ``nodes[]`` entry; ``pools`` None accepts any pool name (the kube adapter's case:
    a node names its pool in a label, whatever the cloud reports)."""
    fields = Fields(
        value, path, required=("name", "allocatable"),
        optional=("pool", "labels", "taints", "ready", "unschedulable", "annotations"),
    )
    pool = fields.text("pool") or None
    if pool is not None and pools is not None and pool not in pools:
        raise ValidationError(fields.at("pool"), f"unknown pool {pool!r}")
    allocatable = resources_of(fields.get("allocatable"), fields.at("allocatable"))
    reported = as_object(fields.get("allocatable"), fields.at("allocatable"))
    for axis in ("cpu", "memory", "pods"):
        if axis not in reported:
            raise ValidationError(child(fields.at("allocatable"), axis), "required")
    taints = []
    for item, at in fields.items("taints"):
        taint = Fields(item, at, required=("key", "effect"), optional=("value", "timeAdded"))
        if taint.has("timeAdded"):
            timestamp(taint.get("timeAdded"), taint.at("timeAdded"))
        taints.append(Taint(
            qualified_name(taint.get("key"), taint.at("key")),
            label_value(taint.text("value", nonempty=False), taint.at("value")),
            as_enum(TaintEffect, taint.get("effect"), taint.at("effect")),
        ))
    node = Node(
        name=fields.text("name"),
        pool=pool,
        labels=labels_of(fields.labels("labels")),
        taints=tuple(taints),
        allocatable=allocatable,
        ready=fields.boolean("ready", True),
        unschedulable=fields.boolean("unschedulable", False),
        annotations=(
            annotation_map(fields.get("annotations"), fields.at("annotations"))
            if fields.has("annotations") else ()
        ),
    )
    return node
