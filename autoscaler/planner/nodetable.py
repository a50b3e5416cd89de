"""Every node one plan can put pods on, as arrays: registered, then upcoming, then new nodes.

Callers: ``planner.scaleup`` only. Rows ``[0, n_reg)`` are registered schedulable nodes (in
``Encoded.nodes`` order), ``[n_reg, n_fixed)`` upcoming nodes (template nodes of pools whose
count exceeds their registered nodes), ``[n_fixed, n)`` the nodes this plan opens, in opening
order. The table grows by doubling so that opening nodes stays amortised O(1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autoscaler.model.plan import PlannedNode
from autoscaler.model.pool import NodeOption
from autoscaler.planner.encode import I64, Encoded


class NodeTable:
    def __init__(self, enc: Encoded, kept: I64, option_zone: I64, node_zone: I64) -> None:
        """``kept``: the axes some pending pod requests, the only ones that can bind."""
        n_reg = len(enc.nodes)
        upcoming = np.repeat(np.arange(len(enc.options), dtype=np.int64), enc.upcoming)
        self.n_reg = n_reg
        self.n_fixed = self.n = n_reg + len(upcoming)
        capacity = max(64, 2 * self.n)
        # (R, capacity): one contiguous row per axis, so that comparing one axis over every
        # node is a fast contiguous pass (reductions over short rows are slow in numpy).
        self.free = np.zeros((len(kept), capacity), dtype=np.int64)
        self.opt = np.full(capacity, -1, dtype=np.int64)  # option index, -1: unmanaged
        self.zone = np.full(capacity, -1, dtype=np.int64)  # zone index, -1: none/unknown
        # Compatibility class of a row: its option for template nodes, n_options + i for
        # registered node i (see ``scaleup._Kernel.compat``).
        self.cls = np.zeros(capacity, dtype=np.int64)
        self.cls[:n_reg] = len(enc.options) + np.arange(n_reg)
        self.cls[n_reg : self.n] = upcoming
        self.free[:, :n_reg] = enc.node_free[:, kept].T
        self.opt[:n_reg] = enc.node_option
        self.zone[:n_reg] = node_zone
        self.free[:, n_reg : self.n] = enc.alloc[upcoming][:, kept].T
        self.opt[n_reg : self.n] = upcoming
        self.zone[n_reg : self.n] = option_zone[upcoming]
        self.option_zone = option_zone
        self.option_zone_list: list[int] = option_zone.tolist()
        # Python mirrors of opt and zone, for the per-row bookkeeping of a few rows.
        self.opt_list: list[int] = self.opt[: self.n].tolist()
        self.zone_list: list[int] = self.zone[: self.n].tolist()
        self._nodes: list[int] = []  # what went on new nodes: node rows, group, pods
        self._groups: list[int] = []
        self._pods: list[int] = []

    def append(self, opts: list[int], free: I64) -> range:
        """Add new nodes of options ``opts`` with free capacity ``free`` (k, R); their rows."""
        start, need = self.n, self.n + len(opts)
        if need > len(self.opt):
            size = max(need, 2 * len(self.opt))
            grow = size - len(self.opt)
            self.free = np.concatenate([self.free, np.zeros((len(self.free), grow), np.int64)], 1)
            self.opt = np.concatenate([self.opt, np.full(grow, -1, np.int64)])
            self.zone = np.concatenate([self.zone, np.full(grow, -1, np.int64)])
            self.cls = np.concatenate([self.cls, np.zeros(grow, np.int64)])
        o = np.array(opts, dtype=np.int64)
        self.free[:, start:need] = free.T
        self.opt[start:need] = o
        self.cls[start:need] = o
        self.zone[start:need] = self.option_zone[o]
        self.opt_list += opts
        self.zone_list += [self.option_zone_list[x] for x in opts]
        self.n = need
        return range(start, need)

    def record(self, rows: Sequence[int], group: int, pods: Sequence[int]) -> None:
        """Remember that ``pods[i]`` pods of ``group`` went on new-node row ``rows[i]``."""
        self._nodes.extend(rows)
        self._groups.extend([group] * len(rows))
        self._pods.extend(pods)

    def added(self, n_options: int) -> I64:
        """``(n_options,)`` new nodes per option."""
        counts: I64 = np.bincount(self.opt[self.n_fixed : self.n], minlength=n_options)
        return counts

    def planned(self, keys: list[str], options: tuple[NodeOption, ...]) -> tuple[PlannedNode, ...]:
        """The new nodes, each with its pods per group in placement order."""
        contents: list[list[tuple[str, int]]] = [[] for _ in range(self.n - self.n_fixed)]
        for row, group, k in zip(self._nodes, self._groups, self._pods, strict=True):
            contents[row - self.n_fixed].append((keys[group], k))  # in placement order
        opts = self.opt[self.n_fixed : self.n].tolist()
        return tuple(
            PlannedNode(options[o].pool, tuple(c)) for o, c in zip(opts, contents, strict=True)
        )
