"""When passes start: batches of cluster changes (1 s idle / 10 s max) and the 10 s tick, on a
scripted change feed whose waits move a fake clock (nothing sleeps)."""

from __future__ import annotations

import pytest

from autoscaler.control.config import BatchConfig
from autoscaler.control.runner import BATCH, STOP, TICK, Batcher, Runner
from autoscaler.model.errors import ValidationError


class ScriptedFeed:
    """Changes at scripted times; ``wait_changed`` jumps the clock to the next change or to the
    end of the timeout, whichever is first, as a real wait would end."""

    def __init__(self, changes: list[float]) -> None:
        self.now = 0.0
        self.changes = sorted(changes)
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    @property
    def version(self) -> int:
        return sum(1 for t in self.changes if t <= self.now)

    def wait_changed(self, since: int, timeout: float) -> int:
        self.waits.append(timeout)
        if self.version > since:
            return self.version
        upcoming = [t for t in self.changes if t > self.now]
        end = self.now + timeout
        self.now = min(upcoming[0], end) if upcoming and upcoming[0] <= end else end
        return self.version


def next_pass(changes: list[float], last_pass: float = 0.0, **config: float) -> tuple[str, float]:
    feed = ScriptedFeed(changes)
    batcher = Batcher(feed, BatchConfig(**config), feed.clock)
    return batcher.next(last_pass), feed.now


@pytest.mark.parametrize(
    ("changes", "trigger", "at"),
    [
        ([], TICK, 10.0),  # a quiet cluster: the tick
        ([3.0], BATCH, 4.0),  # one change: closes after 1 s of quiet
        ([3.0, 3.5, 3.9], BATCH, 4.9),  # a burst: 1 s after its last change
        ([2.0 + 0.5 * i for i in range(60)], BATCH, 12.0),  # endless churn: 10 s after opening
        ([9.5], BATCH, 10.5),  # a batch open when the tick falls due is not cut
    ],
)
def test_a_pass_starts_when_a_batch_closes_or_the_tick_falls_due(
    changes: list[float], trigger: str, at: float
) -> None:
    assert next_pass(changes) == (trigger, pytest.approx(at))


def test_batch_windows_are_configurable() -> None:
    assert next_pass([1.0, 1.05], idle=0.1, max=5.0, tick=30.0) == (BATCH, pytest.approx(1.15))
    churn = [1.0 + 0.05 * i for i in range(200)]
    assert next_pass(churn, idle=0.1, max=2.0, tick=30.0) == (BATCH, pytest.approx(3.0))


def test_changes_that_arrive_during_a_pass_open_the_next_batch_at_once() -> None:
    feed = ScriptedFeed([3.0, 4.5])
    batcher = Batcher(feed, BatchConfig(), feed.clock)
    assert batcher.next(0.0) == BATCH and feed.now == 4.0
    feed.now = 5.0  # the pass ran from 4.0 to 5.0; a change came at 4.5
    assert batcher.next(4.0) == BATCH
    assert feed.now == pytest.approx(6.0)  # 1 s of quiet after the pass saw it
    assert batcher.batch_size == 1


def test_no_single_wait_is_longer_than_the_slice_so_a_stop_is_noticed() -> None:
    feed = ScriptedFeed([])
    batcher = Batcher(feed, BatchConfig(), feed.clock, wait_slice=1.0)
    assert batcher.next(0.0) == TICK
    assert max(feed.waits) <= 1.0


def test_a_stopped_batcher_returns_stop() -> None:
    feed = ScriptedFeed([1.0])
    batcher = Batcher(feed, BatchConfig(), feed.clock, stopped=lambda: feed.now >= 0.5)
    assert batcher.next(0.0) == STOP


def test_the_runner_passes_at_start_then_on_each_trigger() -> None:
    feed = ScriptedFeed([13.0])
    triggers: list[tuple[str, float]] = []
    runner = Runner(feed, BatchConfig(), lambda t: triggers.append((t, feed.now)), feed.clock)
    runner.run(passes=4)
    assert triggers == [("start", 0.0), ("tick", 10.0), ("batch", 14.0), ("tick", 24.0)]


def test_the_runner_survives_a_failing_pass_and_stops_on_a_configuration_error() -> None:
    feed = ScriptedFeed([])
    seen: list[str] = []

    def step(trigger: str) -> None:
        seen.append(trigger)
        if len(seen) == 1:
            raise RuntimeError("a bug in one pass")
        if len(seen) == 3:
            raise ValidationError("agentPools[spot1]", "has enableAutoScaling=true")

    runner = Runner(feed, BatchConfig(), step, feed.clock)
    with pytest.raises(ValidationError):
        runner.run()
    assert seen == ["start", "tick", "tick"]
