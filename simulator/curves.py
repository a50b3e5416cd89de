"""Replica curves: how many replicas a deployment wants at simulated second ``t``.

Callers: ``simulator.workloads.WorkloadDriver`` samples ``replicas(t)``; ``simulator.loader``
builds curves from scenario YAML through ``parse_curve``; ``simulator.traces`` turns the Azure
LLM trace into a ``Table``. Every curve is a frozen value, a pure function of ``t`` (seconds
since the start of the run), and never negative. Shapes and rounding are documented in
docs/scenarios.md; fractional values round half up (``_whole``).
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from autoscaler.control.snapshot_fields import INT32_MAX, Fields, as_int
from autoscaler.model.errors import ValidationError
from simulator.yamlsource import duration, kind_of, resolve


class Curve(Protocol):
    def replicas(self, t: float) -> int:
        """Desired replicas at simulated second ``t`` (>= 0)."""
        ...


def _whole(x: float) -> int:
    return max(0, math.floor(x + 0.5))


@dataclass(frozen=True, slots=True)
class Step:
    """``initial`` until the first step, then the replicas of the latest step at or before t."""

    initial: int
    steps: tuple[tuple[float, int], ...] = ()  # (at seconds, replicas), sorted by time

    def replicas(self, t: float) -> int:
        value = self.initial
        for at, replicas in self.steps:
            if at > t:
                break
            value = replicas
        return value


@dataclass(frozen=True, slots=True)
class Ramp:
    """``start_value`` until ``at``, linear to ``end_value`` over ``over`` seconds, then held."""

    start_value: int
    end_value: int
    at: float = 0.0
    over: float = 3600.0

    def replicas(self, t: float) -> int:
        if t <= self.at:
            return self.start_value
        if self.over == 0 or t >= self.at + self.over:
            return self.end_value
        share = (t - self.at) / self.over
        return _whole(self.start_value + (self.end_value - self.start_value) * share)


@dataclass(frozen=True, slots=True)
class Diurnal:
    """A daily cosine between ``low`` and ``high``, highest at ``peak_at`` (+ whole periods)."""

    low: int
    high: int
    peak_at: float = 14 * 3600.0
    period: float = 86400.0

    def replicas(self, t: float) -> int:
        phase = 2 * math.pi * (t - self.peak_at) / self.period
        return _whole(self.low + (self.high - self.low) * (1 + math.cos(phase)) / 2)


@dataclass(frozen=True, slots=True)
class Viral:
    """``baseline`` until ``at``; grows to ``peak`` within ``rise`` seconds; then the excess over
    the baseline halves every ``half_life`` seconds.

    The growth is exponential (constant doubling time, as word of mouth spreads) when the
    baseline is at least one replica, linear from zero otherwise.
    """

    baseline: int
    peak: int
    at: float = 0.0
    rise: float = 3600.0
    half_life: float = 7200.0

    def replicas(self, t: float) -> int:
        if t <= self.at:
            return self.baseline
        since = t - self.at
        if since < self.rise:
            share = since / self.rise
            if self.baseline >= 1:
                return _whole(self.baseline * (self.peak / self.baseline) ** share)
            return _whole(self.peak * share)
        excess = self.peak - self.baseline
        return _whole(self.baseline + excess * 0.5 ** ((since - self.rise) / self.half_life))


@dataclass(frozen=True, slots=True)
class Table:
    """Replicas given at times; each value holds until the next time; the first value also
    holds before the first time."""

    times: tuple[float, ...]
    values: tuple[int, ...]

    def replicas(self, t: float) -> int:
        index = bisect.bisect_right(self.times, t) - 1
        return self.values[max(index, 0)]

    def shifted(self, offset: float) -> Table:
        return Table(tuple(x + offset for x in self.times), self.values)


# --- YAML -------------------------------------------------------------------------------------

KINDS = ("step", "ramp", "diurnal", "viral", "csv")


def parse_curve(value: object, path: str, base_dir: Path) -> Curve:
    """A curve from its YAML object; a bare integer is a constant. Errors name ``path``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Step(as_int(value, path, 0, INT32_MAX))
    kind = kind_of(value, path, KINDS, "curve")
    fields = Fields(value, path, required=("kind", *_REQUIRED[kind]), optional=_OPTIONAL[kind])
    if kind == "step":
        return _step(fields)
    if kind == "ramp":
        return Ramp(
            start_value=_replicas(fields, "from"),
            end_value=_replicas(fields, "to"),
            at=_seconds(fields, "at", 0.0),
            over=_seconds(fields, "over", 3600.0),
        )
    if kind == "diurnal":
        low, high = _replicas(fields, "min"), _replicas(fields, "max")
        if high < low:
            raise ValidationError(fields.at("max"), f"{high} is less than min {low}")
        return Diurnal(
            low, high, _seconds(fields, "peakAt", 14 * 3600.0), _period(fields, 86400.0)
        )
    if kind == "viral":
        baseline, peak = _replicas(fields, "baseline"), _replicas(fields, "peak")
        if peak < baseline:
            raise ValidationError(fields.at("peak"), f"{peak} is less than baseline {baseline}")
        return Viral(
            baseline,
            peak,
            at=_seconds(fields, "at", 0.0),
            rise=_seconds(fields, "rise", 3600.0, positive=True),
            half_life=_seconds(fields, "halfLife", 7200.0, positive=True),
        )
    return read_table(resolve(fields.get("file"), fields.at("file"), base_dir))


_REQUIRED: dict[str, tuple[str, ...]] = {
    "step": ("initial",),
    "ramp": ("from", "to"),
    "diurnal": ("min", "max"),
    "viral": ("baseline", "peak"),
    "csv": ("file",),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "step": ("steps",),
    "ramp": ("at", "over"),
    "diurnal": ("peakAt", "period"),
    "viral": ("at", "rise", "halfLife"),
    "csv": (),
}


def _replicas(fields: Fields, key: str) -> int:
    return as_int(fields.get(key), fields.at(key), 0, INT32_MAX)


def _seconds(fields: Fields, key: str, default: float, *, positive: bool = False) -> float:
    if not fields.has(key):
        return default
    return duration(fields.get(key), fields.at(key), positive=positive)


def _period(fields: Fields, default: float) -> float:
    return _seconds(fields, "period", default, positive=True)


def _step(fields: Fields) -> Step:
    steps: list[tuple[float, int]] = []
    for item, at in fields.items("steps"):
        step = Fields(item, at, required=("at", "replicas"))
        when = duration(step.get("at"), step.at("at"))
        if steps and when <= steps[-1][0]:
            raise ValidationError(step.at("at"), "steps must be in increasing time order")
        steps.append((when, as_int(step.get("replicas"), step.at("replicas"), 0, INT32_MAX)))
    return Step(_replicas(fields, "initial"), tuple(steps))


# --- CSV tables ---------------------------------------------------------------------------------


def read_table(path: Path) -> Table:
    """A ``time,replicas`` CSV (header line first; time in seconds since the start of the run,
    increasing; replicas a non-negative integer). Errors name ``file:line`` and the column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValidationError(str(path), f"cannot read: {err}") from None
    if not rows or [cell.strip() for cell in rows[0]] != ["time", "replicas"]:
        raise ValidationError(f"{path}:1", "expected the header 'time,replicas'")
    times: list[float] = []
    values: list[int] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        where = f"{path}:{line}"
        if len(row) != 2:
            raise ValidationError(where, f"expected 2 columns, got {len(row)}")
        try:
            when = float(row[0])
        except ValueError:
            raise ValidationError(where, f"column time: not a number: {row[0]!r}") from None
        if not math.isfinite(when) or when < 0:
            raise ValidationError(where, f"column time: must be >= 0, got {row[0]!r}")
        if times and when <= times[-1]:
            raise ValidationError(where, "column time: times must increase from row to row")
        text = row[1].strip()
        if not text.isdigit():
            raise ValidationError(where, f"column replicas: expected an integer >= 0, got {text!r}")
        times.append(when)
        values.append(int(text))
    if not times:
        raise ValidationError(f"{path}:2", "the table has no rows")
    return Table(tuple(times), tuple(values))

