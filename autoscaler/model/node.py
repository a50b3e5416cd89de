"""Existing (registered) nodes and taints.

Callers: snapshot loader and kube adapter build them; ``planner.encode`` turns their free
capacity into arrays; the simulator's cluster owns them.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.model.labels import ZONE_LABEL, Labels
from autoscaler.model.pod import TaintEffect
from autoscaler.model.resources import Resources


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: TaintEffect = TaintEffect.NO_SCHEDULE


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    pool: str | None
    labels: Labels = ()
    taints: tuple[Taint, ...] = ()
    allocatable: Resources = Resources()
    ready: bool = True
    unschedulable: bool = False  # cordoned
    annotations: Labels = ()  # sorted (key, value) pairs; read by scale-down only

    @property
    def zone(self) -> str | None:
        return dict(self.labels).get(ZONE_LABEL)
