"""The Retail Prices refresh over HTTPS against the twin's fake retail-prices pages."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from autoscaler.cloud.prices import refresh_catalog
from autoscaler.model.aks import Catalog, load_catalog
from simulator.twin import ArmTwin


def meter(sku: str, price: float, sku_name: str, *, region: str = "eastus",
          product: str = "Virtual Machines Dsv5 Series", **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "currencyCode": "USD",
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": region,
        "armSkuName": sku,
        "skuName": sku_name,
        "meterName": sku_name,
        "productName": product,
        "serviceName": "Virtual Machines",
        "priceType": "Consumption",
        "type": "Consumption",
        "unitOfMeasure": "1 Hour",
        "effectiveStartDate": "2026-01-01T00:00:00Z",
    }
    item.update(extra)
    return item


METERS = [
    meter("Standard_D4s_v5", 0.2, "D4s v5"),
    meter("Standard_D4s_v5", 0.05, "D4s v5 Spot"),
    meter("Standard_D4s_v5", 0.4, "D4s v5", product="Virtual Machines Dsv5 Series Windows"),
    meter("Standard_D4s_v5", 0.04, "D4s v5 Low Priority"),
    meter("Standard_D4s_v5", 0.9, "D4s v5", region="westeurope"),
    meter("Standard_D8s_v5", 0.41, "D8s v5"),
    meter("Standard_D8s_v5", 0.39, "D8s v5", effectiveStartDate="2025-01-01T00:00:00Z"),
]


def refresh(arm_twin: ArmTwin, catalog: Catalog, **kwargs: Any) -> Catalog:
    return refresh_catalog(catalog, url=arm_twin.prices_url, ca_file=arm_twin.ca_file, **kwargs)


def test_a_refresh_reprices_linux_pay_as_you_go_and_spot_across_pages(arm_twin: ArmTwin) -> None:
    arm_twin.model.prices = METERS
    arm_twin.model.price_page_size = 2
    shipped = load_catalog()
    fresh = refresh(arm_twin, shipped)
    d4, d8 = fresh.get("Standard_D4s_v5"), fresh.get("Standard_D8s_v5")
    assert d4 is not None and d8 is not None
    assert (d4.price_per_hour, d4.spot_price_per_hour) == (0.2, 0.05)
    assert d8.price_per_hour == 0.41  # the newest meter wins
    old_d8 = shipped.get("Standard_D8s_v5")
    assert old_d8 is not None and d8.spot_price_per_hour == old_d8.spot_price_per_hour
    assert arm_twin.requests["GET prices"] == 3  # 6 eastus VM meters, 2 a page
    assert len(fresh.sizes) == len(shipped.sizes)


@pytest.mark.parametrize(
    ("scene", "why"),
    [
        ("server error", "failed"),
        ("no known sizes", "none of the catalog's sizes"),
        ("unreachable", "failed"),
    ],
)
def test_a_failed_refresh_warns_and_keeps_the_shipped_table(
    arm_twin: ArmTwin, caplog: pytest.LogCaptureFixture, scene: str, why: str
) -> None:
    shipped = load_catalog()
    arm_twin.model.prices = METERS
    url = arm_twin.prices_url
    if scene == "server error":
        arm_twin.model.fail_next("GET prices", 500, "InternalServerError")
    elif scene == "no known sizes":
        arm_twin.model.prices = [meter("Standard_Z99_v9", 1.0, "Z99 v9")]
    else:
        url = "https://127.0.0.1:9/api/retail/prices"
    with caplog.at_level(logging.WARNING, logger="autoscaler.cloud.prices"):
        kept = refresh_catalog(shipped, url=url, ca_file=arm_twin.ca_file, timeout=2.0)
    assert kept is shipped
    assert why in caplog.text


def test_a_refresh_without_trusting_the_twin_ca_fails_safe(arm_twin: ArmTwin) -> None:
    arm_twin.model.prices = METERS
    shipped = load_catalog()
    assert refresh_catalog(shipped, url=arm_twin.prices_url) is shipped
