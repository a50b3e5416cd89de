"""Kubernetes resource quantities (``resource.Quantity``) parsed exactly into integer units.

Callers: the snapshot loader, the AKS VM-size table, the kube adapter. Grammar, as in
k8s.io/apimachinery: ``<sign><digits>[.<digits>]<suffix>`` where the suffix is a binary SI
suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m "" k M G T P E) or a decimal exponent
(``e3``, ``E-2``). Values are kept as exact fractions, then rounded *up* to the integer unit the
planner uses, as the API server does for requests (``500m`` cpu -> 500 millicores,
``0.5Gi`` -> 536870912 bytes, ``1.5`` pods -> 2).
"""

from __future__ import annotations

import re
from fractions import Fraction

from autoscaler.model.errors import ValidationError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?))$"
)


def parse_quantity(value: object, path: str) -> Fraction:
    """Exact value of a quantity given as a string or a JSON number; error names ``path``."""
    if isinstance(value, bool):
        raise ValidationError(path, f"expected a quantity, got boolean {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(path, f"expected a finite quantity, got {value!r}")
        return Fraction(str(value))
    if not isinstance(value, str):
        raise ValidationError(path, f"expected a quantity string, got {type(value).__name__}")
    match = _QUANTITY.match(value.strip())
    if match is None or value != value.strip():
        raise ValidationError(path, f"malformed quantity {value!r}")
    number = Fraction(match["num"])
    if match["exp"] is not None:
        exponent = int(match["exp"][1:])
        if abs(exponent) > 30:
            raise ValidationError(path, f"quantity exponent out of range in {value!r}")
        number *= Fraction(10) ** exponent
    else:
        suffix = match["suffix"]
        number *= _BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix]
    return -number if match["sign"] == "-" else number


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def quantity_units(resource: str, value: object, path: str, *, allow_negative: bool = False) -> int:
    """Integer planner units of ``value`` for ``resource``: millicores for cpu, else the base unit.

    Rounds up (a request of 0.1m cpu still takes a millicore). Negative values are refused
    unless ``allow_negative`` (no request or allocatable may be negative).
    """
    exact = parse_quantity(value, path)
    if exact < 0 and not allow_negative:
        raise ValidationError(path, f"negative quantity {value!r}")
    scaled = exact * 1000 if resource == "cpu" else exact
    return _ceil(scaled)


def format_units(resource: str, units: int) -> str:
    """Human form used in reasons: ``96000m`` for cpu, ``16Gi``/``1536Mi`` for byte axes."""
    if resource == "cpu":
        return f"{units}m"
    if resource in ("memory", "ephemeral-storage"):
        for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if units >= factor and units % factor == 0:
                return f"{units // factor}{suffix}"
        if units >= 2**20:
            return f"{units / 2**20:.1f}Mi"
    return str(units)
