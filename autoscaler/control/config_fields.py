"""Reading the controller's configuration file: YAML with field lines, and the value readers.

Callers: ``control.config`` (``load_config`` / ``parse_config``). Every reader raises
``ValidationError`` naming the field path (``$.timers.tick``) or the environment variable that
held the value, and ``line_of`` finds the file line of a path for the error message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta

import yaml

from autoscaler.control.scaledown import ScaleDownConfig
from autoscaler.control.snapshot_fields import Fields, as_text, child
from autoscaler.model.errors import ValidationError

_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def read_yaml(file: str, text: str) -> tuple[object, dict[str, int]]:
    """One YAML document, and the line where each field path starts. Refuses duplicate and
    non-string keys, which PyYAML would otherwise let pass (the last duplicate winning)."""
    lines: dict[str, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return {}, lines
        _index(node, "$", file, lines)
        return yaml.safe_load(text), lines
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        raise ValidationError(where, f"YAML syntax: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ValidationError(file, f"YAML syntax: {err}") from None


def _index(node: yaml.Node, path: str, file: str, lines: dict[str, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            line = key.start_mark.line + 1
            if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                raise ValidationError(f"{file}:{line}", "mapping keys must be strings")
            if key.value in seen:
                raise ValidationError(f"{file}:{line}", f"duplicate key {key.value!r}")
            seen.add(key.value)
            _index(value, child(path, str(key.value)), file, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, f"{path}[{i}]", file, lines)


def line_of(path: str, lines: Mapping[str, int]) -> int | None:
    while path.startswith("$"):
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return lines.get("$")
        path = path[:cut]
    return None


# --- values -----------------------------------------------------------------------------------


def duration(value: object, path: str, *, positive: bool = True) -> float:
    """Seconds from a number or a string such as ``500ms``, ``90s``, ``15m``, ``1h30m``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(path, "expected a duration (seconds, or e.g. '90s', '15m')")
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValidationError(path, f"malformed duration {value!r} (e.g. '90s', '1h30m')")
        seconds = sum(float(n) * _SECONDS[u] for n, u in parts)
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        bound = "greater than zero" if positive else "non-negative"
        raise ValidationError(path, f"must be a finite duration {bound}, got {value!r}")
    return seconds


def number(value: object, path: str, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(path, "expected a number")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValidationError(path, f"{value!r} is out of range [{lo:g}, {hi:g}]")
    return float(value)


def seconds(fields: Fields, key: str, default: float) -> float:
    return duration(fields.get(key), fields.at(key)) if fields.has(key) else default


def subsection(fields: Fields, key: str, optional: tuple[str, ...]) -> Fields:
    return Fields(fields.get(key) if fields.has(key) else {}, fields.at(key), optional=optional)


def choice(fields: Fields, key: str, allowed: tuple[str, ...], default: str) -> str:
    if not fields.has(key):
        return default
    text = as_text(fields.get(key), fields.at(key)).lower()
    if text not in allowed:
        raise ValidationError(fields.at(key), f"{text!r} is not one of: {', '.join(allowed)}")
    return text


def env_bool(environ: Mapping[str, str], name: str) -> bool:
    text = environ[name].strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationError(name, f"expected true or false, got {environ[name]!r}")


def env_choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    text = environ[name].strip().lower()
    if text not in allowed:
        raise ValidationError(name, f"{environ[name]!r} is not one of: {', '.join(allowed)}")
    return text


def scale_down_of(doc: Fields) -> ScaleDownConfig:
    fields = subsection(doc, "scaleDown", (
        "enabled", "utilizationThreshold", "unneededTime", "delayAfterScaleUp",
        "delayAfterFailure", "maxDisruption", "drainTimeout", "maxGracefulTermination"))
    base = ScaleDownConfig()

    def span(key: str, default: timedelta) -> timedelta:
        return timedelta(seconds=seconds(fields, key, default.total_seconds()))

    threshold = base.utilisation_threshold
    if fields.has("utilizationThreshold"):
        at = fields.at("utilizationThreshold")
        threshold = number(fields.get("utilizationThreshold"), at, 0.0, 1.0)
    fraction = base.max_disrupted_fraction
    if fields.has("maxDisruption"):
        text = as_text(fields.get("maxDisruption"), fields.at("maxDisruption")).strip()
        match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)%", text)
        if match is None or not 0 < float(match[1]) <= 100:
            raise ValidationError(fields.at("maxDisruption"),
                                  f"expected a percentage in (0%, 100%], got {text!r}")
        fraction = float(match[1]) / 100
    grace = span("maxGracefulTermination", timedelta(seconds=base.max_grace_seconds))
    return ScaleDownConfig(
        enabled=fields.boolean("enabled", base.enabled),
        utilisation_threshold=threshold,
        unneeded_time=span("unneededTime", base.unneeded_time),
        delay_after_scale_up=span("delayAfterScaleUp", base.delay_after_scale_up),
        delay_after_failure=span("delayAfterFailure", base.delay_after_failure),
        max_disrupted_fraction=fraction,
        drain_timeout=span("drainTimeout", base.drain_timeout),
        max_grace_seconds=int(grace.total_seconds()),
    )


def dns_name(fields: Fields, key: str, default: str) -> str:
    if not fields.has(key):
        return default
    text = as_text(fields.get(key), fields.at(key)).strip()
    if len(text) > 253 or not all(_DNS_LABEL.fullmatch(p) for p in text.split(".")):
        raise ValidationError(fields.at(key), f"invalid Kubernetes object name {text!r}")
    return text
