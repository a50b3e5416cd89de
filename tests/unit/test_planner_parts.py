"""The kernel's fast parts agree with the definitions they replace.

``choice.best_class`` must pick exactly the class ``policy.rank_row`` ranks first among those
with room; ``budget.Rooms`` must say what ``Budget.room`` says after any sequence of takes;
``packing.spread_picks`` and ``policy.waterfill`` must equal the greedy loops they are the
closed forms of. The planner
property tests check whole plans; these check each part on inputs that stress its ties.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.model.plan import ClusterLimits, Policy
from autoscaler.planner.budget import Budget, Rooms
from autoscaler.planner.choice import Choice, best_class
from autoscaler.planner.packing import first_fit, spread_picks
from autoscaler.planner.policy import rank_row, waterfill
from tests.builders import GiB, option, pool


@st.composite
def option_sets(draw: st.DrawFn) -> dict[str, object]:
    """Kinds of (tier, price, pods per node), each in one to three zones."""
    tiers, prices, sizes, zones, usable, rooms = [], [], [], [], [], []
    for _ in range(draw(st.integers(1, 6))):
        tier = draw(st.integers(0, 1))
        # Prices and sizes in ratio 2: price per pod ties across kinds often (0.2 / 2 == 0.1).
        price = draw(st.sampled_from([0.1, 0.2, 0.4, 0.3]))
        size = draw(st.sampled_from([1, 2, 4, 3]))
        for zone in range(draw(st.integers(1, 3))):
            tiers.append(tier)
            prices.append(price)
            sizes.append(size)
            zones.append(zone if draw(st.integers(0, 5)) else -1)
            usable.append(draw(st.integers(0, 5)) > 0)
            rooms.append(draw(st.sampled_from([0, 1, 5])))
    n = len(tiers)
    names = draw(st.permutations(range(n)))
    quota = draw(st.none() | st.dictionaries(st.integers(0, 2), st.integers(0, 3)))
    left = draw(st.integers(1, 6))
    return {"tiers": tiers, "prices": prices, "sizes": sizes, "zones": zones,
            "usable": usable, "rooms": rooms, "names": list(names), "quota": quota,
            "left": left}  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(option_sets())
def test_best_class_is_the_first_ranked_class_with_room(case: dict[str, object]) -> None:
    tiers: list[int] = case["tiers"]  # type: ignore[assignment]
    prices: list[float] = case["prices"]  # type: ignore[assignment]
    sizes: list[int] = case["sizes"]  # type: ignore[assignment]
    zones: list[int] = case["zones"]  # type: ignore[assignment]
    usable: list[bool] = case["usable"]  # type: ignore[assignment]
    rooms: list[int] = case["rooms"]  # type: ignore[assignment]
    names: list[int] = case["names"]  # type: ignore[assignment]
    quota: dict[int, int] | None = case["quota"]  # type: ignore[assignment]
    left: int = case["left"]  # type: ignore[assignment]
    n = len(tiers)
    alloc = np.array([[s * 1000, 1] for s in sizes], dtype=np.int64)
    choice = Choice(
        np.array([usable]), np.array([sizes], dtype=np.int64), alloc,
        np.array(tiers, dtype=np.int64), np.array(prices), np.array(names, dtype=np.int64),
    )  # fmt: skip

    def open_now(o: int) -> bool:
        return rooms[o] > 0 and (quota is None or quota.get(zones[o], 0) > 0)

    classes = rank_row(
        [o for o in range(n) if usable[o]], tiers, prices, [min(s, left) for s in sizes], names
    )
    expected = next(([o for o in c if open_now(o)] for c in classes if any(map(open_now, c))), [])
    got = best_class(
        choice.scan_lists(0), choice.members, usable, left, rooms, quota, zones,
        choice.kind_tier, choice.kind_price, names,
    )  # fmt: skip
    assert got == expected


@st.composite
def budget_runs(draw: st.DrawFn) -> tuple[Budget, list[int]]:
    n = draw(st.integers(1, 5))
    sizes = [draw(st.sampled_from([(2, 8), (4, 16), (16, 64)])) for _ in range(n)]
    options = tuple(
        option(pool(f"p{i}", f"Standard_S{cpu}"), cpu * 1000, mem * GiB, vcpus=cpu)
        for i, (cpu, mem) in enumerate(sizes)
    )
    unlimited = 1 << 60
    budget = Budget(
        options=options,
        max_count=[10] * n,
        headroom=[draw(st.integers(0, 6)) for _ in range(n)],
        backoff=[draw(st.sampled_from([None, None, "pool in backoff"])) for _ in range(n)],
        nodes_left=draw(st.sampled_from([unlimited, 0, 3, 8])),
        cores_left=draw(st.sampled_from([unlimited, 10, 40])),
        memory_left=draw(st.sampled_from([unlimited, 40 * GiB, 200 * GiB])),
        new_left=draw(st.sampled_from([unlimited, 5])),
        limits=ClusterLimits(max_nodes=10, max_cores=40, max_memory_bytes=200 * GiB),
        policy=Policy(max_new_nodes=5),
    )
    takes = draw(st.lists(st.integers(0, n - 1), max_size=12))
    return budget, takes


@settings(max_examples=300, deadline=None)
@given(budget_runs())
def test_rooms_says_what_budget_room_says_after_every_take(run: tuple[Budget, list[int]]) -> None:
    budget, takes = run
    vcpus = np.array([o.template.vcpus for o in budget.options], dtype=np.int64)
    memory = np.array([o.template.memory_bytes for o in budget.options], dtype=np.int64)
    rooms = Rooms(budget, vcpus, memory)
    for o in takes:
        assert rooms.left == [budget.room(i)[0] for i in range(len(budget.options))]
        if rooms.left[o] > 0:
            rooms.take(o, 1)
    assert rooms.left == [budget.room(i)[0] for i in range(len(budget.options))]


def _greedy_picks(counts: list[int], step: int, caps: list[int], total: int) -> list[int]:
    level, taken, picks = list(counts), [0] * len(counts), []
    for _ in range(total):
        open_slots = [j for j in range(len(level)) if taken[j] < caps[j]]
        if not open_slots:
            break
        i = min(open_slots, key=lambda j: (level[j], j))
        picks.append(i)
        level[i] += step
        taken[i] += 1
    return picks


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=4),
    st.integers(1, 9),
    st.data(),
)
def test_spread_picks_is_the_greedy_lowest_count_loop(
    counts: list[int], step: int, data: st.DataObject
) -> None:
    caps = data.draw(st.lists(st.integers(0, 40), min_size=len(counts), max_size=len(counts)))
    total = data.draw(st.integers(0, 80))  # both sides of the small-input shortcut
    assert spread_picks(counts, step, caps, total).tolist() == _greedy_picks(
        counts, step, caps, total
    )


def _greedy_fill(levels: list[int], caps: list[int], total: int, offset: list[int] | None
                 ) -> list[int]:
    """One unit at a time to the lowest level; ties by ``(share + offset) % 3``, then index."""
    out = [0] * len(levels)
    for _ in range(total):
        open_ = [i for i in range(len(levels)) if out[i] < caps[i]]
        if not open_:
            break
        i = min(open_, key=lambda i: (levels[i] + out[i],
                                      0 if offset is None else (out[i] + offset[i]) % 3, i))
        out[i] += 1
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.integers(0, 30), st.data())
def test_waterfill_is_the_greedy_lowest_level_loop_with_its_tie_order(
    levels: list[int], total: int, data: st.DataObject
) -> None:
    n = len(levels)
    caps = data.draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    offset = data.draw(st.none() | st.lists(st.integers(0, 2), min_size=n, max_size=n))
    tie = None if offset is None else (lambda i, share: (share + offset[i]) % 3)
    assert waterfill(levels, caps, total, tie) == _greedy_fill(levels, caps, total, offset)


@pytest.mark.parametrize(
    ("fit", "pods", "expected"),
    [
        pytest.param([3, 2, 5], 4, [3, 1, 0], id="fills-the-first-node-first"),
        pytest.param([0, 2, 5], 9, [0, 2, 5], id="more-pods-than-room-takes-all-room"),
        pytest.param([], 3, [], id="no-nodes-takes-nothing"),
    ],
)
def test_first_fit_fills_nodes_in_order(fit: list[int], pods: int, expected: list[int]) -> None:
    assert first_fit(np.array(fit, dtype=np.int64), pods).tolist() == expected
