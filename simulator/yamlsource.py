"""Strict reading of scenario YAML: syntax errors with file and line, a line for every field path,
and the value readers (durations, times, non-negative numbers) the scenario loader shares.

Callers: ``simulator.loader`` (scenario files and autoscaler settings files) and
``simulator.curves`` (curve objects). Field paths use the snapshot loader's form
(``$.workloads[1].replicas.kind``, see ``autoscaler.control.snapshot_fields.child``) so that
errors read the same across the project's file formats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import yaml

from autoscaler.control.snapshot_fields import (
    Fields,
    as_object,
    as_text,
    child,
    json_kind,
    timestamp,
)
from autoscaler.model.errors import ValidationError

T = TypeVar("T")

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Document:
    """A parsed YAML document with the line where each field path starts (1-based)."""

    __slots__ = ("file", "lines", "value")

    def __init__(self, file: str, value: object, lines: dict[str, int]) -> None:
        self.file = file
        self.value = value
        self.lines = lines

    def locate(self, error: ValidationError) -> ValidationError:
        """``error`` with the file and line of its path (or nearest enclosing path) appended."""
        path = error.path
        if not path.startswith("$"):
            return error  # already names a file and line (a CSV the scenario refers to)
        while path and path not in self.lines:
            path = _parent(path)
        if not path:
            return error
        located = ValidationError(
            error.path, f"{error.reason} ({self.file}, line {self.lines[path]})"
        )
        located.__cause__ = error.__cause__
        return located


def _parent(path: str) -> str:
    """``$.a.b`` -> ``$.a``; ``$.a[3]`` -> ``$.a``; ``$.a['x.y']`` -> ``$.a``; ``$`` -> ``""``."""
    if path == "$":
        return ""
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path[: path.rindex(".")]


def read_yaml(file: str, text: str | None = None) -> Document:
    """Parse ``file`` (or ``text``, named ``file`` in errors) as one YAML document.

    Refuses what PyYAML would silently accept: duplicate keys (the later one would win),
    non-string keys, and more than one document.
    """
    if text is None:
        try:
            text = Path(file).read_text("utf-8")
        except FileNotFoundError:
            raise ValidationError(file, "no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ValidationError(file, f"cannot read: {err}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ValidationError(f"{file}:1", "the document is empty")
        value = loader.construct_document(node)
        lines: dict[str, int] = {}
        _index(node, "$", file, lines)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = err.problem or err.context or "invalid YAML"
        raise ValidationError(f"{file}{line}", f"YAML syntax: {problem}") from None
    except yaml.YAMLError as err:
        raise ValidationError(file, f"YAML syntax: {err}") from None
    finally:
        loader.dispose()
    return Document(file, value, lines)


def _index(node: yaml.Node, path: str, file: str, lines: dict[str, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise ValidationError(f"{file}:{line}", "mapping keys must be strings")
            key = str(key_node.value)
            if key in seen:
                reason = f"duplicate key {key!r} (first on line {seen[key]})"
                raise ValidationError(f"{file}:{line}", reason)
            seen[key] = line
            _index(value_node, child(path, key), file, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, f"{path}[{i}]", file, lines)


# --- value readers ---------------------------------------------------------------------------


def duration(value: object, path: str, *, positive: bool = False) -> float:
    """Seconds from a number (seconds) or a string such as ``90s``, ``15m``, ``1h30m``, ``2.5h``."""
    if isinstance(value, bool):
        raise ValidationError(path, "expected a duration (seconds or e.g. '90s', '1h30m')")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValidationError(path, f"malformed duration {value!r} (e.g. '90s', '1h30m')")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        raise ValidationError(path, f"expected a duration, got {json_kind(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValidationError(path, f"must be a non-negative finite duration, got {value!r}")
    if positive and seconds == 0:
        raise ValidationError(path, "must be greater than zero")
    return seconds


def number(
    value: object, path: str, *, lo: float = 0.0, hi: float = math.inf, open_lo: bool = False
) -> float:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` when ``open_lo``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(path, f"expected a number, got {json_kind(value)}")
    x = float(value)
    below = x <= lo if open_lo else x < lo
    if not math.isfinite(x) or below or x > hi:
        low = f"({lo:g}" if open_lo else f"[{lo:g}"
        raise ValidationError(path, f"{value!r} is out of range {low}, {hi:g}]")
    return x


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
