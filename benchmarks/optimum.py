"""The optimum new-node cost of a backlog: an LP lower bound, and an exact ILP on small instances.

Callers: ``benchmarks.planner_bench`` (quality columns: ours / LP, ours vs ILP) and the unit
tests. Both solvers are scipy's HiGHS (``scipy.optimize.linprog``, ``scipy.optimize.milp``).

The *demand* is how many pods of each group must be placed (the benchmark passes the pods that
both our plan and the baseline placed, so unplaceable pods drop out). Capacity: the free
capacity of registered and upcoming nodes (no charge), and new nodes of each option (``price``
per node-hour, at most ``headroom``, none while the option is in backoff).

* LP (``lp_bound``): continuous nodes ``x[o]`` and pods ``y[g, o]``, per axis
  ``sum_g req[g, r] * y[g, o] <= alloc[o, r] * x[o]``; registered nodes are bins of their own,
  or, past ``LP_MAX_NODE_PAIRS`` (group, node) pairs, merged into classes of equal
  compatibility and zone (merging bins only relaxes, and loosens the bound). Without
  integrality and per-node packing it is a lower bound on any plan placing the same pods.
* ILP (``ilp_optimum``): explicit bins, at most ``K[o]`` new nodes of option ``o``, a binary
  "node used" per bin and integer pods per (group, bin), each registered node its own bin, and
  the bins of one option used in order (symmetry breaking). ``K[o]`` is the first-fit node count
  of all the demand compatible with ``o``: an optimal plan never holds more nodes of ``o`` than
  an optimal packing of the pods it puts there, which needs no more nodes than a feasible
  packing of a superset of them. The solution is re-checked in exact integers.

Both model a required zone spread as ``count[a] - count[b] <= maxSkew`` between the group's
eligible zones, which is what one-at-a-time scheduling leaves when no matching pod runs yet;
groups with matching pods already running are left unconstrained (a relaxation). A per-node cap
(self anti-affinity, hostname spread) becomes ``y[g, bin] <= cap[g] * x[bin]``. Cluster-wide
limits (max nodes, cores, memory) are not modelled: the benchmark instances set none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, OptimizeResult, linprog, milp
from scipy.sparse import csr_array

from autoscaler.model.plan import ScaleUpPlan
from autoscaler.planner.encode import UNLIMITED, Encoded
from benchmarks.ca_baseline import estimate, pods_per_empty_node, prepare

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]
ILP_MAX_VARIABLES = 60_000
LP_MAX_NODE_PAIRS = 250_000  # (group, registered node) pairs the LP keeps per node


@dataclass(frozen=True, slots=True)
class Solution:
    """``status``: optimal, time limit, infeasible, too large, or error; costs in USD/hour."""

    status: str
    cost: float | None  # objective of the best solution found
    bound: float | None  # proven lower bound (equals ``cost`` when optimal)
    seconds: float
    nodes: tuple[tuple[str, float], ...] = ()  # (option, new nodes), fractional for the LP
    note: str = ""


def placed_by_plan(enc: Encoded, plan: ScaleUpPlan) -> I64:
    """Pods of each encoded group that ``plan`` places (existing, upcoming or new nodes)."""
    placed = {o.group: o.placed for o in plan.groups}
    return np.array([placed.get(g.key, 0) for g in enc.groups], dtype=np.int64)


@dataclass
class _Model:
    """Variables ``[bins | y (group, bin) | e (group, fixed bin)]`` and sparse rows."""

    n_vars: int
    rows_r: list[I64] = field(default_factory=list)
    rows_c: list[I64] = field(default_factory=list)
    rows_v: list[F64] = field(default_factory=list)
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)

    def rows(self, lo: F64 | float, hi: F64 | float, n: int) -> int:
        first = len(self.lo)
        self.lo += list(np.broadcast_to(np.asarray(lo, dtype=np.float64), (n,)))
        self.hi += list(np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,)))
        return first

    def put(self, rows: I64 | int, cols: I64, vals: F64 | float) -> None:
        cols = np.asarray(cols, dtype=np.int64)
        self.rows_r.append(np.broadcast_to(np.asarray(rows, dtype=np.int64), cols.shape))
        self.rows_c.append(cols)
        self.rows_v.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), cols.shape))

    def matrix(self) -> csr_array:
        empty = not self.rows_r
        rows = np.zeros(0, dtype=np.int64) if empty else np.concatenate(self.rows_r)
        cols = np.zeros(0, dtype=np.int64) if empty else np.concatenate(self.rows_c)
        vals = np.zeros(0) if empty else np.concatenate(self.rows_v)
        return csr_array((vals, (rows, cols)), shape=(len(self.lo), self.n_vars))


@dataclass(frozen=True, slots=True)
class _Layout:
    bin_option: I64  # (B,) option of each priced bin
    fixed_cap: I64  # (F, R)
    fixed_ok: BOOL  # (G, F) group may use the fixed bin (and its per-node cap is > 0)
    fixed_limit: I64  # (G, F) at most this many pods of g on the fixed bin
    fixed_zone: tuple[str | None, ...]
    new_pairs: I64  # (Y, 2) (group, bin)
    fix_pairs: I64  # (E, 2) (group, fixed bin)


def _fixed_bins(enc: Encoded, merge: bool) -> tuple[I64, BOOL, I64, tuple[str | None, ...]]:
    """Registered nodes (merged into classes when ``merge``) and upcoming nodes, as free bins."""
    usable = enc.node_compat & (enc.node_cap > 0)
    caps: list[I64] = []
    oks: list[BOOL] = []
    limits: list[I64] = []
    zones: list[str | None] = []
    index: dict[tuple[object, ...], int] = {}
    for n, node in enumerate(enc.nodes):
        key = (node.zone, usable[:, n].tobytes())
        if merge and key in index:
            i = index[key]
            caps[i] = caps[i] + enc.node_free[n]
            limits[i] = np.minimum(limits[i] + enc.node_cap[:, n], UNLIMITED)
            continue
        index[key] = len(caps)
        caps.append(enc.node_free[n].copy())
        oks.append(usable[:, n])
        limits.append(enc.node_cap[:, n].copy())
        zones.append(node.zone)
    for o in np.flatnonzero(enc.upcoming > 0):
        copies = 1 if merge else int(enc.upcoming[o])
        for _ in range(copies):
            caps.append(enc.alloc[o] * (int(enc.upcoming[o]) if merge else 1))
            oks.append(enc.compat[:, o])
            limits.append(np.full(len(enc.groups), UNLIMITED, dtype=np.int64))
            zones.append(enc.option_zone[o])
    n_g, n_r = len(enc.groups), len(enc.axes)
    return (
        np.array(caps, dtype=np.int64).reshape(len(caps), n_r),
        np.array(oks, dtype=bool).reshape(len(oks), n_g).T,
        np.array(limits, dtype=np.int64).reshape(len(limits), n_g).T,
        tuple(zones),
    )


def _open_headroom(enc: Encoded) -> I64:
    room = enc.headroom.copy()
    room[[o for o, why in enumerate(enc.backoff) if why is not None]] = 0
    return room


def _build(enc: Encoded, demand: I64, bin_option: I64, merge: bool, integer: bool
           ) -> tuple[_Model, _Layout, list[tuple[int, int]]]:
    """Rows shared by the LP and the ILP; returns the model, its layout and spread row ranges."""
    fcap, fok, flimit, fzone = _fixed_bins(enc, merge)
    want = demand > 0
    per_node = pods_per_empty_node(enc)
    bin_ok = (enc.compat & (per_node > 0))[:, bin_option] & want[:, None]
    new_pairs = np.argwhere(bin_ok)
    fix_pairs = np.argwhere(fok & want[:, None])
    n_b, n_y, n_e = len(bin_option), len(new_pairs), len(fix_pairs)
    y0, e0 = n_b, n_b + n_y
    model = _Model(n_b + n_y + n_e)
    yg, yb = new_pairs[:, 0], new_pairs[:, 1]
    eg, ef = fix_pairs[:, 0], fix_pairs[:, 1]
    ycols, ecols = y0 + np.arange(n_y), e0 + np.arange(n_e)

    first = model.rows(demand.astype(np.float64), demand.astype(np.float64), len(demand))
    model.put(first + yg, ycols, 1.0)
    model.put(first + eg, ecols, 1.0)

    scale = np.maximum(enc.alloc.max(axis=0), 1).astype(np.float64) if len(enc.options) else None
    for r in range(len(enc.axes)):
        if scale is None or not (enc.req[want, r] > 0).any():
            continue
        base = model.rows(-np.inf, 0.0, n_b)
        model.put(base + yb, ycols, enc.req[yg, r] / scale[r])
        model.put(base + np.arange(n_b), np.arange(n_b), -enc.alloc[bin_option, r] / scale[r])
        base = model.rows(-np.inf, fcap[:, r] / scale[r], len(fcap))
        model.put(base + ef, ecols, enc.req[eg, r] / scale[r])

    # Link pods to their bin: the per-node cap, and in the ILP the tighter "fits one node".
    if integer:
        tied = np.arange(n_y)
        link = np.minimum(per_node[yg, bin_option[yb]], demand[yg])
    else:
        tied = np.flatnonzero(enc.pernode_cap[yg] < UNLIMITED)
        link = enc.pernode_cap[yg]
    if len(tied):
        base = model.rows(-np.inf, 0.0, len(tied))
        model.put(base + np.arange(len(tied)), ycols[tied], 1.0)
        model.put(base + np.arange(len(tied)), yb[tied], -link[tied].astype(np.float64))

    spread = _spread_rows(enc, demand, model, yg, [enc.option_zone[o] for o in bin_option[yb]],
                          ycols, eg, [fzone[f] for f in ef], ecols)
    layout = _Layout(bin_option, fcap, fok, flimit, fzone, new_pairs, fix_pairs)
    return model, layout, spread


def _spread_rows(enc: Encoded, demand: I64, model: _Model, yg: I64, yzone: list[str | None],
                 ycols: I64, eg: I64, ezone: list[str | None], ecols: I64) -> list[tuple[int, int]]:
    """``count[a] - count[b] <= maxSkew`` for zone-spread groups with no matching pod yet."""
    added: list[tuple[int, int]] = []
    for g, spread in enumerate(enc.zone_spread):
        if spread is None or demand[g] == 0 or any(spread.existing):
            continue
        start = len(model.lo)
        cols = {z: np.concatenate([ycols[(yg == g) & np.array([y == z for y in yzone], bool)],
                                   ecols[(eg == g) & np.array([e == z for e in ezone], bool)]])
                for z in spread.zones}
        if len(spread.zones) < spread.min_domains:
            # Fewer domains than minDomains: the global minimum stays 0, maxSkew per zone.
            for z in spread.zones:
                model.put(model.rows(-np.inf, spread.max_skew, 1), cols[z], 1.0)
        else:
            for a in spread.zones:
                for b in spread.zones:
                    if a != b:
                        row = model.rows(-np.inf, spread.max_skew, 1)
                        model.put(row, cols[a], 1.0)
                        model.put(row, cols[b], -1.0)
        added.append((start, len(model.lo)))
    return added


def _without(model: _Model, ranges: list[tuple[int, int]]) -> _Model:
    """The model with the rows in ``ranges`` made free (used to relax zone spread)."""
    out = _Model(model.n_vars, model.rows_r, model.rows_c, model.rows_v,
                 list(model.lo), list(model.hi))
    for start, stop in ranges:
        out.lo[start:stop] = [-np.inf] * (stop - start)
        out.hi[start:stop] = [np.inf] * (stop - start)
    return out


def lp_bound(enc: Encoded, demand: I64) -> Solution:
    """LP lower bound on the new-node cost of placing ``demand[g]`` pods of each group."""
    start = time.perf_counter()
    n_opt = len(enc.options)
    merge = len(enc.nodes) * len(enc.groups) > LP_MAX_NODE_PAIRS
    model, lay, spread = _build(enc, demand, np.arange(n_opt), merge=merge, integer=False)
    cost = np.zeros(model.n_vars)
    cost[:n_opt] = enc.price
    upper = np.concatenate([
        _open_headroom(enc).astype(np.float64),
        demand[lay.new_pairs[:, 0]].astype(np.float64),
        np.minimum(demand[lay.fix_pairs[:, 0]],
                   lay.fixed_limit[lay.fix_pairs[:, 0], lay.fix_pairs[:, 1]]).astype(np.float64),
    ])
    note = ""
    res = _linprog(cost, model, upper)
    if res.status == 2 and spread:
        note = "zone spread relaxed: infeasible with it"
        res = _linprog(cost, _without(model, spread), upper)
    seconds = time.perf_counter() - start
    if res.status != 0:
        status = "infeasible" if res.status == 2 else f"error {res.status}"
        return Solution(status, None, None, seconds, note=str(res.message))
    nodes = tuple((enc.options[o].name, round(float(res.x[o]), 3))
                  for o in range(n_opt) if res.x[o] > 1e-9)
    return Solution("optimal", float(res.fun), float(res.fun), seconds, nodes, note)


def _linprog(cost: F64, model: _Model, upper: F64) -> OptimizeResult:
    matrix = model.matrix()
    lo, hi = np.array(model.lo), np.array(model.hi)
    eq = np.flatnonzero(lo == hi)
    ub = np.flatnonzero((lo != hi) & np.isfinite(hi))
    return linprog(
        cost,
        A_ub=matrix[ub] if len(ub) else None,
        b_ub=hi[ub] if len(ub) else None,
        A_eq=matrix[eq] if len(eq) else None,
        b_eq=hi[eq] if len(eq) else None,
        bounds=np.column_stack([np.zeros(len(cost)), upper]),
        method="highs",
    )


def bins_needed(enc: Encoded, demand: I64) -> I64:
    """(O,) first-fit node count of all the demand compatible with each option (see ILP)."""
    total = max(int(demand.sum()), 1)
    prep = prepare(enc)
    return np.array([estimate(enc, o, demand, total, prep).nodes
                     for o in range(len(enc.options))], dtype=np.int64)


def ilp_optimum(enc: Encoded, demand: I64, *, upper_cost: float | None = None,
                time_limit: float = 20.0, max_variables: int = ILP_MAX_VARIABLES) -> Solution:
    """Exact minimum new-node cost of placing ``demand`` (HiGHS branch and bound, time-limited).

    ``upper_cost``, the cost of any feasible plan for the demand, trims each option's bin count
    to what that budget can buy.
    """
    start = time.perf_counter()
    k = np.minimum(_open_headroom(enc), bins_needed(enc, demand))
    if upper_cost is not None:
        with np.errstate(divide="ignore"):
            budget = np.where(enc.price > 0, np.floor(upper_cost / enc.price + 1e-9), UNLIMITED)
        k = np.minimum(k, budget.astype(np.int64))
    bin_option = np.repeat(np.arange(len(enc.options)), k)
    model, lay, spread = _build(enc, demand, bin_option, merge=False, integer=True)
    if model.n_vars > max_variables:
        return Solution("too large", None, None, time.perf_counter() - start,
                        note=f"{model.n_vars} variables")
    n_b = len(bin_option)
    # Symmetry: bin i+1 of an option is used only if bin i is.
    same = np.flatnonzero(bin_option[1:] == bin_option[:-1])
    if len(same):
        base = model.rows(-np.inf, 0.0, len(same))
        model.put(base + np.arange(len(same)), same + 1, 1.0)
        model.put(base + np.arange(len(same)), same, -1.0)
    cost = np.zeros(model.n_vars)
    cost[:n_b] = enc.price[bin_option]
    upper = np.concatenate([
        np.ones(n_b),
        demand[lay.new_pairs[:, 0]].astype(np.float64),
        np.minimum(demand[lay.fix_pairs[:, 0]],
                   lay.fixed_limit[lay.fix_pairs[:, 0], lay.fix_pairs[:, 1]]).astype(np.float64),
    ])
    res = _milp(cost, model, upper, time_limit)
    note = ""
    if res.status == 2 and spread:
        note = "zone spread relaxed: infeasible with it"
        res = _milp(cost, _without(model, spread), upper, time_limit)
    seconds = time.perf_counter() - start
    if res.x is None:
        status = {1: "time limit", 2: "infeasible"}.get(res.status, f"error {res.status}")
        return Solution(status, None, _dual_bound(res), seconds, note=str(res.message))
    x = np.rint(res.x).astype(np.int64)
    problem = _check(enc, demand, lay, x)
    used = np.bincount(bin_option, weights=x[:n_b], minlength=len(enc.options))
    nodes = tuple((enc.options[o].name, float(used[o])) for o in range(len(used)) if used[o] > 0)
    status = "optimal" if res.status == 0 else "time limit"
    cost_found = float(x[:n_b] @ enc.price[bin_option])
    bound = cost_found if status == "optimal" else _dual_bound(res)
    notes = "; ".join(n for n in (note, problem) if n)
    return Solution(status, cost_found, bound, seconds, nodes, notes)


def _milp(cost: F64, model: _Model, upper: F64, time_limit: float) -> OptimizeResult:
    return milp(
        cost,
        integrality=np.ones(len(cost)),
        bounds=Bounds(np.zeros(len(cost)), upper),
        constraints=LinearConstraint(model.matrix(), np.array(model.lo), np.array(model.hi)),
        options={"time_limit": time_limit, "disp": False},
    )


def _dual_bound(res: OptimizeResult) -> float | None:
    value = getattr(res, "mip_dual_bound", None)
    return None if value is None or not np.isfinite(value) else float(value)


def _check(enc: Encoded, demand: I64, lay: _Layout, x: I64) -> str:
    """Exact-integer check of an ILP solution (the solver works to a float tolerance)."""
    n_b = len(lay.bin_option)
    n_y = len(lay.new_pairs)
    y, e = x[n_b : n_b + n_y], x[n_b + n_y :]
    got = np.bincount(lay.new_pairs[:, 0], weights=y, minlength=len(demand))
    got += np.bincount(lay.fix_pairs[:, 0], weights=e, minlength=len(demand))
    if not np.array_equal(got.astype(np.int64), demand):
        return "check failed: demand"
    load = np.zeros((n_b, len(enc.axes)), dtype=np.int64)
    np.add.at(load, lay.new_pairs[:, 1], y[:, None] * enc.req[lay.new_pairs[:, 0]])
    if (load > x[:n_b, None] * enc.alloc[lay.bin_option]).any():
        return "check failed: new-node capacity"
    fload = np.zeros_like(lay.fixed_cap)
    np.add.at(fload, lay.fix_pairs[:, 1], e[:, None] * enc.req[lay.fix_pairs[:, 0]])
    if (fload > lay.fixed_cap).any():
        return "check failed: existing-node capacity"
    return ""
