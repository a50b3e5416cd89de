"""The planner benchmark's parts: CA-like baseline, LP/ILP optimum, instance generator, runner."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest

from autoscaler.model.pool import AgentPool, NodeOption, Priority
from autoscaler.model.state import ClusterState
from autoscaler.planner.encode import encode
from autoscaler.planner.scaleup import plan_scale_up
from benchmarks.ca_baseline import run_ca
from benchmarks.instances import Instance, scale_instance, small_suite
from benchmarks.optimum import ilp_optimum, lp_bound, placed_by_plan
from benchmarks.planner_bench import main, measure, render_summary, render_table, summarize
from tests.builders import SPOT_TOLERATION, GiB, node, option, pod, pool, state

EPS = 1e-9


def _opt(name: str, cpu_m: int, mem: int, price: float, *, max_count: int = 10,
         spot: bool = False) -> tuple[AgentPool, NodeOption]:
    p = pool(name, max_count=max_count, priority=Priority.SPOT if spot else Priority.REGULAR)
    return p, option(p, cpu_m, mem, price=price)


def _state(opts: list[tuple[AgentPool, NodeOption]], pods: list[tuple[int, int, int, bool]],
           nodes: int = 0) -> ClusterState:
    """``pods``: (count, cpu_m, memory, tolerates spot) per owner; ``nodes`` empty 4-core nodes
    of the first pool."""
    pending = [
        pod(f"w{i}-{k}", cpu, mem, owner=f"ReplicaSet/w{i}",
            tolerations=(SPOT_TOLERATION,) if spot else ())
        for i, (count, cpu, mem, spot) in enumerate(pods)
        for k in range(count)
    ]
    registered = [node(f"n{k}", 4000, 16 * GiB, pool=opts[0][0].name) for k in range(nodes)]
    return state([p for p, _ in opts], [o for _, o in opts], pending, registered)


CA_CASES = [
    # id, options, pods, registered nodes, new nodes by option, unplaced, on existing, loops
    ("three small pods share one node", [_opt("a", 4000, 16 * GiB, 0.2)],
     [(3, 1000, GiB, False)], 0, {"a": 1}, 0, 0, 1),
    ("a pod per node when only one fits", [_opt("a", 2000, 8 * GiB, 0.1)],
     [(5, 1500, GiB, False)], 0, {"a": 5}, 0, 0, 1),
    ("a pod no template holds stays unplaced", [_opt("a", 2000, 8 * GiB, 0.1)],
     [(1, 3000, GiB, False), (1, 500, GiB, False)], 0, {"a": 1}, 1, 0, 1),
    ("the pool maximum caps the scale-up", [_opt("a", 2000, 8 * GiB, 0.1, max_count=2)],
     [(4, 1500, GiB, False)], 0, {"a": 2}, 2, 0, 1),
    ("free capacity of registered nodes is used first", [_opt("a", 4000, 16 * GiB, 0.2)],
     [(3, 1000, GiB, False)], 1, {}, 0, 3, 0),
    ("pods without the toleration never go to spot",
     [_opt("s", 4000, 16 * GiB, 0.05, spot=True), _opt("r", 4000, 16 * GiB, 0.2)],
     [(2, 1000, GiB, False)], 0, {"r": 1}, 0, 0, 1),
    ("spot comes first, then the rest in a second loop",
     [_opt("s", 4000, 16 * GiB, 0.05, spot=True), _opt("r", 4000, 16 * GiB, 0.2)],
     [(2, 1000, GiB, True), (2, 1000, GiB, False)], 0, {"s": 1, "r": 1}, 0, 0, 2),
    ("least waste picks the snugger template",
     [_opt("big", 16000, 64 * GiB, 0.4), _opt("small", 4000, 16 * GiB, 0.1)],
     [(3, 1000, 4 * GiB, False)], 0, {"small": 1}, 0, 0, 1),
]


@pytest.mark.parametrize(
    ("opts", "pods", "nodes", "expected", "unplaced", "on_existing", "loops"),
    [case[1:] for case in CA_CASES],
    ids=[case[0] for case in CA_CASES],
)
def test_the_ca_baseline_places_every_pod_it_should(
    opts: list[tuple[AgentPool, NodeOption]], pods: list[tuple[int, int, int, bool]], nodes: int,
    expected: dict[str, int], unplaced: int, on_existing: int, loops: int,
) -> None:
    result = run_ca(encode(_state(opts, pods, nodes)))
    assert dict(result.nodes) == expected
    assert result.unplaced == unplaced
    assert result.on_existing == on_existing
    assert result.loops == loops
    prices = {o.name: o.price_per_hour for _, o in opts}
    assert result.cost_per_hour == pytest.approx(sum(prices[k] * n for k, n in expected.items()))


def test_the_ca_baseline_fills_upcoming_nodes_before_adding_new_ones() -> None:
    p = pool("a", count=1, max_count=5)  # one node asked for, not registered yet
    st = state([p], [option(p, 4000, 16 * GiB)], [pod(f"x{i}", 1000, GiB) for i in range(5)])
    result = run_ca(encode(st))
    assert (result.on_existing, result.on_new, dict(result.nodes)) == (4, 1, {"a": 1})


@pytest.mark.parametrize(
    ("registered", "cost", "nodes"),
    [(0, 0.192, {"four": 1}), (1, 0.0, {})],
    ids=["no registered node", "a registered node with room for all"],
)
def test_the_exact_ilp_finds_the_known_optimum_and_the_lp_stays_below_it(
    registered: int, cost: float, nodes: dict[str, int],
) -> None:
    # Three 1-core pods: a 2-core node holds one (3 x 0.096), a 4-core node all three (0.192).
    st = _state([_opt("two", 1900, 8 * GiB, 0.096), _opt("four", 3860, 16 * GiB, 0.192)],
                [(3, 1000, GiB, False)], registered)
    enc = encode(st)
    lp = lp_bound(enc, enc.count)
    ilp = ilp_optimum(enc, enc.count, time_limit=5)
    assert ilp.status == "optimal"
    assert ilp.cost == pytest.approx(cost)
    assert dict(ilp.nodes) == nodes
    assert lp.cost is not None and lp.cost <= cost + EPS
    assert lp.cost < 0.192 - 1e-6


@pytest.mark.parametrize("index", [0, 1, 2])
def test_lp_bound_is_at_most_the_ilp_optimum_which_is_at_most_any_feasible_plan(
    index: int,
) -> None:
    inst = small_suite(11)[index]
    enc = encode(inst.state)
    plan = plan_scale_up(inst.state)
    ca = run_ca(enc)
    demand = np.minimum(placed_by_plan(enc, plan), ca.placed)
    feasible = min(plan.cost_per_hour, ca.cost_per_hour)
    lp = lp_bound(enc, demand)
    ilp = ilp_optimum(enc, demand, upper_cost=feasible, time_limit=5)
    assert lp.status == "optimal" and ilp.status == "optimal" and ilp.note == ""
    assert lp.cost is not None and ilp.cost is not None
    assert lp.cost <= ilp.cost + EPS
    assert ilp.cost <= plan.cost_per_hour + EPS
    assert ilp.cost <= ca.cost_per_hour + EPS


def test_the_small_suite_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    first, again, other = small_suite(5), small_suite(5), small_suite(6)
    assert [i.state for i in first] == [i.state for i in again]
    assert [i.state for i in first] != [i.state for i in other]


@pytest.mark.parametrize("with_nodes", [False, True])
def test_a_scale_instance_is_deterministic_and_has_its_announced_size(with_nodes: bool) -> None:
    a = scale_instance("1k", with_nodes, np.random.default_rng(3))
    b = scale_instance("1k", with_nodes, np.random.default_rng(3))
    assert a.state == b.state
    pending = [p for p in a.state.pods if p.node_name is None]
    assert len(pending) == a.pods == 1000
    assert len(a.state.options) == 60
    assert len(encode(a.state).groups) == a.shapes == 50
    assert len(a.state.nodes) == (50 if with_nodes else 0)


def _args(**overrides: object) -> argparse.Namespace:
    values = {"repeat": 1, "reference_max_pods": 10_000, "ilp_time_limit": 5.0}
    values.update(overrides)
    return argparse.Namespace(**values)


def test_a_measured_small_instance_reports_costs_that_respect_the_bounds() -> None:
    st = _state([_opt("two", 1900, 8 * GiB, 0.096), _opt("four", 3860, 16 * GiB, 0.192)],
                [(3, 1000, GiB, False)])
    row = measure(Instance("tiny", "small", "3 pods", st, 3, 1, 0), _args())
    assert row["reference"]["same_plan"] is True
    assert row["lp"]["cost_per_hour"] <= row["ilp"]["cost_per_hour"] + EPS
    assert row["ilp"]["cost_per_hour"] <= row["ours"]["cost_per_hour"] + EPS
    assert "tiny" in render_table([row])


@pytest.mark.parametrize(
    ("ours", "ca", "everywhere"),
    [(1.0, 1.0, True), (0.9, 1.0, True), (1.1, 1.0, False)],
)
def test_the_summary_says_whether_ours_costs_no_more_than_ca(
    ours: float, ca: float, everywhere: bool,
) -> None:
    row = {"name": "x", "ours": {"cost_per_hour": ours, "placed": 5},
           "ca": {"cost_per_hour": ca, "placed": 5}, "lp": {"cost_per_hour": 0.5},
           "reference": {"same_plan": True}}
    summary = summarize([row])
    assert summary["ours_cost_le_ca_everywhere"] is everywhere
    assert summary["geomean_ours_over_lp"] == pytest.approx(ours / 0.5)


@pytest.mark.parametrize("argv", [["--sizes", "2k"], ["--repeat", "0"]])
def test_the_runner_refuses_bad_arguments_with_exit_code_2(argv: list[str]) -> None:
    assert main(argv) == 2


def test_the_summary_tells_the_scale_suite_from_the_small_one_where_the_lp_is_loose() -> None:
    def row(name: str, suite: str, ours: float, lp: float, ilp: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": name, "suite": suite, "ours": {"cost_per_hour": ours, "placed": 1},
            "ca": {"cost_per_hour": ours, "placed": 1}, "lp": {"cost_per_hour": lp},
            "reference": {"same_plan": True}}  # fmt: skip
        if ilp is not None:
            out["ilp"] = {"cost_per_hour": ilp, "bound": ilp * 0.9}
        return out

    summary = summarize([row("big", "scale", 1.1, 1.0, None), row("tiny", "small", 2.0, 1.0, 2.0)])
    assert summary["geomean_ours_over_lp_scale_suite"] == pytest.approx(1.1)
    assert summary["geomean_ilp_over_lp_small_suite"] == pytest.approx(2.0)
    assert summary["geomean_ours_over_lp"] == pytest.approx((1.1 * 2.0) ** 0.5)
    assert "scale suite ours/LP: 1.100" in render_summary(summary)
    # No plan beats the ILP's proven bound (1.8 x LP) on the small one, nor the LP on the other.
    assert summary["geomean_floor_over_lp"] == pytest.approx((1.0 * 1.8) ** 0.5)
    assert "lowest ours/LP any plan can reach: 1.342" in render_summary(summary)
