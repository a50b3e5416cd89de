"""Resource vectors in integer units and the fixed axis order used by the planner's arrays.

Callers: every layer. Axes: cpu (millicores), memory (bytes), pods (count), nvidia.com/gpu
(count), ephemeral-storage (bytes), then any extended resource a pod requests, in name order.
``Resources`` is a frozen, hashable mapping so that pods with equal requests group together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
GPU = "nvidia.com/gpu"
EPHEMERAL = "ephemeral-storage"
BASE_AXES: tuple[str, ...] = (CPU, MEMORY, PODS, GPU, EPHEMERAL)


@dataclass(frozen=True, slots=True)
class Resources(Mapping[str, int]):
    """Resource name -> integer units; zero entries are dropped so equal vectors compare equal."""

    items_: tuple[tuple[str, int], ...] = ()

    @staticmethod
    def of(values: Mapping[str, int] | Iterable[tuple[str, int]]) -> Resources:
        pairs = values.items() if isinstance(values, Mapping) else values
        merged: dict[str, int] = {}
        for name, amount in pairs:
            merged[name] = merged.get(name, 0) + int(amount)
        return Resources(tuple(sorted((k, v) for k, v in merged.items() if v != 0)))

    def __getitem__(self, key: str) -> int:
        for name, amount in self.items_:
            if name == key:
                return amount
        raise KeyError(key)

    def get_units(self, key: str) -> int:
        for name, amount in self.items_:
            if name == key:
                return amount
        return 0

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    def __add__(self, other: Resources) -> Resources:
        return Resources.of([*self.items_, *other.items_])

    def maximum(self, other: Resources) -> Resources:
        names = set(self) | set(other)
        return Resources.of({n: max(self.get_units(n), other.get_units(n)) for n in names})


def axes_for(extra: Iterable[str]) -> tuple[str, ...]:
    """The base axes followed by every other resource name seen, sorted (deterministic)."""
    return BASE_AXES + tuple(sorted(set(extra) - set(BASE_AXES)))
