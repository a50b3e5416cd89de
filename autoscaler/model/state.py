"""The cluster state one plan is computed from: a frozen snapshot of pods, nodes, pools, options.

Callers: the snapshot loader (``surge plan``), the kube/cloud adapters through the control loop,
the simulator. ``now`` is an input (the planner never reads a clock): it decides which backoffs
are still in force.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.node import Node
from autoscaler.model.plan import Backoff, ClusterLimits, Policy
from autoscaler.model.pod import Pod
from autoscaler.model.pool import AgentPool, NodeOption


@dataclass(frozen=True, slots=True)
class ClusterState:
    """``pods`` holds pending pods (``node_name is None``) and pods bound to ``nodes``.

    ``options`` are the node options of the pools we manage (see ``planner.options``); a pool
    without an option is observed but never scaled.
    """

    region: str
    pools: tuple[AgentPool, ...]
    options: tuple[NodeOption, ...]
    nodes: tuple[Node, ...] = ()
    pods: tuple[Pod, ...] = ()
    backoffs: tuple[Backoff, ...] = ()
    limits: ClusterLimits = ClusterLimits()
    policy: Policy = Policy()
    now: datetime = field(default=datetime(1970, 1, 1, tzinfo=UTC))
    pdbs: tuple[PodDisruptionBudget, ...] = ()  # read by scale-down only
