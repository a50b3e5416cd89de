"""Label sets and label selectors (``metav1.LabelSelector``), frozen and hashable.

Callers: pods, nodes, templates and the constraint predicates. A ``Labels`` value is a sorted
tuple of pairs so that it can be part of an equivalence-group key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

Labels = tuple[tuple[str, str], ...]

ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
AGENTPOOL_LABEL = "kubernetes.azure.com/agentpool"
LEGACY_AGENTPOOL_LABEL = "agentpool"
MODE_LABEL = "kubernetes.azure.com/mode"
SPOT_LABEL = "kubernetes.azure.com/scalesetpriority"


def labels_of(values: Mapping[str, str]) -> Labels:
    return tuple(sorted(values.items()))


class Operator(StrEnum):
    """Operators of node-selector requirements and label-selector expressions."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``key op values`` expression (node-selector requirement or label-selector expression)."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """``matchLabels`` AND ``matchExpressions``; an empty selector matches everything."""

    match_labels: Labels = ()
    match_expressions: tuple[Requirement, ...] = ()
