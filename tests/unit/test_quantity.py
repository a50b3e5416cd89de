"""Kubernetes quantity parsing and formatting (autoscaler.model.quantity)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from autoscaler.model.errors import ValidationError
from autoscaler.model.quantity import format_units, parse_quantity, quantity_units
from tests.builders import GiB, MiB

PATH = "$.pods[3].containers[0].resources.requests.cpu"


@pytest.mark.parametrize(
    ("text", "millicores"),
    [
        pytest.param("500m", 500, id="millicores"),
        pytest.param("1", 1000, id="whole-core"),
        pytest.param("0.5", 500, id="decimal"),
        pytest.param(".5", 500, id="leading-dot"),
        pytest.param("1.", 1000, id="trailing-dot"),
        pytest.param("2.25", 2250, id="two-decimals"),
        pytest.param("+1", 1000, id="explicit-plus"),
        pytest.param("0", 0, id="zero"),
        pytest.param("2k", 2_000_000, id="kilo"),
        pytest.param("1e3", 1_000_000, id="exponent"),
        pytest.param("5E-2", 50, id="negative-exponent-upper-case"),
        pytest.param("0.1m", 1, id="sub-millicore-rounds-up"),
        pytest.param("1500u", 2, id="micro-rounds-up"),
        pytest.param("1n", 1, id="nano-rounds-up"),
        pytest.param("1.0001", 1001, id="decimal-rounds-up"),
        pytest.param("1Ki", 1_024_000, id="binary-suffix-on-cpu"),
    ],
)
def test_cpu_quantities_become_millicores_rounded_up(text: str, millicores: int) -> None:
    assert quantity_units("cpu", text, PATH) == millicores


@pytest.mark.parametrize(
    ("text", "units"),
    [
        pytest.param("1Ki", 2**10, id="Ki"),
        pytest.param("128Mi", 128 * MiB, id="Mi"),
        pytest.param("16Gi", 16 * GiB, id="Gi"),
        pytest.param("2Ti", 2 * 2**40, id="Ti"),
        pytest.param("1Pi", 2**50, id="Pi"),
        pytest.param("1Ei", 2**60, id="Ei"),
        pytest.param("0.5Gi", 536_870_912, id="fractional-binary"),
        pytest.param("1.5Gi", 1_610_612_736, id="one-and-a-half-binary"),
        pytest.param("1k", 10**3, id="k"),
        pytest.param("1M", 10**6, id="M"),
        pytest.param("3G", 3 * 10**9, id="G"),
        pytest.param("1T", 10**12, id="T"),
        pytest.param("1P", 10**15, id="P"),
        pytest.param("1E", 10**18, id="E-is-exa-not-exponent"),
        pytest.param("1e3", 1000, id="exponent"),
        pytest.param("12E6", 12 * 10**6, id="exponent-upper-case"),
        pytest.param("1E-2", 1, id="tiny-exponent-rounds-up"),
        pytest.param("100m", 1, id="milli-bytes-round-up"),
        pytest.param("129.5", 130, id="half-byte-rounds-up"),
        pytest.param("1e30", 10**30, id="largest-exponent"),
    ],
)
def test_memory_quantities_become_bytes_rounded_up(text: str, units: int) -> None:
    assert quantity_units("memory", text, PATH) == units


@pytest.mark.parametrize(
    ("resource", "value", "units"),
    [
        pytest.param("pods", "1.5", 2, id="counts-round-up"),
        pytest.param("nvidia.com/gpu", "1", 1, id="gpu-count"),
        pytest.param("cpu", 2, 2000, id="json-integer"),
        pytest.param("cpu", 0.25, 250, id="json-float"),
        pytest.param("memory", 1e-7, 1, id="json-tiny-float-rounds-up"),
        pytest.param("memory", 1024, 1024, id="json-integer-bytes"),
    ],
)
def test_json_numbers_and_counts_are_accepted(resource: str, value: object, units: int) -> None:
    assert quantity_units(resource, value, PATH) == units


def test_parse_quantity_keeps_the_exact_fraction() -> None:
    assert parse_quantity("0.3", PATH) == Fraction(3, 10)
    assert parse_quantity("1.5Ki", PATH) == Fraction(1536)
    assert parse_quantity("-250m", PATH) == Fraction(-1, 4)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1 ", id="trailing-space"),
        pytest.param("1Mi\n", id="trailing-newline"),
        pytest.param("1 Gi", id="space-before-suffix"),
        pytest.param("Gi", id="suffix-only"),
        pytest.param("1Gb", id="unknown-suffix"),
        pytest.param("1ki", id="lower-case-binary"),
        pytest.param("1KiB", id="bytes-suffix"),
        pytest.param("1.2.3", id="two-dots"),
        pytest.param(".", id="dot-only"),
        pytest.param("1e", id="exponent-without-digits"),
        pytest.param("1e3Gi", id="exponent-and-suffix"),
        pytest.param("--1", id="double-sign"),
        pytest.param("0x10", id="hexadecimal"),
        pytest.param("1_000", id="underscore"),
        pytest.param("١", id="non-ascii-digit"),
        pytest.param("abc", id="word"),
        pytest.param("nan", id="nan-string"),
        pytest.param("1e31", id="exponent-out-of-range"),
        pytest.param(float("nan"), id="nan-float"),
        pytest.param(float("inf"), id="infinite-float"),
        pytest.param(None, id="null"),
        pytest.param([1], id="list"),
        pytest.param({"cpu": 1}, id="object"),
    ],
)
def test_malformed_quantities_are_refused_naming_the_path(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        quantity_units("cpu", value, PATH)
    assert caught.value.path == PATH
    assert str(caught.value).startswith(f"{PATH}: ")


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_booleans_are_not_quantities(value: bool) -> None:
    with pytest.raises(ValidationError, match="boolean") as caught:
        quantity_units("pods", value, PATH)
    assert caught.value.path == PATH


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("-1", id="negative-string"),
        pytest.param("-500m", id="negative-millicores"),
        pytest.param("-1e3", id="negative-exponent-form"),
        pytest.param(-1, id="negative-integer"),
        pytest.param(-0.5, id="negative-float"),
    ],
)
def test_negative_quantities_are_refused_by_default(value: object) -> None:
    with pytest.raises(ValidationError, match="negative") as caught:
        quantity_units("cpu", value, PATH)
    assert caught.value.path == PATH


@pytest.mark.parametrize(
    ("value", "millicores"),
    [
        pytest.param("-1", -1000, id="negative-core"),
        pytest.param("-500m", -500, id="negative-millicores"),
        pytest.param("-0.5m", 0, id="rounds-up-toward-zero"),
        pytest.param("-0", 0, id="negative-zero-is-zero"),
    ],
)
def test_negative_quantities_are_allowed_on_request(value: str, millicores: int) -> None:
    assert quantity_units("cpu", value, PATH, allow_negative=True) == millicores


def test_negative_zero_is_not_refused_as_negative() -> None:
    assert quantity_units("memory", "-0", PATH) == 0


@pytest.mark.parametrize(
    ("resource", "units", "text"),
    [
        pytest.param("cpu", 96000, "96000m", id="cpu-millicores"),
        pytest.param("cpu", 0, "0m", id="cpu-zero"),
        pytest.param("memory", 16 * GiB, "16Gi", id="gibibytes"),
        pytest.param("memory", 1536 * MiB, "1536Mi", id="mebibytes-when-not-whole-gibibytes"),
        pytest.param("memory", 2**40, "1Ti", id="tebibytes"),
        pytest.param("memory", 15_384_892 * 1024, "15384892Ki", id="kibibytes-as-kubelet"),
        pytest.param("memory", 1000, "1000", id="small-bytes"),
        pytest.param("memory", 0, "0", id="memory-zero"),
        pytest.param("memory", 1_500_000_000, "1430.5Mi", id="inexact-as-decimal-mebibytes"),
        pytest.param("ephemeral-storage", 100 * GiB, "100Gi", id="ephemeral-storage-bytes"),
        pytest.param("pods", 110, "110", id="pods-count"),
        pytest.param("nvidia.com/gpu", 2, "2", id="gpu-count"),
        pytest.param("example.com/fpga", 1024, "1024", id="extended-not-binary"),
    ],
)
def test_format_units_prints_the_unit_of_each_axis(resource: str, units: int, text: str) -> None:
    assert format_units(resource, units) == text


@pytest.mark.parametrize(
    ("resource", "text"),
    [("cpu", "96000m"), ("memory", "16Gi"), ("memory", "1536Mi"), ("memory", "15384892Ki")],
)
def test_formatted_whole_units_parse_back_to_the_same_units(resource: str, text: str) -> None:
    units = quantity_units(resource, text, PATH)
    assert format_units(resource, units) == text
