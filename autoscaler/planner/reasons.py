"""Human reasons for pods a plan cannot place, shared by both planners.

Callers: ``planner.scaleup`` and ``planner.reference``. Reasons are precise and short, e.g.
``no pool fits: gpu-nc4: cpu 96000m > 3860m allocatable`` or ``pool spot-d8-1 at max 50``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from autoscaler.model.pool import NodeOption
from autoscaler.model.quantity import format_units
from autoscaler.planner.groups import PodGroup

MAX_LISTED = 4


def no_pool_fits(group: PodGroup, options: Sequence[NodeOption]) -> str:
    """Why no option can ever take the group: each distinct reason with the pools it hits."""
    # Imported here: encode imports this module's siblings, and this keeps the import graph flat.
    from autoscaler.planner.encode import static_mismatch

    if not options:
        return "no managed pool"
    by_reason: dict[str, list[str]] = {}
    for option in options:
        why = static_mismatch(group.pod, group.requests, option) or "fits"
        by_reason.setdefault(why, []).append(option.pool)
    parts = [f"{_pools(pools)}: {why}" for why, pools in sorted(by_reason.items())]
    shown = parts[:MAX_LISTED]
    if len(parts) > MAX_LISTED:
        shown.append(f"(+{len(parts) - MAX_LISTED} more)")
    return "no pool fits: " + "; ".join(shown)


def _pools(pools: list[str]) -> str:
    if len(pools) <= 3:
        return ", ".join(pools)
    return f"{', '.join(pools[:3])} (+{len(pools) - 3} pools)"


def at_max(option: NodeOption, max_count: int) -> str:
    return f"pool {option.pool} at max {max_count}"


def limit_reached(what: str, limit: int) -> str:
    if what == "memory":
        return f"cluster limit max memory {format_units('memory', limit)} reached"
    if what == "new nodes":
        return f"plan limit of {limit} new nodes reached"
    return f"cluster limit max {what} {limit} reached"


def zone_blocked(zone: str, max_skew: int) -> str:
    return f"topology spread (maxSkew {max_skew}): no capacity in zone {zone}"


def explain(
    group: PodGroup,
    options: Sequence[NodeOption],
    usable: Sequence[int],
    room: Callable[[int], tuple[int, str | None]],
    fits_some_node: bool,
    zones_left: Sequence[str],
    max_skew: int,
) -> str:
    """Why pods of ``group`` are left unplaced, from the final state of the plan.

    ``usable`` are the options the group could use at all, ``room`` the budget's verdict on
    one option, ``zones_left`` zones that still have quota under a required zone spread.
    Worded from the end state only, so it is the same however the pods were placed.
    """
    if not usable:
        reason = no_pool_fits(group, options)
        return "existing nodes full; " + reason if fits_some_node else reason
    blockers = [why for o in usable for n, why in [room(o)] if n == 0 and why]
    blockers += [zone_blocked(z, max_skew) for z in zones_left]
    return join(blockers, "no capacity")


def join(blockers: Sequence[str], fallback: str) -> str:
    """Every distinct blocker once, sorted: the text does not depend on the order they were
    met in, so both planners (and two runs) word the same outcome the same way."""
    return "; ".join(sorted(set(blockers))) if blockers else fallback
