"""Every node one plan can put pods on, as arrays: registered, then upcoming, then new nodes.

Callers: ``planner.scaleup`` only. Rows ``[0, n_reg)`` are registered schedulable nodes (in
``Encoded.nodes`` order), ``[n_reg, n_fixed)`` upcoming nodes (template nodes of pools whose
count exceeds their registered nodes), ``[n_fixed, n)`` the nodes this plan opens, in opening
order. The table grows by doubling so that opening nodes stays amortised O(1).
"""

from __future__ import annotations

import numpy as np

from autoscaler.model.plan import PlannedNode
from autoscaler.model.pool import NodeOption
from autoscaler.planner.encode import I64, Encoded


class NodeTable:
    def __init__(self, enc: Encoded, option_zone: I64, node_zone: I64) -> None:
        # A node is live while it could still take the smallest request of any group on every
        # axis (a necessary condition to take any pod): scans over nodes skip the full ones.
        self.floor = enc.req.min(axis=0) if len(enc.req) else np.zeros(len(enc.axes), np.int64)
        n_reg = len(enc.nodes)
        upcoming = np.repeat(np.arange(len(enc.options), dtype=np.int64), enc.upcoming)
        self.n_reg = n_reg
        self.n_fixed = self.n = n_reg + len(upcoming)
        capacity = max(64, 2 * self.n)
        self.free = np.zeros((capacity, len(enc.axes)), dtype=np.int64)  # (capacity, R)
        self.opt = np.full(capacity, -1, dtype=np.int64)  # option index, -1: unmanaged
        self.zone = np.full(capacity, -1, dtype=np.int64)  # zone index, -1: none/unknown
        # Compatibility class of a row: its option for template nodes, n_options + i for
        # registered node i (see ``scaleup._Kernel.compat``).
        self.cls = np.zeros(capacity, dtype=np.int64)
        self.cls[:n_reg] = len(enc.options) + np.arange(n_reg)
        self.cls[n_reg : self.n] = upcoming
        self.free[:n_reg] = enc.node_free
        self.opt[:n_reg] = enc.node_option
        self.zone[:n_reg] = node_zone
        self.free[n_reg : self.n] = enc.alloc[upcoming]
        self.opt[n_reg : self.n] = upcoming
        self.zone[n_reg : self.n] = option_zone[upcoming]
        self.live = np.zeros(capacity, dtype=bool)
        self.refresh(np.arange(self.n, dtype=np.int64))
        self._nodes: list[I64] = []  # what went on new nodes: node rows, group, pods
        self._groups: list[I64] = []
        self._pods: list[I64] = []

    def append(self, opts: I64, free: I64, zones: I64) -> I64:
        """Add new nodes of options ``opts`` with rows ``free`` (k, R); returns their rows."""
        need = self.n + len(opts)
        if need > len(self.opt):
            size = max(need, 2 * len(self.opt))
            grow = size - len(self.opt)
            self.free = np.concatenate([self.free, np.zeros((grow, self.free.shape[1]), np.int64)])
            self.opt = np.concatenate([self.opt, np.full(grow, -1, np.int64)])
            self.zone = np.concatenate([self.zone, np.full(grow, -1, np.int64)])
            self.cls = np.concatenate([self.cls, np.zeros(grow, np.int64)])
            self.live = np.concatenate([self.live, np.zeros(grow, dtype=bool)])
        rows = np.arange(self.n, need, dtype=np.int64)
        self.free[self.n : need] = free
        self.opt[self.n : need] = opts
        self.cls[self.n : need] = opts
        self.zone[self.n : need] = zones
        self.n = need
        self.refresh(rows)
        return rows

    def refresh(self, rows: I64) -> None:
        """Recompute liveness of ``rows`` after their free capacity changed."""
        self.live[rows] = (self.free[rows] >= self.floor).all(axis=1)

    def record(self, rows: I64, group: int, pods: I64) -> None:
        """Remember that ``pods[i]`` pods of ``group`` went on new-node row ``rows[i]``."""
        self._nodes.append(rows)
        self._groups.append(np.full(len(rows), group, dtype=np.int64))
        self._pods.append(pods)

    def added(self, n_options: int) -> I64:
        """``(n_options,)`` new nodes per option."""
        counts: I64 = np.bincount(self.opt[self.n_fixed : self.n], minlength=n_options)
        return counts

    def planned(self, keys: list[str], options: tuple[NodeOption, ...]) -> tuple[PlannedNode, ...]:
        """The new nodes, each with its pods per group in placement order."""
        contents: list[list[tuple[str, int]]] = [[] for _ in range(self.n - self.n_fixed)]
        if self._nodes:
            rows = np.concatenate(self._nodes)
            groups = np.concatenate(self._groups)
            pods = np.concatenate(self._pods)
            order = np.argsort(rows, kind="stable")  # stable: keeps placement order per node
            for row, group, k in zip(
                rows[order].tolist(), groups[order].tolist(), pods[order].tolist(), strict=True
            ):
                contents[row - self.n_fixed].append((keys[group], k))
        opts = self.opt[self.n_fixed : self.n].tolist()
        return tuple(
            PlannedNode(options[o].pool, tuple(c)) for o, c in zip(opts, contents, strict=True)
        )
