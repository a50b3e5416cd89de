"""Strict reading of scenario YAML: syntax errors with file and line, a line for every field path,
and the value readers (durations, times, non-negative numbers) the scenario loader shares.

Callers: ``simulator.loader`` (scenario files and autoscaler settings files),
``simulator.settings`` and ``simulator.curves``. The YAML rules and the duration and number
readers are the controller's (``autoscaler.control.config_fields``), re-exported here, so that
a file reads the same in the simulator and in ``surge run``; what is simulator-only (``Document``,
times, zone numbers, data files) is here. Field paths use the snapshot loader's form
(``$.workloads[1].replicas.kind``, see ``autoscaler.control.snapshot_fields.child``) so that
errors read the same across the project's file formats.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

from autoscaler.control import config_fields
from autoscaler.control.config_fields import duration, number, with_line
from autoscaler.control.snapshot_fields import (
    Fields,
    as_object,
    as_text,
    child,
    timestamp,
)
from autoscaler.model.errors import ValidationError

__all__ = [
    "Document", "duration", "instant", "kind_of", "number", "optional", "read_yaml", "resolve",
    "zone_number",
]

T = TypeVar("T")


class Document:
    """A parsed YAML document with the line where each field path starts (1-based)."""

    __slots__ = ("file", "lines", "value")

    def __init__(self, file: str, value: object, lines: dict[str, int]) -> None:
        self.file = file
        self.value = value
        self.lines = lines

    def locate(self, error: ValidationError) -> ValidationError:
        """``error`` with the file and line of its path (or nearest enclosing path) appended."""
        return with_line(error, self.file, self.lines)


def read_yaml(file: str, text: str | None = None) -> Document:
    """Parse ``file`` (or ``text``, named ``file`` in errors) as one non-empty YAML document,
    with the controller's rules (``autoscaler.control.config_fields.read_yaml``)."""
    value, lines = config_fields.read_yaml(file, text)
    return Document(file, value, lines)


# --- value readers ---------------------------------------------------------------------------
# ``duration`` and ``number`` are the controller's (imported above): one syntax and one set of
# ranges for every file the project reads.


def instant(value: object, path: str) -> datetime:
    """An aware UTC datetime from a YAML timestamp or an RFC 3339 string with an offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(path, "timestamp needs a UTC offset (e.g. 'Z')")
        return value.astimezone(UTC)
    if isinstance(value, date):
        raise ValidationError(path, "expected a date and time with an offset, got a date")
    return timestamp(value, path)


def zone_number(value: object, path: str) -> str:
    """An AKS zone number ``"1"``..``"3"``; bare integers are accepted (YAML reads ``1`` so)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = as_text(value, path)
    if text not in ("1", "2", "3"):
        raise ValidationError(path, f"invalid zone {text!r} (AKS zone numbers: '1', '2', '3')")
    return text


def optional(fields: Fields, key: str, read: Callable[[object, str], T]) -> T | None:
    """``read`` applied to ``key`` when present, else None."""
    return read(fields.get(key), fields.at(key)) if fields.has(key) else None


def kind_of(value: object, path: str, kinds: tuple[str, ...], what: str) -> str:
    """The ``kind`` of an object, checked first so that field errors can be specific to it."""
    fields = as_object(value, path)
    at = child(path, "kind")
    if fields.get("kind") is None:
        raise ValidationError(at, "required")
    kind = as_text(fields["kind"], at)
    if kind not in kinds:
        raise ValidationError(at, f"unknown {what} kind {kind!r} (expected one of: "
                                  f"{', '.join(kinds)})")
    return kind


def resolve(file: object, path: str, base_dir: Path) -> Path:
    """A data file named in a scenario: relative paths are relative to the scenario's folder."""
    name = as_text(file, path)
    resolved = (base_dir / name).resolve() if not Path(name).is_absolute() else Path(name)
    if not resolved.is_file():
        raise ValidationError(path, f"no such file: {resolved}")
    return resolved
