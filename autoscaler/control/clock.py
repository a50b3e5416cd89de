"""The Clock protocol: the only way the control loop learns the time.

Callers: ``control.loop`` reads ``now()``; the in-cluster entry point passes ``SystemClock``;
the simulator passes its simulated clock (``simulator.engine.SimClock``), so the same loop runs
on simulated time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current
