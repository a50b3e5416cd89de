"""The PodDisruptionBudget reader of the snapshot loader: one budget object -> a budget.

Callers: ``control.snapshot`` reads each entry of ``podDisruptionBudgets``; ``control.capture``
and ``control.kubeobjects`` read live budgets (converted to the entry shape) and
``simulator.loader`` reads scenario budgets with ``pdb`` and ``PDB_FIELDS``. Values are read
through ``control.snapshot_fields``, so every error names the JSON path of the offending value.
The format is documented in docs/snapshot.md.
"""

from __future__ import annotations

import re

from autoscaler.control.snapshot_fields import INT32_MAX, Fields, as_int, as_text
from autoscaler.control.snapshot_selectors import label_selector
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import LabelSelector

PDB_FIELDS = ("namespace", "selector", "minAvailable", "maxUnavailable", "disruptionsAllowed")
_PERCENT = re.compile(r"(?:100|[1-9]?[0-9])%")


def int_or_percent(value: object, path: str) -> int | str:
    """An IntOrString budget: an integer >= 0 or a percentage ``"0%"`` to ``"100%"``."""
    if isinstance(value, str):
        if _PERCENT.fullmatch(value) is None:
            raise ValidationError(path, f"expected an integer or a percentage like '10%', got "
                                  f"{value!r}")
        return value
    return as_int(value, path, 0, INT32_MAX)


def pdb(fields: Fields, selector: LabelSelector | None = None) -> PodDisruptionBudget:
    """A PodDisruptionBudget from an object read with (at least) ``PDB_FIELDS`` allowed and
    ``name`` required; ``selector`` given replaces the object's own (scenario shortcuts).
    Exactly one of minAvailable and maxUnavailable, as the API server requires."""
    present = [key for key in ("minAvailable", "maxUnavailable") if fields.has(key)]
    if len(present) != 1:
        raise ValidationError(fields.at("minAvailable" if not present else "maxUnavailable"),
                              "set exactly one of minAvailable and maxUnavailable")
    budget = {key: int_or_percent(fields.get(key), fields.at(key)) for key in present}
    if selector is None:
        selector = LabelSelector()
        if fields.has("selector"):
            selector = label_selector(fields.get("selector"), fields.at("selector"))
    allowed = None
    if fields.has("disruptionsAllowed"):
        allowed = as_int(fields.get("disruptionsAllowed"), fields.at("disruptionsAllowed"), 0,
                         INT32_MAX)
    return PodDisruptionBudget(
        name=as_text(fields.get("name"), fields.at("name")),
        namespace=fields.text("namespace", "default"),
        selector=selector,
        min_available=budget.get("minAvailable"),
        max_unavailable=budget.get("maxUnavailable"),
        disruptions_allowed=allowed,
    )
