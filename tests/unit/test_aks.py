"""AKS facts in autoscaler.model.aks: reservations, allocatable, labels, taints, the catalog."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest

from autoscaler.model.aks import (
    ACCELERATOR_LABEL,
    ARCH_LABEL,
    SPOT_TAINT,
    VmSize,
    cpu_architecture,
    kubernetes_minor,
    load_catalog,
    node_allocatable,
    node_labels,
    node_taints,
    reserved_cpu_millis,
    reserved_memory_bytes,
    zone_label,
)
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import SPOT_LABEL, ZONE_LABEL
from autoscaler.model.node import Taint
from autoscaler.model.pod import TaintEffect
from autoscaler.model.pool import PoolMode, Priority
from tests.builders import GiB, MiB, pool, res

GPU_TAINT = Taint("sku", "gpu", TaintEffect.NO_SCHEDULE)


def _vm(vcpus: int, memory_gib: int, gpus: int = 0) -> VmSize:
    return VmSize(f"Standard_T{vcpus}", vcpus, memory_gib * GiB, gpus, "", "f", 1.0, 0.2)


def _shipped() -> dict[str, Any]:
    data_dir = resources.files("autoscaler.model").joinpath("data")
    text = data_dir.joinpath("vm_sizes.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# --- reservations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vcpus", "millis"),
    # The AKS docs table (1..64 cores), plus 3 cores as Karpenter's AKS provider tests it.
    [(1, 60), (2, 100), (3, 120), (4, 140), (8, 180), (16, 260), (32, 420), (64, 740)],
)
def test_reserved_cpu_matches_the_aks_table(vcpus: int, millis: int) -> None:
    assert reserved_cpu_millis(vcpus) == millis


def test_a_vm_without_cpus_has_no_cpu_reservation() -> None:
    with pytest.raises(ValueError, match="at least one vCPU"):
        reserved_cpu_millis(0)


@pytest.mark.parametrize(
    ("memory", "max_pods", "version", "reserved"),
    [
        # Docs example: 8 GB and 30 pods -> 20*30+50 = 650 kube-reserved, + 100 eviction.
        pytest.param(8 * GiB, 30, "1.29", 750 * MiB, id="pods-bound-docs-example"),
        # Docs example: 4 GB and 70 pods -> 25% of memory is smaller than 20*70+50 = 1450.
        pytest.param(4 * GiB, 70, "1.30.4", 1124 * MiB, id="quarter-bound-docs-example"),
        pytest.param(32 * GiB, 110, "v1.31.0", 2350 * MiB, id="pods-bound-110"),
        # Before 1.29, regressive tiers (Karpenter AKS provider figures) + 750 Mi eviction.
        pytest.param(7 * GiB, 110, "1.28", (1638 + 750) * MiB, id="old-7GiB"),
        pytest.param(8 * GiB, 30, "1.28.9", (1843 + 750) * MiB, id="old-8GiB"),
        pytest.param(64 * GiB, 30, "1.27", (5611 + 750) * MiB, id="old-64GiB"),
        # 1 + 0.8 + 0.8 + 6.72 + 2% of 128 GiB = 11.88 GiB = 12165.12 Mi, truncated.
        pytest.param(256 * GiB, 30, "1.28", (12165 + 750) * MiB, id="old-above-128GiB"),
    ],
)
def test_reserved_memory_follows_the_aks_formula_of_the_version(
    memory: int, max_pods: int, version: str, reserved: int
) -> None:
    assert reserved_memory_bytes(memory, max_pods, version) == reserved


@pytest.mark.parametrize("version", ["", "1", "latest", "1.x", "1.29.0.1"])
def test_an_unreadable_kubernetes_version_is_refused(version: str) -> None:
    with pytest.raises(ValueError, match="unreadable Kubernetes version"):
        kubernetes_minor(version)


@pytest.mark.parametrize(
    ("vm", "max_pods", "version", "expected"),
    [
        # 8 vCPU, 32 GiB: 8000-180 cpu; 32768 - (2250 + 100) Mi.
        pytest.param(_vm(8, 32), 110, "1.30", res(7820, 30418 * MiB, pods=110), id="D8s_v5"),
        # Docs example shape: 8 GiB, 30 pods -> 8192 - 750 Mi.
        pytest.param(_vm(2, 8), 30, "1.29", res(1900, 7442 * MiB, pods=30), id="D2s_v5"),
        # 24 vCPU: 140 + 20*10 = 340m; 220 GiB with 30 pods: 225280 - 750 Mi; one GPU.
        pytest.param(
            _vm(24, 220, gpus=1), 30, "1.29", res(23660, 224530 * MiB, pods=30, gpu=1),
            id="NC24ads_A100_v4",
        ),
        # Before 1.29: 16 GiB -> 1 + 0.8 + 0.8 GiB = 2662.4 -> 2662 Mi, + 750.
        pytest.param(_vm(4, 16), 30, "1.28", res(3860, 12972 * MiB, pods=30), id="old-D4s_v5"),
    ],
)
def test_allocatable_is_the_vm_minus_the_aks_reservations(
    vm: VmSize, max_pods: int, version: str, expected: Any
) -> None:
    assert node_allocatable(vm, max_pods, version) == expected


def test_allocatable_has_ephemeral_storage_only_when_the_caller_knows_it() -> None:
    vm = _vm(2, 8)
    assert "ephemeral-storage" not in node_allocatable(vm, 30, "1.30")
    with_disk = node_allocatable(vm, 30, "1.30", ephemeral_storage_bytes=100 * GiB)
    assert with_disk.get_units("ephemeral-storage") == 100 * GiB


# --- labels and taints ------------------------------------------------------------------------


def test_a_regular_user_pool_gets_the_aks_labels_and_its_node_labels() -> None:
    p = pool("web", "Standard_D4s_v5", labels=(("team", "web"),))
    assert dict(node_labels(p, _vm(4, 16), "eastus-2")) == {
        "agentpool": "web",
        "kubernetes.azure.com/agentpool": "web",
        "kubernetes.azure.com/mode": "user",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "Standard_D4s_v5",
        "team": "web",
        "topology.kubernetes.io/zone": "eastus-2",
    }


@pytest.mark.parametrize(
    ("changes", "key", "value"),
    [
        pytest.param({"priority": Priority.SPOT}, SPOT_LABEL, "spot", id="spot-priority"),
        pytest.param({"mode": PoolMode.SYSTEM}, "kubernetes.azure.com/mode", "system", id="mode"),
        pytest.param({"os_type": "Windows"}, "kubernetes.io/os", "windows", id="os"),
        pytest.param({"vm_size": "Standard_D4ps_v5"}, ARCH_LABEL, "arm64", id="arm-size"),
        # AKS's own labels win over a pool label of the same key.
        pytest.param({"labels": (("agentpool", "x"),)}, "agentpool", "pool1", id="aks-wins"),
    ],
)
def test_pool_properties_show_in_the_labels(changes: dict[str, Any], key: str, value: str) -> None:
    assert dict(node_labels(replace(pool(), **changes), None, None))[key] == value


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        pytest.param({}, SPOT_LABEL, id="regular-has-no-spot-label"),
        pytest.param({}, ZONE_LABEL, id="zone-unknown-has-no-zone-label"),
        pytest.param({}, ACCELERATOR_LABEL, id="no-vm-no-accelerator"),
        pytest.param({"vm_size": "custom"}, ARCH_LABEL, id="unparsed-size-no-arch"),
    ],
)
def test_labels_aks_would_not_set_are_absent(changes: dict[str, Any], absent: str) -> None:
    assert absent not in dict(node_labels(replace(pool(), **changes), None, None))


@pytest.mark.parametrize(
    ("gpus", "expected"), [(0, None), (1, "nvidia"), (8, "nvidia")]
)
def test_gpu_sizes_carry_the_aks_accelerator_label(gpus: int, expected: str | None) -> None:
    labels = dict(node_labels(pool(), _vm(8, 32, gpus=gpus), None))
    assert labels.get(ACCELERATOR_LABEL) == expected


@pytest.mark.parametrize(
    ("size", "arch"),
    [
        ("Standard_D4s_v5", "amd64"),
        ("Standard_B2pls_v2", "arm64"),
        ("Standard_E16-4as_v5", "amd64"),
        ("Standard_NC24ads_A100_v4", "amd64"),
        ("Standard_A1", "amd64"),
        ("Basic_A1", None),
    ],
)
def test_cpu_architecture_reads_the_azure_size_name(size: str, arch: str | None) -> None:
    assert cpu_architecture(size) == arch


@pytest.mark.parametrize(
    ("priority", "taints", "expected"),
    [
        pytest.param(Priority.REGULAR, (), (), id="regular-untainted"),
        pytest.param(Priority.REGULAR, (GPU_TAINT,), (GPU_TAINT,), id="regular-keeps-own"),
        pytest.param(Priority.SPOT, (), (SPOT_TAINT,), id="spot-tainted"),
        pytest.param(Priority.SPOT, (GPU_TAINT,), (GPU_TAINT, SPOT_TAINT), id="spot-adds"),
        pytest.param(Priority.SPOT, (SPOT_TAINT,), (SPOT_TAINT,), id="spot-not-twice"),
    ],
)
def test_spot_pools_get_the_spot_taint(
    priority: Priority, taints: tuple[Taint, ...], expected: tuple[Taint, ...]
) -> None:
    assert node_taints(pool(priority=priority, taints=taints)) == expected


def test_the_spot_taint_is_the_one_aks_sets() -> None:
    assert Taint(SPOT_LABEL, "spot", TaintEffect.NO_SCHEDULE) == SPOT_TAINT


@pytest.mark.parametrize(
    ("region", "zone", "label"), [("eastus", "1", "eastus-1"), ("WestEurope", "3", "westeurope-3")]
)
def test_zone_label_is_region_dash_zone(region: str, zone: str, label: str) -> None:
    assert zone_label(region, zone) == label


# --- the shipped catalog ----------------------------------------------------------------------

REQUIRED_SIZES = [
    "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3",
    "Standard_NC64as_T4_v3", "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4",
    "Standard_NC96ads_A100_v4", "Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5",
    "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5",
    "Standard_NV36ads_A10_v5", "Standard_D2s_v5", "Standard_D64s_v5", "Standard_D8ds_v5",
    "Standard_D16as_v5", "Standard_D4s_v6", "Standard_D8as_v6", "Standard_E8s_v5",
    "Standard_E8as_v5", "Standard_E8s_v6", "Standard_F8s_v2", "Standard_F8as_v6",
    "Standard_B2s_v2",
]
FIELDS = {
    "vcpus", "memoryGiB", "gpus", "gpuModel", "family", "pricePerHour", "spotPricePerHour",
    "priceBasis", "spotBasis",
}


def test_the_catalog_file_says_region_currency_date_and_sources() -> None:
    data = _shipped()
    assert (data["region"], data["currency"]) == ("eastus", "USD")
    assert data["as_of"] and data["sources"]


@pytest.mark.parametrize("name", sorted(_shipped()["vmSizes"]))
def test_every_shipped_size_is_complete_and_priced_sensibly(name: str) -> None:
    data = _shipped()
    size = data["vmSizes"][name]
    assert set(size) == FIELDS
    assert name.startswith("Standard_")
    assert isinstance(size["vcpus"], int) and size["vcpus"] > 0
    assert size["memoryGiB"] > 0 and size["pricePerHour"] > 0 and size["family"]
    assert isinstance(size["gpus"], int) and size["gpus"] >= 0
    assert bool(size["gpuModel"]) == (size["gpus"] > 0)
    assert size["priceBasis"] in data["bases"] and size["spotBasis"] in data["bases"]
    if size["spotPricePerHour"] is None:
        assert size["spotBasis"] == "no-spot"
    else:
        assert 0 < size["spotPricePerHour"] < size["pricePerHour"]


@pytest.mark.parametrize("name", REQUIRED_SIZES)
def test_the_catalog_covers_the_common_aks_sizes(name: str) -> None:
    assert load_catalog().get(name) is not None


def test_catalog_lookup_ignores_case_and_misses_unknown_sizes() -> None:
    catalog = load_catalog()
    d8 = catalog.get("standard_d8S_V5")
    assert d8 is not None
    assert (d8.name, d8.vcpus, d8.memory_bytes, d8.family) == (
        "Standard_D8s_v5", 8, 32 * GiB, "standardDSv5Family",
    )
    assert catalog.get("Standard_Nope_v9") is None
    assert catalog.sizes["Standard_D8s_v5"] == d8


def test_the_catalog_is_frozen_and_hashable() -> None:
    assert hash(load_catalog()) == hash(load_catalog())
    assert load_catalog() == load_catalog()


# --- overrides --------------------------------------------------------------------------------


def test_a_price_override_keeps_the_rest_of_the_size() -> None:
    catalog = load_catalog({"standard_d8s_v5": {"pricePerHour": 0.4, "spotPricePerHour": 0.05}})
    d8 = catalog.get("Standard_D8s_v5")
    assert d8 is not None
    assert (d8.name, d8.price_per_hour, d8.spot_price_per_hour, d8.vcpus) == (
        "Standard_D8s_v5", 0.4, 0.05, 8,
    )
    assert len(catalog.sizes) == len(load_catalog().sizes)


def test_an_override_can_add_a_whole_new_size() -> None:
    new = {"vcpus": 4, "memoryGiB": 14.5, "gpus": 1, "gpuModel": "L4", "pricePerHour": 1.2}
    size = load_catalog({"Standard_NV4ads_L4_v9": new}).get("Standard_NV4ads_L4_v9")
    assert size == VmSize("Standard_NV4ads_L4_v9", 4, 29 * GiB // 2, 1, "L4", "", 1.2, None)


def test_an_override_can_remove_a_spot_price() -> None:
    d8 = load_catalog({"Standard_D8s_v5": {"spotPricePerHour": None}}).get("Standard_D8s_v5")
    assert d8 is not None and d8.spot_price_per_hour is None


NEW = {"vcpus": 2, "memoryGiB": 8, "pricePerHour": 0.1}


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"Standard_D8s_v5": {"pricePerHour": -1}}, "$.vmSizes.Standard_D8s_v5.pricePerHour"),
        ({"Standard_D8s_v5": {"pricePerHour": "low"}}, "$.vmSizes.Standard_D8s_v5.pricePerHour"),
        ({"Standard_D8s_v5": {"pricePerHour": True}}, "$.vmSizes.Standard_D8s_v5.pricePerHour"),
        ({"standard_d8s_v5": {"spotPricePerHour": 1.0}},
         "$.vmSizes.standard_d8s_v5.spotPricePerHour"),
        ({"Standard_D8s_v5": {"memoryGiB": float("nan")}}, "$.vmSizes.Standard_D8s_v5.memoryGiB"),
        ({"Standard_D8s_v5": {"gpus": -1}}, "$.vmSizes.Standard_D8s_v5.gpus"),
        ({"Standard_D8s_v5": {"family": 7}}, "$.vmSizes.Standard_D8s_v5.family"),
        ({"Standard_D8s_v5": {"price": 0.4}}, "$.vmSizes.Standard_D8s_v5.price"),
        ({"Standard_D8s_v5": 0.4}, "$.vmSizes.Standard_D8s_v5"),
        ({"Standard_X2": {"vcpus": 2, "memoryGiB": 8}}, "$.vmSizes.Standard_X2.pricePerHour"),
        ({"Standard_X2": {**NEW, "vcpus": 0}}, "$.vmSizes.Standard_X2.vcpus"),
        ({"Standard_X2": {**NEW, "vcpus": 2.5}}, "$.vmSizes.Standard_X2.vcpus"),
        ({"": NEW}, "$.vmSizes"),
    ],
)
def test_a_bad_override_names_the_size_and_field(overrides: Any, path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_catalog(overrides)
    assert caught.value.path == path


def test_a_bad_override_error_uses_the_callers_path() -> None:
    with pytest.raises(ValidationError) as caught:
        load_catalog({"Standard_D8s_v5": {"vcpus": 0}}, path="$.cloud.sizes")
    assert caught.value.path == "$.cloud.sizes.Standard_D8s_v5.vcpus"
