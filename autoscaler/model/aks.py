"""AKS facts for template nodes: the VM-size catalog, node reservations, labels and taints.

Callers: ``planner.options`` builds a pool's template node from these; the config loader passes
per-size catalog overrides to ``load_catalog``; the simulator's AKS model uses the same formulas
so that simulated nodes report what real ones would.

The catalog is package data (``data/vm_sizes.json``: one region's Linux prices, with the source
and estimate status of every figure written beside it). Reading it is the only I/O here.

Reservations follow the AKS page "Node resource reservations"
(https://learn.microsoft.com/azure/aks/node-resource-reservations). Its "MB"/"GB" are taken as
MiB/GiB: kubelet flags are set in Mi, and the reservations Karpenter's AKS provider computes
(Azure/karpenter-provider-azure, instancetype kube_reserved_test.go: 7 GiB -> 1638Mi,
64 GiB -> 5611Mi) are exactly this reading, truncated to whole MiB.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources

from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import (
    AGENTPOOL_LABEL,
    INSTANCE_TYPE_LABEL,
    LEGACY_AGENTPOOL_LABEL,
    MODE_LABEL,
    SPOT_LABEL,
    ZONE_LABEL,
    Labels,
    labels_of,
)
from autoscaler.model.node import Taint
from autoscaler.model.pod import TaintEffect
from autoscaler.model.pool import AgentPool, Priority
from autoscaler.model.resources import CPU, EPHEMERAL, GPU, MEMORY, PODS, Resources

MIB = 2**20
GIB = 2**30

OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
REGION_LABEL = "topology.kubernetes.io/region"
# AKS lists this among the labels it sets itself, value "nvidia", on GPU nodes
# (https://learn.microsoft.com/azure/aks/use-labels, "Reserved system labels").
ACCELERATOR_LABEL = "kubernetes.azure.com/accelerator"
SPOT_TAINT = Taint(key=SPOT_LABEL, value="spot", effect=TaintEffect.NO_SCHEDULE)

_CATALOG_FILE = "vm_sizes.json"
_REQUIRED = ("vcpus", "memoryGiB", "pricePerHour")
_OPTIONAL = ("gpus", "gpuModel", "family", "spotPricePerHour", "priceBasis", "spotBasis")
# Azure's size naming: family letters, vCPUs (optionally "-<constrained>"), then lowercase
# additive features, where "p" means an Arm processor (e.g. Standard_D4ps_v5).
_SIZE_NAME = re.compile(r"^Standard_[A-Z]+[0-9]+(?:-[0-9]+)?(?P<features>[a-z]*)(?:_|$)")


@dataclass(frozen=True, slots=True)
class VmSize:
    """One VM size: shape, vCPU quota family and USD prices per hour in the catalog's region.

    ``spot_price_per_hour`` is None when Azure offers no Spot for the size (B-series)."""

    name: str
    vcpus: int
    memory_bytes: int
    gpus: int
    gpu_model: str
    family: str
    price_per_hour: float
    spot_price_per_hour: float | None


@dataclass(frozen=True, slots=True)
class SizeTable(Mapping[str, VmSize]):
    """Size name -> ``VmSize``, tuple-backed so that it is frozen and hashable."""

    entries: tuple[VmSize, ...] = ()
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False,
                                   hash=False)

    def __post_init__(self) -> None:
        self._index.update({size.name: i for i, size in enumerate(self.entries)})

    def __getitem__(self, key: str) -> VmSize:
        return self.entries[self._index[key]]

    def __iter__(self) -> Iterator[str]:
        return (size.name for size in self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class Catalog:
    """The VM sizes known for one region, with the date of their prices."""

    region: str
    as_of: str
    sizes: SizeTable

    def get(self, name: str) -> VmSize | None:
        """The size called ``name``, ignoring case (ARM does not keep one spelling)."""
        wanted = name.lower()
        for size in self.sizes.entries:
            if size.name.lower() == wanted:
                return size
        return None


def load_catalog(
    overrides: Mapping[str, Mapping[str, object]] | None = None, path: str = "$.vmSizes"
) -> Catalog:
    """The shipped table with per-size ``overrides`` applied; ``path`` locates them in errors.

    An override names a size (any case) and gives catalog fields (``pricePerHour``,
    ``spotPricePerHour``, ``vcpus``, ``memoryGiB``, ``gpus``, ``gpuModel``, ``family``); fields
    it leaves out keep the shipped values. A size not in the table is added and needs at least
    ``vcpus``, ``memoryGiB`` and ``pricePerHour``. Errors name ``{path}.{size}.{field}``.
    """
    data_dir = resources.files("autoscaler.model").joinpath("data")
    text = data_dir.joinpath(_CATALOG_FILE).read_text("utf-8")
    shipped = json.loads(text)
    table_path = f"{_CATALOG_FILE}$.vmSizes"
    raw: dict[str, dict[str, object]] = {}
    for name, fields in _mapping(shipped.get("vmSizes"), table_path).items():
        raw[name] = dict(_mapping(fields, f"{table_path}.{name}"))
    # Errors name a size as its source spells it: the override's key, else the table's.
    where = {name: f"{table_path}.{name}" for name in raw}
    by_lower = {name.lower(): name for name in raw}
    for name, fields in _mapping(overrides or {}, path).items():
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(path, f"size names must be non-empty strings, got {name!r}")
        key = by_lower.setdefault(name.lower(), name)
        raw[key] = {**raw.get(key, {}), **_mapping(fields, f"{path}.{name}")}
        where[key] = f"{path}.{name}"
    sizes = tuple(
        _parse_size(name, raw[name], where[name]) for name in sorted(raw, key=str.lower)
    )
    return Catalog(
        region=str(shipped.get("region", "")),
        as_of=str(shipped.get("as_of", "")),
        sizes=SizeTable(sizes),
    )


def _mapping(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ValidationError(path, f"expected an object, got {type(value).__name__}")
    return value


def _parse_size(name: str, fields: Mapping[str, object], path: str) -> VmSize:
    for key in fields:
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise ValidationError(f"{path}.{key}", "unknown field")
    for key in _REQUIRED:
        if key not in fields:
            raise ValidationError(f"{path}.{key}", "required (the size is not in the catalog)")
    vcpus = _count(fields["vcpus"], f"{path}.vcpus", minimum=1)
    memory = _positive(fields["memoryGiB"], f"{path}.memoryGiB")
    price = _positive(fields["pricePerHour"], f"{path}.pricePerHour")
    spot_value = fields.get("spotPricePerHour")
    spot = None if spot_value is None else _positive(spot_value, f"{path}.spotPricePerHour")
    if spot is not None and spot > price:
        raise ValidationError(
            f"{path}.spotPricePerHour",
            f"Spot price {spot} exceeds the pay-as-you-go price {price} (Azure caps it there)",
        )
    for key in ("gpuModel", "family", "priceBasis", "spotBasis"):
        if not isinstance(fields.get(key, ""), str):
            raise ValidationError(f"{path}.{key}", "expected a string")
    return VmSize(
        name=name,
        vcpus=vcpus,
        memory_bytes=math.floor(Fraction(str(memory)) * GIB),
        gpus=_count(fields.get("gpus", 0), f"{path}.gpus", minimum=0),
        gpu_model=str(fields.get("gpuModel", "")),
        family=str(fields.get("family", "")),
        price_per_hour=price,
        spot_price_per_hour=spot,
    )


def _count(value: object, path: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(path, f"expected an integer, got {value!r}")
    if value < minimum:
        raise ValidationError(path, f"must be at least {minimum}, got {value}")
    return value


def _positive(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(path, f"expected a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(path, f"must be a positive finite number, got {value!r}")
    return float(value)


def reserved_cpu_millis(vcpus: int) -> int:
    """AKS Linux kube-reserved CPU in millicores: 6% of the first core, 4% of the second, 2% of
    the third and fourth, 1% of each further core (docs table: 1->60, 8->180, 64->740)."""
    if vcpus < 1:
        raise ValueError(f"a VM has at least one vCPU, got {vcpus}")
    return (
        60
        + 40 * min(max(vcpus - 1, 0), 1)
        + 20 * min(max(vcpus - 2, 0), 2)
        + 10 * max(vcpus - 4, 0)
    )


def kubernetes_minor(version: str) -> tuple[int, int]:
    """(major, minor) of ``1.30``, ``1.30.4`` or ``v1.30.4``; ValueError when unreadable."""
    match = re.match(r"^v?([0-9]+)\.([0-9]+)(?:\.[0-9]+)?$", version.strip())
    if match is None:
        raise ValueError(f"unreadable Kubernetes version {version!r}")
    return int(match[1]), int(match[2])


def reserved_memory_bytes(memory_bytes: int, max_pods: int, kubernetes_version: str) -> int:
    """AKS Linux kube-reserved memory plus the kubelet's hard eviction threshold, in bytes.

    AKS >= 1.29: min(20 MiB x maxPods + 50 MiB, 25% of memory) + 100 MiB eviction threshold.
    Older: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112,
    2% above 128 GiB (truncated to whole MiB) + 750 MiB eviction threshold.
    """
    if kubernetes_minor(kubernetes_version) >= (1, 29):
        per_pods = (20 * max_pods + 50) * MIB
        quarter = memory_bytes // MIB // 4 * MIB
        return min(per_pods, quarter) + 100 * MIB
    # Percent x bytes per tier, summed in integers so that the truncation is exact.
    tiers = ((4 * GIB, 25), (4 * GIB, 20), (8 * GIB, 10), (112 * GIB, 6), (None, 2))
    rest, weighted = memory_bytes, 0
    for size, percent in tiers:
        portion = rest if size is None else min(rest, size)
        weighted += portion * percent
        rest -= portion
    return weighted // (100 * MIB) * MIB + 750 * MIB


def node_allocatable(
    vm: VmSize,
    max_pods: int,
    kubernetes_version: str,
    *,
    ephemeral_storage_bytes: int | None = None,
) -> Resources:
    """What a new Linux node of ``vm`` reports as allocatable, from the AKS reservations.

    Memory starts from the size's nominal memory; the kernel reports a little less, so a real
    node's figure is better when there is one. Ephemeral storage is left out unless the caller
    knows it: it depends on the pool's OS disk (size, managed or ephemeral), which the pool
    model does not carry, and no AKS page gives a formula for it.
    """
    cpu = max(vm.vcpus * 1000 - reserved_cpu_millis(vm.vcpus), 0)
    memory = max(vm.memory_bytes - reserved_memory_bytes(vm.memory_bytes, max_pods,
                                                         kubernetes_version), 0)
    values = {CPU: cpu, MEMORY: memory, PODS: max_pods, GPU: vm.gpus}
    if ephemeral_storage_bytes is not None:
        values[EPHEMERAL] = ephemeral_storage_bytes
    return Resources.of(values)


def cpu_architecture(vm_size: str) -> str | None:
    """``arm64`` or ``amd64`` from Azure's size naming ("p" feature = Arm); None if unparsed."""
    match = _SIZE_NAME.match(vm_size)
    if match is None:
        return None
    return "arm64" if "p" in match["features"] else "amd64"


def node_labels(pool: AgentPool, vm: VmSize | None, zone_label: str | None) -> Labels:
    """The labels AKS puts on every node of ``pool``, plus the pool's own ``nodeLabels``.

    Only labels that are the same on every node of the pool; per-node ones (hostname, and the
    zone of a multi-zone pool) are the caller's to add.
    """
    values = dict(pool.labels)
    values.update(
        {
            AGENTPOOL_LABEL: pool.name,
            LEGACY_AGENTPOOL_LABEL: pool.name,
            INSTANCE_TYPE_LABEL: pool.vm_size,
            MODE_LABEL: pool.mode.value.lower(),
            OS_LABEL: pool.os_type.lower(),
        }
    )
    arch = cpu_architecture(pool.vm_size)
    if arch is not None:
        values[ARCH_LABEL] = arch
    if zone_label is not None:
        values[ZONE_LABEL] = zone_label
    if pool.priority is Priority.SPOT:
        values[SPOT_LABEL] = "spot"
    if vm is not None and vm.gpus > 0:
        values[ACCELERATOR_LABEL] = "nvidia"
    return labels_of(values)


def node_taints(pool: AgentPool) -> tuple[Taint, ...]:
    """The pool's ``nodeTaints`` plus, on Spot pools, the Spot taint AKS adds to every node."""
    taints = list(pool.taints)
    if pool.priority is Priority.SPOT and SPOT_TAINT not in taints:
        taints.append(SPOT_TAINT)
    return tuple(taints)


def zone_label(region: str, zone: str) -> str:
    """The ``topology.kubernetes.io/zone`` value of AKS zone ``zone``: ``eastus-1``."""
    return f"{region.lower()}-{zone}"
