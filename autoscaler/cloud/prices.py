"""Optional refresh of the VM-size catalog's prices from the Azure Retail Prices API.

Callers: the in-cluster runner at start (and daily, if configured) calls ``refresh_catalog``
and passes the result to the loop; tests point ``url`` at the twin. The API is public and
unauthenticated (https://learn.microsoft.com/rest/api/cost-management/retail-prices/
azure-retail-prices): ``GET {url}?$filter=...`` answers ``{"Items": [...], "NextPageLink": ...}``
100 items a page. We ask for one region's Linux-and-Windows VM meters of type Consumption and
keep, per ``armSkuName``, the pay-as-you-go hourly price and the Spot one (``skuName`` ending in
" Spot"); Windows and Low Priority meters are skipped. Only sizes already in the catalog are
updated: their shapes (vCPUs, memory, GPUs) would come from azure-mgmt-compute resource SKUs,
which this package does not depend on.

Any failure (network, HTTP, JSON, an empty answer) logs a warning and returns the catalog
unchanged: a stale price ranks options slightly wrong; no price at all would stop scaling.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from autoscaler.model.aks import Catalog, SizeTable

log = logging.getLogger(__name__)

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
MAX_PAGES = 200  # one region's VM meters are a few thousand items; stop a runaway paging

Fetch = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class SizePrices:
    regular: float | None = None
    spot: float | None = None


def retail_filter(region: str) -> str:
    return (
        "serviceName eq 'Virtual Machines' and priceType eq 'Consumption' "
        f"and armRegionName eq '{region.lower()}'"
    )


def _fetcher(timeout: float, ca_file: str | None) -> Fetch:
    context = ssl.create_default_context(cafile=ca_file)

    def fetch(url: str) -> Mapping[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            body = json.loads(answer.read().decode("utf-8"))
        if not isinstance(body, Mapping):
            raise ValueError("the answer is not a JSON object")
        return body

    return fetch


def _items(url: str, fetch: Fetch) -> Iterator[Mapping[str, Any]]:
    next_url: str | None = url
    for _ in range(MAX_PAGES):
        if not next_url:
            return
        page = fetch(next_url)
        items = page.get("Items")
        if not isinstance(items, list):
            raise ValueError("the answer has no Items list")
        yield from (item for item in items if isinstance(item, Mapping))
        link = page.get("NextPageLink")
        next_url = link if isinstance(link, str) else None
    log.warning("retail prices: stopped after %d pages", MAX_PAGES)


def parse_items(items: Iterator[Mapping[str, Any]] | list[Mapping[str, Any]]
                ) -> dict[str, SizePrices]:
    """Per VM size (lowercase ``armSkuName``): its Linux pay-as-you-go and Spot hourly USD."""
    found: dict[str, dict[str, tuple[str, float]]] = {}
    for item in items:
        sku = item.get("armSkuName")
        price = item.get("retailPrice")
        name = str(item.get("skuName", ""))
        if (
            not isinstance(sku, str) or not sku
            or not isinstance(price, int | float) or isinstance(price, bool) or price <= 0
            or item.get("unitOfMeasure") != "1 Hour"
            or item.get("currencyCode", "USD") != "USD"
            or item.get("type", "Consumption") != "Consumption"
            or str(item.get("productName", "")).endswith("Windows")
            or "Low Priority" in name
        ):
            continue
        kind = "spot" if name.endswith(" Spot") else "regular"
        since = str(item.get("effectiveStartDate", ""))
        slot = found.setdefault(sku.lower(), {})
        # Several meters for one size: the one in force longest ago may be superseded.
        if kind not in slot or since >= slot[kind][0]:
            slot[kind] = (since, float(price))
    return {
        sku: SizePrices(
            regular=slot["regular"][1] if "regular" in slot else None,
            spot=slot["spot"][1] if "spot" in slot else None,
        )
        for sku, slot in found.items()
    }


def apply_prices(catalog: Catalog, prices: Mapping[str, SizePrices], region: str,
                 as_of: str) -> Catalog:
    """The catalog with the sizes it knows repriced; a size missing a price keeps its own."""
    sizes = []
    for size in catalog.sizes.entries:
        found = prices.get(size.name.lower())
        if found is not None:
            size = replace(
                size,
                price_per_hour=found.regular if found.regular is not None else size.price_per_hour,
                spot_price_per_hour=found.spot if found.spot is not None
                else size.spot_price_per_hour,
            )
        sizes.append(size)
    return Catalog(region=region, as_of=as_of, sizes=SizeTable(tuple(sizes)))


def refresh_catalog(
    catalog: Catalog,
    region: str | None = None,
    *,
    url: str = RETAIL_PRICES_URL,
    as_of: str = "retail prices API",
    timeout: float = 10.0,
    ca_file: str | None = None,
    fetch: Fetch | None = None,
) -> Catalog:
    """``catalog`` with prices from the Retail Prices API at ``url``, or unchanged on failure.

    ``region`` defaults to the catalog's; ``fetch`` replaces the HTTP client (tests)."""
    region = (region or catalog.region).lower()
    first = f"{url}?$filter={quote(retail_filter(region))}"
    try:
        prices = parse_items(_items(first, fetch or _fetcher(timeout, ca_file)))
    except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
        log.warning("retail prices refresh from %s failed, keeping the shipped table: %s", url, err)
        return catalog
    known = {size.name.lower() for size in catalog.sizes.entries}
    if not known & prices.keys():
        log.warning(
            "retail prices refresh from %s found none of the catalog's sizes in %s; "
            "keeping the shipped table", url, region,
        )
        return catalog
    return apply_prices(catalog, prices, region, as_of)
