"""Selector and affinity readers of the snapshot loader: label selectors, node selector terms,
and the ``affinity`` of a pod (node affinity, pod affinity and anti-affinity).

Callers: ``control.snapshot_pods`` (a pod's ``affinity`` and its spread constraints' selectors)
and ``control.snapshot_budgets`` (a PodDisruptionBudget's ``selector``). Values are read through
``control.snapshot_fields``, so every error names the JSON path of the offending value. The
format is documented in docs/snapshot.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from autoscaler.control.snapshot_fields import (
    Fields,
    as_enum,
    as_int,
    as_text,
    child,
    qualified_name,
)
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import HOSTNAME_LABEL, LabelSelector, Operator, Requirement, labels_of
from autoscaler.model.pod import AntiAffinity, NodeSelectorTerm

_SELECTOR_OPERATORS = (Operator.IN, Operator.NOT_IN, Operator.EXISTS, Operator.DOES_NOT_EXIST)


def requirement(value: object, path: str, operators: Iterable[Operator]) -> Requirement:
    """A ``{key, operator, values}`` expression, with the API server's value-count rules."""
    fields = Fields(value, path, required=("key", "operator"), optional=("values",))
    key = qualified_name(fields.get("key"), fields.at("key"))
    operator = as_enum(Operator, fields.get("operator"), fields.at("operator"))
    if operator not in tuple(operators):
        raise ValidationError(fields.at("operator"), f"operator {operator.value} not allowed here")
    values = tuple(as_text(v, p, nonempty=False) for v, p in fields.items("values"))
    if operator in (Operator.IN, Operator.NOT_IN) and not values:
        raise ValidationError(fields.at("values"), f"{operator.value} needs at least one value")
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        raise ValidationError(fields.at("values"), f"{operator.value} takes no values")
    if operator in (Operator.GT, Operator.LT) and (
        len(values) != 1 or re.fullmatch(r"[+-]?[0-9]+", values[0]) is None
    ):
        raise ValidationError(fields.at("values"), f"{operator.value} needs one integer value")
    return Requirement(key, operator, values)


def label_selector(value: object, path: str) -> LabelSelector:
    fields = Fields(value, path, optional=("matchLabels", "matchExpressions"))
    expressions = tuple(
        requirement(v, p, _SELECTOR_OPERATORS) for v, p in fields.items("matchExpressions")
    )
    return LabelSelector(labels_of(fields.labels("matchLabels")), expressions)


def node_selector_term(value: object, path: str) -> NodeSelectorTerm:
    """One term; ``matchFields`` on ``metadata.name`` becomes a hostname requirement, which is
    how AKS names nodes, so DaemonSet-style pins never match a new node."""
    fields = Fields(value, path, optional=("matchExpressions", "matchFields"))
    expressions = [requirement(v, p, Operator) for v, p in fields.items("matchExpressions")]
    for item, at in fields.items("matchFields"):
        field = requirement(item, at, (Operator.IN, Operator.NOT_IN))
        if field.key != "metadata.name":
            raise ValidationError(child(at, "key"), "only metadata.name is supported")
        expressions.append(Requirement(HOSTNAME_LABEL, field.operator, field.values))
    return NodeSelectorTerm(tuple(expressions))


def _weighted(value: object, path: str, inner: str) -> Fields:
    fields = Fields(value, path, required=("weight", inner))
    as_int(fields.get("weight"), fields.at("weight"), 1, 100)
    return fields


def _pod_affinity_term(value: object, path: str) -> AntiAffinity:
    optional = ("labelSelector", "namespaces")
    fields = Fields(value, path, required=("topologyKey",), optional=optional)
    selector = LabelSelector()
    if fields.has("labelSelector"):
        selector = label_selector(fields.get("labelSelector"), fields.at("labelSelector"))
    namespaces = tuple(as_text(v, p) for v, p in fields.items("namespaces"))
    topology_key = qualified_name(fields.get("topologyKey"), fields.at("topologyKey"))
    return AntiAffinity(topology_key, selector, namespaces)


_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _pod_terms(fields: Fields, key: str) -> tuple[AntiAffinity, ...]:
    """Required terms of ``podAffinity``/``podAntiAffinity``; preferred terms are only checked."""
    if not fields.has(key):
        return ()
    section = Fields(fields.get(key), fields.at(key), optional=(_REQUIRED, _PREFERRED))
    for item, at in section.items(_PREFERRED):
        weighted = _weighted(item, at, "podAffinityTerm")
        _pod_affinity_term(weighted.get("podAffinityTerm"), weighted.at("podAffinityTerm"))
    return tuple(_pod_affinity_term(v, p) for v, p in section.items(_REQUIRED))


def affinity(
    value: object, path: str
) -> tuple[tuple[NodeSelectorTerm, ...], tuple[AntiAffinity, ...], bool]:
    """(required node affinity terms, required anti-affinity terms, uses required podAffinity)."""
    fields = Fields(value, path, optional=("nodeAffinity", "podAffinity", "podAntiAffinity"))
    terms: tuple[NodeSelectorTerm, ...] = ()
    if fields.has("nodeAffinity"):
        node = Fields(fields.get("nodeAffinity"), fields.at("nodeAffinity"),
                      optional=(_REQUIRED, _PREFERRED))
        for item, at in node.items(_PREFERRED):
            weighted = _weighted(item, at, "preference")
            node_selector_term(weighted.get("preference"), weighted.at("preference"))
        if node.has(_REQUIRED):
            required = Fields(node.get(_REQUIRED), node.at(_REQUIRED),
                              required=("nodeSelectorTerms",))
            listed = required.items("nodeSelectorTerms")
            if not listed:
                raise ValidationError(required.at("nodeSelectorTerms"), "must not be empty")
            terms = tuple(node_selector_term(v, p) for v, p in listed)
    pod_affinity = _pod_terms(fields, "podAffinity")
    return terms, _pod_terms(fields, "podAntiAffinity"), bool(pod_affinity)
