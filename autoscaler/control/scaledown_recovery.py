"""Drains an earlier leader left half-way: surge's cordons that nobody is finishing.

Callers: ``control.scaledown.ScaleDown.run``, from the first pass of its leadership term (a
``ScaleDown`` lives one term: ``control.controller`` builds a new ``Reconciler`` per term), and
again on later passes only for the nodes whose undo failed.

Scale-down cordons a node and marks it in the same patch (``SCALE_DOWN_MARK``, see
``kube.source.ClusterSource.cordon``). A process that dies or loses the lease mid-drain leaves
the node cordoned and marked, and its successor has no drain for it: without this module the
node would stay cordoned for good. At the start of a term, a marked node is

- left alone when a deletion in flight covers it: a drain of this ``ScaleDown`` or a resumed
  delete-machines operation naming it (or, for an operation stored without machine names, any
  marked node of its pool). Those are handed back as drains being deleted, so the usual
  ``operation_ended`` uncordons them if AKS fails the deletion;
- otherwise uncordoned and unmarked in one patch (or only unmarked when someone uncordoned it
  already): its pods can come back, and a later plan may choose it again.

Nodes without the mark (cordoned by a person or another tool) are never touched. Like Cluster
Autoscaler's clean-up of its ToBeDeletedByClusterAutoscaler taints at start, this runs once per
term, not every pass: within a term every mark is this process's own.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from autoscaler.cloud.provider import DELETE_MACHINES, Operation
from autoscaler.kube.source import ClusterSource
from autoscaler.model.disruption import SCALE_DOWN_MARK
from autoscaler.model.node import Node

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Leftovers:
    """Marked nodes, sorted by name: to undo, and (pool, node) being deleted."""

    undo: tuple[Node, ...] = ()
    deleting: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Undone:
    """What ``undo`` did: nodes uncordoned (and unmarked), only unmarked, and failures."""

    uncordoned: list[str] = field(default_factory=list)
    unmarked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # node -> why


def mark_of(node: Node) -> str | None:
    """When surge's drain of ``node`` started (the mark's value), None when not marked."""
    for key, value in node.annotations:
        if key == SCALE_DOWN_MARK:
            return value
    return None


def _covered(ops: Iterable[Operation]) -> tuple[dict[str, str], set[str]]:
    """Node -> pool for the deletions among ``ops`` that name their machines, and the pools
    of those stored without names (by an older version: any marked node of the pool)."""
    named: dict[str, str] = {}
    unnamed: set[str] = set()
    for op in ops:
        if op.kind != DELETE_MACHINES:
            continue
        if op.machines:
            named.update((machine, op.pool) for machine in op.machines)
        else:
            unnamed.add(op.pool)
    return named, unnamed


def leftovers(
    nodes: Iterable[Node],
    draining: Collection[str],
    inflight: Mapping[str, Operation],
    deleted: Iterable[Operation] = (),
) -> Leftovers:
    """Sort the marked ``nodes`` out; ``draining`` are the nodes this process drains or
    deletes, ``inflight`` the operations it knows of (its own and the resumed ones),
    ``deleted`` the deletions that succeeded since the term began: their nodes are left to
    disappear (an uncordoned node whose VM is gone could still be given pods for a while)."""
    named, unnamed = _covered(inflight.values())
    gone, gone_pools = _covered(deleted)
    undo: list[Node] = []
    deleting: list[tuple[str, str]] = []
    for node in sorted(nodes, key=lambda n: n.name):
        if mark_of(node) is None or node.name in draining or node.name in gone:
            continue
        if node.pool is not None and node.pool in gone_pools:
            continue
        if node.name in named:
            deleting.append((named[node.name], node.name))
        elif node.pool is not None and node.pool in unnamed:
            deleting.append((node.pool, node.name))
        else:
            undo.append(node)
    return Leftovers(tuple(undo), tuple(deleting))


def undo(source: ClusterSource, nodes: Iterable[Node]) -> Undone:
    """Uncordon and unmark each node (one patch each: ``cordon(name, False)``); a failure is
    recorded, not raised, so that the other nodes still get their patch."""
    done = Undone()
    for node in nodes:
        since = mark_of(node)
        try:
            source.cordon(node.name, False)
        except Exception as err:  # any API failure: reported, retried on the next pass
            done.failed[node.name] = str(err)
            log.warning("node %s: undoing the cordon of a drain left by an earlier leader "
                        "failed: %s", node.name, err)
            continue
        (done.uncordoned if node.unschedulable else done.unmarked).append(node.name)
        action = "uncordoned" if node.unschedulable else "unmarked"
        log.info("node %s %s: its drain (started %s) was left by an earlier leader",
                 node.name, action, since,
                 extra={"fields": {"node": node.name, "action": action, "since": since}})
    return done
