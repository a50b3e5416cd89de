"""The strict YAML reader and the value readers shared by the controller and the simulator.

Callers: ``control.config`` (``load_config`` / ``parse_config``: the controller's file) and the
simulator's ``simulator.yamlsource`` (scenario files, curves) and ``simulator.settings`` (a
scenario's ``autoscaler`` section and ``surge simulate --config`` files). One implementation, so
that a file the simulator accepts is one the controller accepts: the YAML rules, the duration
and number syntax and ranges, and the ``scaleDown`` section (``scale_down_of``).

Every reader raises ``ValidationError`` naming the field path (``$.timers.tick``) or the
environment variable that held the value, and ``with_line`` appends the file's line of a path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import yaml

from autoscaler.control.loop import LoopConfig
from autoscaler.control.scaledown import ScaleDownConfig
from autoscaler.control.snapshot_fields import Fields, as_text, child, json_kind
from autoscaler.model.errors import ValidationError

DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PERCENTAGE = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
SCALE_DOWN_FIELDS = (
    "enabled", "utilizationThreshold", "unneededTime", "delayAfterScaleUp", "delayAfterFailure",
    "maxDisruption", "drainTimeout", "maxGracefulTermination",
)


# --- YAML -------------------------------------------------------------------------------------


def read_yaml(
    file: str, text: str | None = None, *, allow_empty: bool = False
) -> tuple[object, dict[str, int]]:
    """The one YAML document in ``file`` (or ``text``, named ``file`` in errors), and the line
    where each field path starts (1-based).

    Refuses what PyYAML would silently accept: duplicate keys (the later one would win),
    non-string keys, and more than one document. An empty document (nothing but comments) is
    refused too, unless ``allow_empty``: then its value is None.
    """
    if text is None:
        try:
            text = Path(file).read_text("utf-8")
        except FileNotFoundError:
            raise ValidationError(file, "no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ValidationError(file, f"cannot read: {err}") from None
    loader = yaml.SafeLoader(text)
    lines: dict[str, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            if allow_empty:
                return None, lines
            raise ValidationError(f"{file}:1", "the document is empty")
        _index(node, "$", file, lines)
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = err.problem or err.context or "invalid YAML"
        raise ValidationError(f"{file}{line}", f"YAML syntax: {problem}") from None
    except yaml.YAMLError as err:
        raise ValidationError(file, f"YAML syntax: {err}") from None
    finally:
        loader.dispose()
    return value, lines


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


def with_line(error: ValidationError, file: str, lines: Mapping[str, int]) -> ValidationError:
    """``error`` with the file and line of its path (or of the nearest enclosing path) appended;
    ``error`` itself when its path is not a field path (an environment variable, a file)."""
    path = error.path
    while path.startswith("$") and path not in lines:
        path = _parent(path)
    if not path.startswith("$"):
        return error
    located = ValidationError(error.path, f"{error.reason} ({file}, line {lines[path]})")
    located.__cause__ = error.__cause__
    return located


def _parent(path: str) -> str:
    """``$.a.b`` -> ``$.a``; ``$.a[3]`` -> ``$.a``; ``$.a['x.y']`` -> ``$.a``; ``$`` -> ``""``."""
    cut = path.rfind("[") if path.endswith("]") else path.rfind(".")
    return path[:cut] if cut > 0 else ""


# --- values -----------------------------------------------------------------------------------


def duration(value: object, path: str, *, positive: bool = False) -> float:
    """Seconds from a number (seconds) or a string of number-unit parts such as ``500ms``,
    ``90s``, ``15m``, ``1h30m``, ``2.5h``, ``1d``. Never negative; with ``positive``, not zero."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(path, f"expected a duration (seconds, or e.g. '90s', '1h30m'), "
                                    f"got {json_kind(value)}")
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValidationError(path, f"malformed duration {value!r} (e.g. '90s', '1h30m')")
        total = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        total = float(value)
    if not math.isfinite(total) or total < 0 or (positive and total == 0):
        rule = ("a finite duration greater than zero" if positive
                else "a non-negative finite duration")
        raise ValidationError(path, f"must be {rule}, got {value!r}")
    return total


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


def seconds(fields: Fields, key: str, default: float, *, positive: bool) -> float:
    """The duration at ``key`` (``default`` when absent); ``positive``: zero is refused too."""
    if not fields.has(key):
        return default
    return duration(fields.get(key), fields.at(key), positive=positive)


def provisioning_timers(fields: Fields) -> tuple[timedelta, timedelta]:
    """``maxNodeProvisionTime`` and ``poolRefreshInterval`` (the controller's ``timers``, a
    scenario's ``autoscaler`` section), both greater than zero; absent: ``LoopConfig``'s."""
    base = LoopConfig()
    provision = seconds(fields, "maxNodeProvisionTime",
                        base.max_node_provision_time.total_seconds(), positive=True)
    refresh = seconds(fields, "poolRefreshInterval", base.pool_refresh_interval.total_seconds(),
                      positive=True)
    return timedelta(seconds=provision), timedelta(seconds=refresh)


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


def scale_down_of(parent: Fields) -> ScaleDownConfig:
    """The ``scaleDown`` section of ``parent`` (the controller's file, or a scenario's
    ``autoscaler`` section); absent keys keep Cluster Autoscaler's defaults.

    As Cluster Autoscaler, the delays and ``maxGracefulTermination`` may be zero;
    ``drainTimeout`` may not (every drain would fail at once). ``maxDisruption`` is a percentage
    in (0%, 100%], surrounding spaces ignored.
    """
    fields = subsection(parent, "scaleDown", SCALE_DOWN_FIELDS)
    base = ScaleDownConfig()

    def span(key: str, default: timedelta, *, positive: bool = False) -> timedelta:
        return timedelta(seconds=seconds(fields, key, default.total_seconds(), positive=positive))

    threshold = base.utilisation_threshold
    if fields.has("utilizationThreshold"):
        at = fields.at("utilizationThreshold")
        threshold = number(fields.get("utilizationThreshold"), at, lo=0.0, hi=1.0)
    fraction = base.max_disrupted_fraction
    if fields.has("maxDisruption"):
        text = as_text(fields.get("maxDisruption"), fields.at("maxDisruption")).strip()
        match = _PERCENTAGE.fullmatch(text)
        if match is None or not 0 < float(match[1]) <= 100:
            raise ValidationError(fields.at("maxDisruption"), f"expected a percentage like '10%' "
                                  f"in (0%, 100%], got {text!r}")
        fraction = float(match[1]) / 100
    grace = span("maxGracefulTermination", timedelta(seconds=base.max_grace_seconds))
    return ScaleDownConfig(
        enabled=fields.boolean("enabled", base.enabled),
        utilisation_threshold=threshold,
        unneeded_time=span("unneededTime", base.unneeded_time),
        delay_after_scale_up=span("delayAfterScaleUp", base.delay_after_scale_up),
        delay_after_failure=span("delayAfterFailure", base.delay_after_failure),
        max_disrupted_fraction=fraction,
        drain_timeout=span("drainTimeout", base.drain_timeout, positive=True),
        max_grace_seconds=int(grace.total_seconds()),
    )


def dns_name(fields: Fields, key: str, default: str) -> str:
    if not fields.has(key):
        return default
    text = as_text(fields.get(key), fields.at(key)).strip()
    if len(text) > 253 or not all(DNS_LABEL.fullmatch(p) for p in text.split(".")):
        raise ValidationError(fields.at(key), f"invalid Kubernetes object name {text!r}")
    return text
