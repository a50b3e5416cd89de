"""A tighter lower bound on new-node cost: the configuration LP, by column generation.

Callers: people (``python -m benchmarks.config_lp``), to tell how much of the planner's gap to
the LP bound of ``benchmarks.optimum`` is real; the unit tests. It answers "can any plan be
within 3% of the LP?" (benchmarks/README.md, "Can the 3% target be met on this suite?").

``optimum.lp_bound`` lets pods split across nodes: a node is a pool of capacity. Here a new node
is a *configuration*, a whole number of pods of each group that fits one node of a VM size and
priority (a *kind*), and the LP chooses how many nodes of each configuration to open (Gilmore and
Gomory's cutting-stock LP; columns found by solving one integer knapsack per kind, HiGHS through
``scipy.optimize``). Its value can be above the pod-splitting LP and never above the optimum.

Relaxations, each of which only lowers the bound: zones are merged (a kind's headroom is the sum
over its open options), required zone spread is dropped, and pools' headroom is kept only per
kind. Instances with registered or upcoming nodes are refused (their free capacity would need
one knapsack per node).

The bound holds at every iteration. Take the demand duals ``pi`` of any master solve, and an
upper bound ``z_k`` on each kind's best configuration value ``pi . a`` (the knapsack's proven
dual bound). Then the Lagrangian ``pi . d + sum_k H_k min(0, c_k - z_k)`` is below the optimum
for every ``pi >= 0``, and so is Farley's ``pi . d / max(1, max_k z_k / c_k)``, which drops the
headroom rows. At convergence the Lagrangian equals the master's value. The loop stops there,
or at the time limit with the best bound so far.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csc_array

from autoscaler.planner.encode import Encoded
from benchmarks.ca_baseline import pods_per_empty_node
from benchmarks.instances import small_suite
from benchmarks.optimum import ilp_optimum
from benchmarks.prototypes.scoring import parser as scoring_parser
from benchmarks.prototypes.scoring import scale_states, score

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
TOLERANCE = 1e-7


@dataclass(frozen=True, slots=True)
class Bound:
    """``bound``: proven lower bound (USD/hour); ``master``: the master LP's value, an upper
    bound on the configuration LP; equal when ``converged``."""

    bound: float
    master: float
    converged: bool
    iterations: int
    columns: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Kinds:
    alloc: I64  # (K, R)
    price: F64  # (K,)
    headroom: I64  # (K,) open nodes the kind's options allow in total
    fits: I64  # (G, K) pods of g one node of k holds (0: not usable)


def _kinds(enc: Encoded) -> _Kinds:
    """Options merged by (VM size, tier, price, allocatable): zones become one kind."""
    per_node = np.where(enc.compat, pods_per_empty_node(enc), 0)
    index: dict[tuple[object, ...], int] = {}
    members: list[list[int]] = []
    for o, option in enumerate(enc.options):
        key = (option.vm_size, int(enc.tier[o]), float(enc.price[o]), enc.alloc[o].tobytes())
        if key not in index:
            index[key] = len(members)
            members.append([])
        members[index[key]].append(o)
    open_room = np.where([b is None for b in enc.backoff], enc.headroom, 0)
    return _Kinds(
        alloc=np.array([enc.alloc[m[0]] for m in members], dtype=np.int64),
        price=np.array([enc.price[m[0]] for m in members], dtype=np.float64),
        headroom=np.array([open_room[m].sum() for m in members], dtype=np.int64),
        fits=np.stack([per_node[:, m].max(axis=1) for m in members], axis=1),
    )


def config_bound(enc: Encoded, demand: I64, *, time_limit: float = 120.0) -> Bound:
    """Configuration-LP lower bound on the new-node cost of placing ``demand``."""
    if len(enc.nodes) or enc.upcoming.any():
        raise ValueError("config_bound: instances with registered or upcoming nodes are not "
                         "supported")
    start = time.perf_counter()
    kinds = _kinds(enc)
    want = np.flatnonzero(demand > 0)
    d = demand[want].astype(np.float64)
    req = enc.req[want]
    fits = kinds.fits[want]  # (W, K)
    if (fits.max(axis=1, initial=0) == 0).any():
        raise ValueError("config_bound: a group with demand fits no kind")
    # Start from single-group columns: every usable kind filled with one group.
    cols_k: list[int] = []
    cols_a: list[I64] = []
    for k in range(len(kinds.price)):
        for w in np.flatnonzero(fits[:, k]):
            a = np.zeros(len(want), dtype=np.int64)
            a[w] = min(int(fits[w, k]), int(demand[want[w]]))
            cols_k.append(k)
            cols_a.append(a)
    best = -math.inf
    iterations = 0
    while True:
        iterations += 1
        value, pi, mu = _master(cols_k, cols_a, d, kinds)
        z = np.zeros(len(kinds.price))
        found: list[tuple[int, I64]] = []
        for k in range(len(kinds.price)):
            a, upper = _price(k, pi, req, kinds, fits, demand[want])
            z[k] = upper
            if a is not None and kinds.price[k] - mu[k] - float(pi @ a) < -TOLERANCE:
                found.append((k, a))
        room = np.minimum(0.0, kinds.price - z)
        # Farley's bound drops the headroom rows (a relaxation): pi / theta is dual feasible.
        theta = max(1.0, float((z / kinds.price).max(initial=0.0)))
        best = max(best, float(pi @ d + kinds.headroom @ room), float(pi @ d) / theta)
        converged = not found
        if converged or time.perf_counter() - start > time_limit:
            return Bound(best, value, converged, iterations, len(cols_k),
                         time.perf_counter() - start)
        for k, a in found:
            cols_k.append(k)
            cols_a.append(a)


def _master(cols_k: list[int], cols_a: list[I64], d: F64, kinds: _Kinds) -> tuple[float, F64, F64]:
    """Solve the master LP; its value, demand duals ``pi`` (>= 0), headroom duals ``mu`` (<= 0)."""
    n = len(cols_k)
    a = np.stack(cols_a, axis=1).astype(np.float64)  # (W, n)
    own = np.zeros((len(kinds.price), n))
    own[cols_k, np.arange(n)] = 1.0
    res = linprog(
        kinds.price[cols_k],
        A_ub=csc_array(np.vstack([-a, own])),
        b_ub=np.concatenate([-d, kinds.headroom.astype(np.float64)]),
        bounds=(0, None),
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError(f"config_bound: master LP failed: {res.message}")
    marginals = res.ineqlin.marginals
    pi = np.maximum(-marginals[: len(d)], 0.0)
    mu = np.minimum(marginals[len(d):], 0.0)
    return float(res.fun), pi, mu


@contextmanager
def _quiet() -> Iterator[None]:
    """HiGHS's MIP solver sometimes writes a debug line to the process's stdout (file
    descriptor 1, below Python): keep it out of the table."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _price(k: int, pi: F64, req: I64, kinds: _Kinds, fits: I64, demand: I64
           ) -> tuple[I64 | None, float]:
    """The configuration of kind k worth most at prices ``pi``, and a proven upper bound on
    its worth (the knapsack's dual bound)."""
    useful = np.flatnonzero((pi > 0) & (fits[:, k] > 0))  # the others add nothing to pi . a
    if not len(useful):
        return None, 0.0
    axes = np.flatnonzero(req[useful].any(axis=0))
    upper = np.minimum(fits[useful, k], demand[useful]).astype(np.float64)
    with _quiet():
        res = milp(
            -pi[useful],
            integrality=np.ones(len(useful)),
            bounds=Bounds(np.zeros(len(useful)), upper),
            constraints=LinearConstraint(req[useful][:, axes].T.astype(np.float64), -np.inf,
                                         kinds.alloc[k, axes].astype(np.float64)),
            options={"disp": False, "mip_rel_gap": 1e-9, "time_limit": 30.0},
        )
    bound = getattr(res, "mip_dual_bound", None)
    if res.x is None:
        return None, float(pi[useful] @ upper)  # no solution: the trivial bound
    x = np.rint(res.x).astype(np.int64)
    a = np.zeros(len(pi), dtype=np.int64)
    a[useful] = x
    if (req[useful][:, axes].T @ x > kinds.alloc[k, axes]).any():  # float tolerance: refuse
        a = np.zeros(len(pi), dtype=np.int64)
    proven = -float(bound) if bound is not None and np.isfinite(bound) else float(pi @ a)
    return a, max(proven, float(pi @ a))


def main(argv: Sequence[str]) -> int:
    parser = scoring_parser("python -m benchmarks.config_lp", __doc__, "1k,10k")
    parser.add_argument("--small", action="store_true",
                        help="also the small suite's instances without nodes, against the ILP")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per instance")
    args = parser.parse_args(argv)
    cases = scale_states(args.sizes, args.seeds)
    if args.small:
        cases += [(inst.name, inst.state) for inst in small_suite(0) if not inst.nodes]
    print("instance          ours $/h    LP $/h  config $/h  config/LP  ours/config  "
          "ILP $/h  iterations  seconds  master $/h")
    for name, state in cases:
        case = score(name, state)
        lp = case.bound
        got = config_bound(case.enc, case.demand, time_limit=args.time_limit)
        ilp = ilp_optimum(case.enc, case.demand).cost if name.startswith("small") else None
        flag = "" if got.converged else "*"
        print(f"{name:16s} {case.ours:9.3f} {lp:9.3f} {got.bound:10.3f}{flag:1s} "
              f"{got.bound / lp:9.4f} {case.ours / got.bound:11.4f}  "
              f"{'-' if ilp is None else f'{ilp:7.3f}':>7s} {got.iterations:10d} "
              f"{got.seconds:8.1f}  {got.master:10.3f}", flush=True)
    print("* time limit: the best bound found, not the configuration LP's value")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
