"""What the cost studies share: the instances they score, our plan and the LP bound for each.

Callers: ``benchmarks.prototypes.bin_centric``, ``benchmarks.prototypes.pairing`` and
``benchmarks.config_lp``. Instances come from ``default_rng(seed)`` (not the suite's per-position
seeds), so their figures compare with each other, not with ``surge bench planner``'s table.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from autoscaler.model.state import ClusterState
from autoscaler.planner.encode import I64, Encoded, encode
from autoscaler.planner.scaleup import plan_scale_up
from benchmarks.instances import scale_instance
from benchmarks.optimum import lp_bound, placed_by_plan
from benchmarks.planner_bench import geomean


@dataclass(frozen=True, slots=True)
class Scored:
    """One instance: ``demand`` is what our plan places, ``ours`` its cost, ``bound`` the LP's
    (NaN when the LP fails), both USD/hour."""

    label: str
    enc: Encoded
    demand: I64
    ours: float
    bound: float


def score(label: str, state: ClusterState) -> Scored:
    plan = plan_scale_up(state)
    enc = encode(state)
    demand = placed_by_plan(enc, plan)
    return Scored(label, enc, demand, plan.cost_per_hour, lp_bound(enc, demand).cost or math.nan)


def scale_states(sizes: str, seeds: str) -> list[tuple[str, ClusterState]]:
    """``sizes`` like ``1k,10k+nodes`` and ``seeds`` like ``0,1``: (label, state) of each."""
    out = []
    for name in (s for s in sizes.split(",") if s):
        size, _, nodes = name.partition("+")
        for seed in (int(s) for s in seeds.split(",")):
            state = scale_instance(size, bool(nodes), np.random.default_rng(seed)).state
            out.append((f"{name} seed {seed}", state))
    return out


def scored(sizes: str, seeds: str) -> Iterator[Scored]:
    for label, state in scale_states(sizes, seeds):
        yield score(label, state)


def parser(prog: str, doc: str | None, sizes: str) -> argparse.ArgumentParser:
    """The ``--sizes`` and ``--seeds`` options every study takes."""
    out = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0] if doc else None)
    out.add_argument("--sizes", default=sizes, help="scale instances")
    out.add_argument("--seeds", default="0,1", help="instance generator seeds")
    return out


def print_geomeans(ratios: Mapping[str, Sequence[float]]) -> None:
    for what, values in ratios.items():
        mean = geomean(values)
        print(f"geometric mean {what}/LP: {'-' if mean is None else f'{mean:.4f}'}")
