"""A tiny deterministic discrete-event core and the simulated clock.

Callers: every simulator part schedules its future through ``Engine.at`` / ``Engine.after``;
``simulator.run`` drives ``Engine.run``; ``SimClock`` is handed to the control loop as its
``Clock``. Events are ordered by (time, priority, sequence number): equal times are broken by
priority, then by the order they were scheduled, so a run is reproducible event for event.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime, timedelta

# Priorities for events at the same instant: the world changes first, then the autoscaler
# looks at it, then measurements are taken.
NODE = 0
POD = 1
SCHEDULE = 2
LOOP = 3
SAMPLE = 4


class Engine:
    def __init__(self, start: datetime) -> None:
        self.start = start
        self.now = 0.0  # seconds since start
        # (time, priority, sequence, action): the sequence is unique, so actions are never
        # compared; plain tuples keep the heap cheap at hundreds of thousands of events.
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = 0
        self.clock = SimClock(self)
        self.processed = 0

    def at(self, time: float, action: Callable[[], None], priority: int = POD) -> None:
        """Run ``action`` at simulated second ``time`` (never in the past)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(time, self.now), priority, self._seq, action))

    def after(self, delay: float, action: Callable[[], None], priority: int = POD) -> None:
        self.at(self.now + max(0.0, delay), action, priority)

    def run(self, until: float, progress: Callable[[float], None] | None = None) -> None:
        """Process events in order up to and including time ``until``."""
        while self._heap and self._heap[0][0] <= until:
            time, _, _, action = heapq.heappop(self._heap)
            self.now = time
            action()
            self.processed += 1
            if progress is not None and self.processed % 1000 == 0:
                progress(self.now)
        self.now = max(self.now, until)
        if progress is not None:
            progress(self.now)

    @property
    def pending(self) -> int:
        return len(self._heap)


class SimClock:
    """The control loop's Clock on simulated time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def now(self) -> datetime:
        return self._engine.start + timedelta(seconds=self._engine.now)
