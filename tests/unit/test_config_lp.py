"""The configuration-LP bound (benchmarks.config_lp): tighter than the LP, never above the ILP."""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.model.pool import Priority
from autoscaler.model.state import ClusterState
from autoscaler.planner.encode import encode
from autoscaler.planner.scaleup import plan_scale_up
from benchmarks.config_lp import config_bound
from benchmarks.instances import small_suite
from benchmarks.optimum import ilp_optimum, lp_bound, placed_by_plan
from tests.builders import GiB, node, option, pod, pool, state

EPS = 1e-6


def _one_pool(pods: list[tuple[int, int]], price: float = 0.1, registered: int = 0,
              ) -> ClusterState:
    """One regular 2-core pool; ``pods`` as (count, cpu millicores), 1 GiB each."""
    p = pool("a", max_count=20, priority=Priority.REGULAR)
    pending = [pod(f"w{i}-{k}", cpu, GiB, owner=f"ReplicaSet/w{i}")
               for i, (count, cpu) in enumerate(pods) for k in range(count)]
    nodes = [node(f"n{k}", 2000, 8 * GiB, pool="a") for k in range(registered)]
    return state([p], [option(p, 1900, 8 * GiB, price=price)], pending, nodes)


@pytest.mark.parametrize(
    ("pods", "nodes"),
    [
        ([(3, 1100)], 3),  # one pod per node: the LP splits nodes (3 x 1100 / 1900 = 1.74)
        ([(2, 1100), (2, 800)], 2),  # 1100 + 800 fit one node twice: the LP is tight
        # Two per node: configurations may still be opened fractionally (2.5 nodes; whole
        # nodes need 3), but that is above the LP's 5 x 700 / 1900 = 1.84.
        ([(5, 700)], 2.5),
    ],
    ids=["one per node", "pairs fill nodes", "half nodes of whole configurations"],
)
def test_the_configuration_bound_counts_whole_nodes_where_the_lp_splits_them(
    pods: list[tuple[int, int]], nodes: float,
) -> None:
    enc = encode(_one_pool(pods))
    got = config_bound(enc, enc.count, time_limit=30)
    lp = lp_bound(enc, enc.count).cost
    assert got.converged
    assert got.bound == pytest.approx(0.1 * nodes)
    assert lp is not None and lp <= got.bound + EPS


@pytest.mark.parametrize("index", [0, 1, 2, 4])
def test_the_configuration_bound_lies_between_the_lp_and_the_exact_optimum(index: int) -> None:
    inst = small_suite(0)[index]
    assert not inst.nodes
    enc = encode(inst.state)
    demand = placed_by_plan(enc, plan_scale_up(inst.state))
    got = config_bound(enc, demand, time_limit=30)
    lp, ilp = lp_bound(enc, demand).cost, ilp_optimum(enc, demand, time_limit=10)
    assert got.converged and ilp.status == "optimal"
    assert lp is not None and ilp.cost is not None
    assert lp - EPS <= got.bound <= ilp.cost + EPS
    assert got.bound <= got.master + EPS


def test_the_configuration_bound_refuses_instances_with_registered_nodes() -> None:
    enc = encode(_one_pool([(1, 500)], registered=1))
    with pytest.raises(ValueError, match="registered or upcoming nodes"):
        config_bound(enc, np.ones(len(enc.groups), dtype=np.int64))
