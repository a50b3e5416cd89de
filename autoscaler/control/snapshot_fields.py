"""Strict readers for snapshot JSON: typed values, each error naming its JSON path.

Callers: the snapshot loader (``control.snapshot`` and its entry readers ``snapshot_pools``,
``snapshot_nodes``, ``snapshot_pods``, ``snapshot_selectors``, ``snapshot_budgets`` and
``snapshot_policy``) reads every object through ``Fields`` and the value readers here. Each
reader raises ``ValidationError`` with the path of the offending value and never returns a
partially checked value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from autoscaler.model.errors import ValidationError
from autoscaler.model.quantity import quantity_units
from autoscaler.model.resources import Resources

E = TypeVar("E", bound=StrEnum)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
_QUALIFIED = re.compile(rf"(?:(?P<prefix>{_DNS_SUBDOMAIN})/)?{_NAME}")
_LABEL_VALUE = re.compile(rf"(?:{_NAME})?")
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]+))?(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
INT32_MAX = 2**31 - 1


def child(path: str, key: str) -> str:
    """``$.a.b`` for identifier keys, ``$.a['nvidia.com/gpu']`` otherwise."""
    if _IDENT.fullmatch(key):
        return f"{path}.{key}"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"{path}['{escaped}']"


def json_kind(value: object) -> str:
    """The JSON type name of a decoded value, for errors ("expected an object, got array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__


def as_object(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"expected an object, got {json_kind(value)}")
    return value


def as_text(value: object, path: str, *, nonempty: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(path, f"expected a string, got {json_kind(value)}")
    if nonempty and not value.strip():
        raise ValidationError(path, "must not be empty")
    return value


def as_int(value: object, path: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(path, f"expected an integer, got {json_kind(value)}")
    if not lo <= value <= hi:
        raise ValidationError(path, f"{value} is out of range [{lo}, {hi}]")
    return value


def as_list(value: object, path: str) -> list[tuple[object, str]]:
    """The items of a JSON array, each with its path."""
    if not isinstance(value, list):
        raise ValidationError(path, f"expected an array, got {json_kind(value)}")
    return [(item, f"{path}[{i}]") for i, item in enumerate(value)]


def as_enum(cls: type[E], value: object, path: str) -> E:
    text = as_text(value, path)
    try:
        return cls(text)
    except ValueError:
        allowed = ", ".join(member.value for member in cls)
        raise ValidationError(path, f"{text!r} is not one of: {allowed}") from None


def qualified_name(value: object, path: str) -> str:
    """A label key, taint key or resource name: ``[prefix/]name`` as Kubernetes validates it."""
    text = as_text(value, path)
    match = _QUALIFIED.fullmatch(text)
    if match is None or len(match["prefix"] or "") > 253:
        raise ValidationError(path, f"invalid name {text!r} (expected [dns-prefix/]name)")
    return text


def label_value(value: object, path: str) -> str:
    text = as_text(value, path, nonempty=False)
    if _LABEL_VALUE.fullmatch(text) is None:
        raise ValidationError(path, f"invalid label value {text!r}")
    return text


def label_map(value: object, path: str) -> dict[str, str]:
    """A ``{key: value}`` object of Kubernetes labels, syntax-checked."""
    return {
        qualified_name(key, child(path, key)): label_value(item, child(path, key))
        for key, item in as_object(value, path).items()
    }


def resources_of(value: object, path: str) -> Resources:
    """A ``{resource: quantity}`` object in planner units (``cpu`` in millicores)."""
    units: dict[str, int] = {}
    for key, item in as_object(value, path).items():
        at = child(path, key)
        qualified_name(key, at)
        units[key] = quantity_units(key, item, at)
    return Resources.of(units)


def timestamp(value: object, path: str) -> datetime:
    """An RFC 3339 timestamp with an explicit offset, as an aware UTC datetime."""
    text = as_text(value, path)
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValidationError(path, f"expected an RFC 3339 timestamp, got {text!r}")
    frac = (match["frac"] or "")[:6].ljust(6, "0")  # datetime keeps microseconds only
    tz = "+00:00" if match["tz"] in ("Z", "z") else match["tz"]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{tz}")
    except ValueError as error:
        raise ValidationError(path, f"invalid timestamp {text!r}: {error}") from None
    return parsed.astimezone(UTC)


class Fields:
    """One JSON object being read: its keys are checked once, then values are read by key.

    JSON ``null`` reads as absent, so exporters that write ``"nodeName": null`` are accepted.
    """

    __slots__ = ("path", "raw")

    def __init__(
        self,
        value: object,
        path: str,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> None:
        value = as_object(value, path)
        required = tuple(required)
        allowed = {*required, *optional}
        for key in value:
            if key not in allowed:
                expected = ", ".join(sorted(allowed)) or "no fields"
                raise ValidationError(child(path, key), f"unknown field (expected: {expected})")
        for key in required:
            if value.get(key) is None:
                raise ValidationError(child(path, key), "required")
        self.raw: dict[str, object] = value
        self.path = path

    def at(self, key: str) -> str:
        return child(self.path, key)

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def get(self, key: str) -> object:
        return self.raw.get(key)

    def text(self, key: str, default: str = "", *, nonempty: bool = True) -> str:
        if not self.has(key):
            return default
        return as_text(self.raw[key], self.at(key), nonempty=nonempty)

    def integer(self, key: str, default: int, lo: int = 0, hi: int = 2**63 - 1) -> int:
        return default if not self.has(key) else as_int(self.raw[key], self.at(key), lo, hi)

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.raw[key]
        if not isinstance(value, bool):
            raise ValidationError(self.at(key), f"expected a boolean, got {json_kind(value)}")
        return value

    def items(self, key: str) -> list[tuple[object, str]]:
        return [] if not self.has(key) else as_list(self.raw[key], self.at(key))

    def labels(self, key: str) -> dict[str, str]:
        return {} if not self.has(key) else label_map(self.raw[key], self.at(key))

    def resources(self, key: str) -> Resources:
        return Resources() if not self.has(key) else resources_of(self.raw[key], self.at(key))
