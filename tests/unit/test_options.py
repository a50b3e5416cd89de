"""Pools -> node options in autoscaler.planner.options: zones, templates, prices, skipped pools."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from autoscaler.model.aks import SPOT_TAINT, load_catalog
from autoscaler.model.labels import HOSTNAME_LABEL, SPOT_LABEL, ZONE_LABEL
from autoscaler.model.node import Node
from autoscaler.model.pool import AgentPool, NodeOption, Priority
from autoscaler.model.resources import Resources
from autoscaler.planner.options import build_options
from tests.builders import GiB, MiB, node, pool, res

CATALOG = load_catalog()
# Standard_D4s_v5 in eastus: 0.192 pay-as-you-go, 0.0384 Spot (estimate) per hour.
D4_PAYG, D4_SPOT = 0.192, 0.0384
# 4 vCPU, 16 GiB, 110 pods, AKS 1.30: 4000 - 140 cpu; 16384 - (20*110 + 50 + 100) Mi.
# 128 GiB default OS disk: 85% of it as ephemeral storage (options.template_ephemeral_storage).
D4_FORMULA = res(3860, 14034 * MiB, pods=110, ephemeral_storage=128 * GiB * 85 // 100)


def _options(
    pools: list[AgentPool], nodes: tuple[Node, ...] = (), **kwargs: Any
) -> tuple[tuple[NodeOption, ...], tuple[str, ...]]:
    return build_options("eastus", pools, nodes, kwargs.pop("catalog", CATALOG), **kwargs)


def _only(pools: list[AgentPool], nodes: tuple[Node, ...] = ()) -> NodeOption:
    options, warnings = _options(pools, nodes)
    assert warnings == ()
    (option,) = options
    return option


def test_each_pool_is_one_option_in_name_order() -> None:
    options, warnings = _options([pool("zeta"), pool("alpha"), pool("mid")])
    assert [o.pool for o in options] == ["alpha", "mid", "zeta"]
    assert warnings == ()


@pytest.mark.parametrize(
    ("managed", "expected", "warnings"),
    [
        pytest.param(None, ["a", "b", "c"], (), id="none-means-all"),
        pytest.param({"c", "a"}, ["a", "c"], (), id="subset"),
        pytest.param((), [], (), id="empty"),
        pytest.param(
            ["b", "ghost"], ["b"], ("managed pool 'ghost' is not among the cluster's agent pools",),
            id="unknown-name-warns",
        ),
    ],
)
def test_only_managed_pools_become_options(
    managed: Any, expected: list[str], warnings: tuple[str, ...]
) -> None:
    options, got = _options([pool("a"), pool("b"), pool("c")], managed=managed)
    assert [o.pool for o in options] == expected
    assert got == warnings


@pytest.mark.parametrize(
    ("zones", "zone"),
    [
        pytest.param(("2",), "eastus-2", id="one-zone"),
        pytest.param(("1", "2", "3"), None, id="several-zones-unknown"),
        pytest.param((), None, id="no-zone-unknown"),
    ],
)
def test_only_a_single_zone_pool_has_a_zone(zones: tuple[str, ...], zone: str | None) -> None:
    option = _only([pool(zones=zones)])
    assert option.zone == zone
    assert dict(option.template.labels).get(ZONE_LABEL) == zone


def test_the_template_carries_aks_labels_hostname_and_region() -> None:
    labels = dict(_only([pool("web", zones=("1",))]).template.labels)
    assert labels[HOSTNAME_LABEL] == "web-template"
    assert labels["topology.kubernetes.io/region"] == "eastus"
    assert labels["kubernetes.azure.com/agentpool"] == "web"
    assert labels["node.kubernetes.io/instance-type"] == "Standard_D4s_v5"
    assert SPOT_LABEL not in labels


@pytest.mark.parametrize(
    ("priority", "price", "spot_label", "taints"),
    [
        pytest.param(Priority.REGULAR, D4_PAYG, None, (), id="regular"),
        pytest.param(Priority.SPOT, D4_SPOT, "spot", (SPOT_TAINT,), id="spot"),
    ],
)
def test_spot_pools_are_priced_labelled_and_tainted_as_spot(
    priority: Priority, price: float, spot_label: str | None, taints: Any
) -> None:
    option = _only([pool(priority=priority)])
    assert (option.priority, option.price_per_hour) == (priority, price)
    assert dict(option.template.labels).get(SPOT_LABEL) == spot_label
    assert option.template.taints == taints


def test_a_catalog_override_sets_the_option_price() -> None:
    catalog = load_catalog({"Standard_D4s_v5": {"pricePerHour": 0.17}})
    (option,), _ = _options([pool()], catalog=catalog)
    assert option.price_per_hour == 0.17


def test_without_a_node_the_template_uses_the_aks_formula() -> None:
    template = _only([pool()]).template
    assert template.allocatable == D4_FORMULA
    assert (template.vcpus, template.memory_bytes) == (4, 16 * GiB)


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        pytest.param(
            (node("n-b", 3900, 15 * GiB), node("n-a", 3800, 14 * GiB)),
            res(3800, 14 * GiB, pods=110), id="first-by-name",
        ),
        pytest.param(
            (node("n-a", 3800, 14 * GiB, ready=False),),
            res(3800, 14 * GiB, pods=110), id="not-ready-still-counts",
        ),
        pytest.param(
            (node("other", 1000, GiB, pool="other"),), D4_FORMULA, id="other-pool-ignored",
        ),
        pytest.param(
            (replace(node("n-a"), allocatable=Resources()),), D4_FORMULA,
            id="unreported-allocatable-ignored",
        ),
    ],
)
def test_a_real_node_allocatable_is_preferred(nodes: tuple[Node, ...], expected: Any) -> None:
    template = _only([pool()], nodes).template
    assert template.allocatable == expected
    assert (template.vcpus, template.memory_bytes) == (4, 16 * GiB)


def test_a_gpu_node_not_yet_advertising_gpus_gets_them_from_the_size() -> None:
    gpu_pool = pool("gpu", "Standard_NC24ads_A100_v4")
    without = node("gpu-0", 23000, 200 * GiB, pool="gpu")
    option = _only([gpu_pool], (without,))
    assert option.template.allocatable.get_units("nvidia.com/gpu") == 1
    assert dict(option.template.labels)["kubernetes.azure.com/accelerator"] == "nvidia"


@pytest.mark.parametrize(
    ("the_pool", "nodes", "warning"),
    [
        pytest.param(
            pool("odd", "Standard_Z9_v1"), (),
            "pool 'odd' (VM size Standard_Z9_v1) skipped: size not in the VM-size catalog; "
            "add it as an override",
            id="unknown-size",
        ),
        pytest.param(
            pool("odd", "Standard_Z9_v1"), (node("odd-0", pool="odd"),),
            "pool 'odd' (VM size Standard_Z9_v1) skipped: size not in the VM-size catalog; "
            "add it as an override",
            id="unknown-size-even-with-a-node-has-no-price",
        ),
        pytest.param(
            pool("burst", "Standard_B2s_v2", priority=Priority.SPOT), (),
            "pool 'burst' (VM size Standard_B2s_v2) skipped: no Spot price for this size "
            "(Azure offers no Spot)",
            id="spot-of-a-size-without-spot",
        ),
        pytest.param(
            replace(pool("win"), os_type="Windows"), (),
            "pool 'win' (VM size Standard_D4s_v5) skipped: no node to copy and the reservation "
            "formula is for Linux only (osType Windows)",
            id="windows-without-node",
        ),
        pytest.param(
            replace(pool("old"), kubernetes_version="next"), (),
            "pool 'old' (VM size Standard_D4s_v5) skipped: no node to copy and the Kubernetes "
            "version 'next' is unreadable",
            id="unreadable-version-without-node",
        ),
    ],
)
def test_a_pool_that_cannot_be_known_is_skipped_with_a_warning(
    the_pool: AgentPool, nodes: tuple[Node, ...], warning: str
) -> None:
    options, warnings = _options([the_pool, pool("fine")], nodes)
    assert [o.pool for o in options] == ["fine"]
    assert warnings == (warning,)


@pytest.mark.parametrize(
    "the_pool",
    [
        pytest.param(replace(pool("win"), os_type="Windows"), id="windows"),
        pytest.param(replace(pool("win"), kubernetes_version="next"), id="unreadable-version"),
    ],
)
def test_a_real_node_rescues_a_pool_the_formula_cannot_describe(the_pool: AgentPool) -> None:
    option = _only([the_pool], (node("win-0", 3500, 12 * GiB, pool="win"),))
    assert option.template.allocatable == res(3500, 12 * GiB, pods=110)


def test_the_same_input_gives_the_same_options() -> None:
    pools = [pool("b", zones=("1", "2")), pool("a", priority=Priority.SPOT)]
    assert _options(pools) == _options(list(reversed(pools)))
