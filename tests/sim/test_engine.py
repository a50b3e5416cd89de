"""The event core: order by (time, priority, sequence), simulated clock, run boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from simulator.engine import LOOP, NODE, POD, SAMPLE, SCHEDULE, Engine

START = datetime(2026, 1, 5, tzinfo=UTC)


def test_events_run_by_time_then_priority_then_scheduling_order() -> None:
    engine = Engine(START)
    seen: list[str] = []
    engine.at(5, lambda: seen.append("loop@5"), LOOP)
    engine.at(5, lambda: seen.append("pod@5-a"), POD)
    engine.at(1, lambda: seen.append("sample@1"), SAMPLE)
    engine.at(5, lambda: seen.append("node@5"), NODE)
    engine.at(5, lambda: seen.append("pod@5-b"), POD)
    engine.at(3, lambda: seen.append("schedule@3"), SCHEDULE)
    engine.run(until=10)
    assert seen == ["sample@1", "schedule@3", "node@5", "pod@5-a", "pod@5-b", "loop@5"]


def test_an_event_scheduled_for_now_by_another_event_runs_in_the_same_instant() -> None:
    engine = Engine(START)
    seen: list[tuple[str, float]] = []

    def first() -> None:
        seen.append(("first", engine.now))
        engine.after(0, lambda: seen.append(("follow-up", engine.now)), POD)

    engine.at(2, first, NODE)
    engine.at(2, lambda: seen.append(("loop", engine.now)), LOOP)
    engine.run(until=2)
    assert seen == [("first", 2.0), ("follow-up", 2.0), ("loop", 2.0)]


@pytest.mark.parametrize("when", [-5.0, 0.0])
def test_events_are_never_scheduled_in_the_past(when: float) -> None:
    engine = Engine(START)
    engine.run(until=10)
    times: list[float] = []
    engine.at(when, lambda: times.append(engine.now))
    engine.run(until=20)
    assert times == [10.0]


def test_run_stops_at_until_and_leaves_later_events_queued() -> None:
    engine = Engine(START)
    seen: list[float] = []
    for t in (1, 2, 3, 4):
        engine.at(t, lambda t=t: seen.append(t))
    engine.run(until=2.5)
    assert (seen, engine.now, engine.pending) == ([1, 2], 2.5, 2)
    engine.run(until=10)
    assert seen == [1, 2, 3, 4]


def test_the_simulated_clock_reads_engine_time_as_utc() -> None:
    engine = Engine(START)
    engine.at(90.5, lambda: None)
    engine.run(until=100)
    assert engine.clock.now() == START + timedelta(seconds=100)
    assert engine.clock.now().tzinfo is UTC
