"""Field and label selectors of the Kubernetes twin, parsed and matched as the API server does.

Callers: ``simulator.twin.kube_store`` filters lists and watches with ``Selector``; the PDB
check reads ``metav1.LabelSelector`` objects with ``selector_matches``. Errors are
``ApiStatus(400, "BadRequest", ...)``, which the server sends back as a ``Status``.

Field selectors accept ``=``, ``==`` and ``!=`` on the fields each resource supports (an unset
field reads as ""); label selectors accept ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` and ``!k``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ApiStatus(Exception):
    """An error answer of the API server, sent as a ``metav1.Status`` object."""

    def __init__(
        self, code: int, reason: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.retry_after is not None:
            status["details"] = {"retryAfterSeconds": int(self.retry_after)}
        return status


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
FIELDS: Mapping[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName", "spec.schedulerName", "spec.restartPolicy", "spec.serviceAccountName",
        "status.phase", "status.podIP", "status.nominatedNodeName",
    ),
    "nodes": ("spec.unschedulable",),
    "events": (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.fieldPath",
        "reason", "type", "reportingComponent",
    ),
}
_LABEL_TERM = re.compile(
    r"^\s*(?:(?P<not>!)\s*(?P<absent>[^\s=!,()]+)"
    r"|(?P<key>[^\s=!,()]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)"
    r"|\s+(?P<set>in|notin)\s*\((?P<values>[^()]*)\))?)\s*$"
)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _split_terms(text: str) -> list[str]:
    """Commas separate terms, except inside the parentheses of a set."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return [t for t in terms if t.strip()]


@dataclass(frozen=True, slots=True)
class Term:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, value: str | None) -> bool:
        if self.op == "exists":
            return value is not None
        if self.op == "!exists":
            return value is None
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values  # "!=" and "notin"


def parse_fields(text: str, resource: str) -> tuple[Term, ...]:
    allowed = _COMMON_FIELDS + FIELDS.get(resource, ())
    terms = []
    for raw in _split_terms(text):
        parts = re.split(r"(==|!=|=)", raw.strip(), maxsplit=1)
        if len(parts) != 3:
            raise ApiStatus(400, "BadRequest", f"invalid field selector term {raw!r}")
        key, op, value = parts
        if key not in allowed:
            message = f'field label not supported: {key} ("{resource}")'
            raise ApiStatus(400, "BadRequest", message)
        terms.append(Term(key, "!=" if op == "!=" else "=", (value,)))
    return tuple(terms)


def parse_labels(text: str) -> tuple[Term, ...]:
    terms = []
    for raw in _split_terms(text):
        match = _LABEL_TERM.match(raw)
        if match is None:
            raise ApiStatus(400, "BadRequest", f"unable to parse requirement: {raw!r}")
        if match["absent"]:
            terms.append(Term(match["absent"], "!exists"))
        elif match["set"]:
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            terms.append(Term(match["key"], match["set"], values))
        elif match["op"]:
            terms.append(Term(match["key"], "!=" if match["op"] == "!=" else "=",
                              (match["value"],)))
        else:
            terms.append(Term(match["key"], "exists"))
    return tuple(terms)


@dataclass(frozen=True, slots=True)
class Selector:
    namespace: str | None = None
    fields: tuple[Term, ...] = ()
    labels: tuple[Term, ...] = ()

    @staticmethod
    def parse(resource: str, namespace: str | None, fields: str, labels: str) -> Selector:
        return Selector(namespace, parse_fields(fields, resource), parse_labels(labels))

    @property
    def everything(self) -> bool:
        return self.namespace is None and not self.fields and not self.labels

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if not all(t.matches(field_value(obj, t.key)) for t in self.fields):
            return False
        labels = meta.get("labels") or {}
        return all(t.matches(labels.get(t.key)) for t in self.labels)


_SELECTOR_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A ``metav1.LabelSelector`` object; None selects nothing, {} everything (as in PDBs)."""
    if selector is None:
        return False
    terms = [Term(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or ():
        op = _SELECTOR_OPS.get(expression.get("operator", ""), "in")
        terms.append(Term(expression["key"], op, tuple(expression.get("values") or ())))
    return all(t.matches(labels.get(t.key)) for t in terms)
