"""When the reconcile loop runs: batches of cluster changes, and a periodic tick.

Callers: ``control.serve`` (``surge run``) builds a ``Runner`` over the cluster cache (its
``version`` and ``wait_changed``) and ``Controller.step``; unit tests drive ``Batcher`` with a
scripted change feed on a fake clock, so nothing sleeps.

A pass starts when either

- a batch of changes closes: the first change after the last pass opens it, and it closes once
  the cluster has been quiet for ``idle`` seconds (1 s) or ``max`` seconds after it opened
  (10 s), whichever comes first, as Karpenter batches pending pods. A surge of thousands of
  pods created over a few seconds is then planned once, on its whole, not pod by pod; or
- ``tick`` seconds (10 s) passed since the last pass began without any change, so that time-
  based work (operations to poll, provision timeouts, backoffs ending, scale-down timers)
  happens in a quiet cluster too.

Changes that arrive during a pass open the next batch: nothing seen during a pass is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from autoscaler.control.config import BatchConfig
from autoscaler.model.errors import ValidationError

log = logging.getLogger(__name__)
TICK, BATCH, STOP = "tick", "batch", "stop"
WAIT_SLICE = 1.0  # longest single wait, so that ``stop`` is noticed within about a second


class ChangeFeed(Protocol):
    """``kube.cache.ClusterCache`` is one: a version that grows with every change."""

    @property
    def version(self) -> int: ...

    def wait_changed(self, since: int, timeout: float) -> int:
        """Block until the version exceeds ``since`` or ``timeout`` seconds pass; returns it."""
        ...


class Batcher:
    """Decides when the next pass starts; ``clock`` is monotonic seconds."""

    def __init__(self, feed: ChangeFeed, config: BatchConfig,
                 clock: Callable[[], float] = time.monotonic,
                 stopped: Callable[[], bool] = lambda: False,
                 wait_slice: float = WAIT_SLICE) -> None:
        self.feed = feed
        self.config = config
        self.clock = clock
        self.stopped = stopped
        self.wait_slice = wait_slice
        self.seen = feed.version  # the version the last pass started from
        self.batch_size = 0  # changes (version steps) in the last batch

    def _wait(self, until: float) -> int:
        timeout = min(self.wait_slice, max(0.0, until - self.clock()))
        return self.feed.wait_changed(self.seen, timeout)

    def next(self, last_pass: float) -> str:
        """Block until the next pass is due: ``TICK``, ``BATCH`` or ``STOP``. ``last_pass``
        is the clock when the previous pass began."""
        tick_at = last_pass + self.config.tick
        while True:
            if self.stopped():
                return STOP
            if self.clock() >= tick_at:
                self.seen = self.feed.version
                self.batch_size = 0
                return TICK
            version = self._wait(tick_at)
            if version > self.seen:
                break
        opened = last_change = self.clock()
        first = self.seen
        self.seen = version
        while True:
            if self.stopped():
                return STOP
            close_at = min(last_change + self.config.idle, opened + self.config.max)
            if self.clock() >= close_at:
                self.batch_size = self.seen - first
                return BATCH
            version = self._wait(close_at)
            if version > self.seen:
                self.seen = version
                last_change = self.clock()


class Runner:
    """Runs ``step(trigger)`` at start and then whenever ``Batcher.next`` says, until ``stop``
    (or ``passes`` passes, for tests). An exception a step lets through is logged and the
    loop goes on, except a ``ValidationError`` (bad configuration), which ends it."""

    def __init__(self, feed: ChangeFeed, config: BatchConfig, step: Callable[[str], object],
                 clock: Callable[[], float] = time.monotonic,
                 wait_slice: float = WAIT_SLICE) -> None:
        self._stop = threading.Event()
        self.clock = clock
        self.step = step
        self.batcher = Batcher(feed, config, clock, self._stop.is_set, wait_slice)
        self.passes = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self, passes: int | None = None) -> None:
        trigger = "start"
        while not self._stop.is_set():
            began = self.clock()
            self._one(trigger)
            self.passes += 1
            if passes is not None and self.passes >= passes:
                return
            trigger = self.batcher.next(began)
            if trigger == STOP:
                return

    def _one(self, trigger: str) -> None:
        try:
            self.step(trigger)
        except ValidationError:
            self._stop.set()
            raise
        except Exception:  # a dead loop thread would leave the cluster unattended
            log.exception("reconcile pass failed")
