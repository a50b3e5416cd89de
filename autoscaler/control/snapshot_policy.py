"""The cluster-wide settings readers: ``limits``, ``policy`` (priority tiers) and ``managedPools``.

Callers: ``control.snapshot`` reads a snapshot's sections with them; the same readers serve the
scenario files (``simulator.settings``: limits, ``loop_policy``, managed pools) and the
configuration file (``control.config``: limits, ``loop_policy``). Values are read through
``control.snapshot_fields``, so every error names the JSON path of the offending value. The
format is documented in docs/snapshot.md.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from autoscaler.control.snapshot_fields import Fields, as_list, as_text
from autoscaler.model.errors import ValidationError
from autoscaler.model.plan import ClusterLimits, Policy
from autoscaler.model.pool import AgentPool, PoolMode, Priority
from autoscaler.model.quantity import quantity_units


def read_limits(fields: Fields) -> ClusterLimits:
    """The ``limits`` entry of ``fields`` (maxNodes, maxCores, maxMemory); absent: none.
    Also read by scenario and configuration files."""
    if not fields.has("limits"):
        return ClusterLimits()
    limits = Fields(fields.get("limits"), fields.at("limits"),
                    optional=("maxNodes", "maxCores", "maxMemory"))
    memory = None
    if limits.has("maxMemory"):
        memory = quantity_units("memory", limits.get("maxMemory"), limits.at("maxMemory"))
    return ClusterLimits(
        max_nodes=None if not limits.has("maxNodes") else limits.integer("maxNodes", 0),
        max_cores=None if not limits.has("maxCores") else limits.integer("maxCores", 0),
        max_memory_bytes=memory,
    )


def read_policy(top: Fields, pools: set[str]) -> Policy:
    """The snapshot's ``policy`` entry (priority tiers, maxNewNodes); absent: the default."""
    if not top.has("policy"):
        return Policy()
    fields = Fields(top.get("policy"), "$.policy", optional=("priorityTiers", "maxNewNodes"))
    tiers = priority_tiers(fields, pools)
    max_new = None if not fields.has("maxNewNodes") else fields.integer("maxNewNodes", 0)
    return _policy(tiers, max_new)


def loop_policy(fields: Fields, pools: Collection[str] | None) -> Policy:
    """``priorityTiers`` and ``maxNewNodesPerLoop`` (at least 1) of the configuration file or of
    a scenario's ``autoscaler`` section; absent: the default."""
    key = "maxNewNodesPerLoop"
    max_new = fields.integer(key, 0, 1) if fields.has(key) else None
    return _policy(priority_tiers(fields, pools), max_new)


def _policy(tiers: tuple[tuple[str, ...], ...] | None, max_new: int | None) -> Policy:
    if tiers is None:
        return Policy(max_new_nodes=max_new)
    return Policy(priority_tiers=tiers, max_new_nodes=max_new)


def priority_tiers(
    fields: Fields, pools: Collection[str] | None
) -> tuple[tuple[str, ...], ...] | None:
    """``priorityTiers``: non-empty lists of ``Spot``, ``Regular`` or pool names, each named
    once; None when absent. ``pools`` None accepts any pool name (a configuration that does
    not list its pools). Also read by scenario and configuration files."""
    if not fields.has("priorityTiers"):
        return None
    known = {p.value.lower() for p in Priority} | {p.lower() for p in pools or ()}
    tiers: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for tier, tier_path in fields.items("priorityTiers"):
        listed = as_list(tier, tier_path)
        if not listed:
            raise ValidationError(tier_path, "must not be empty")
        selectors: list[str] = []
        for item, at in listed:
            selector = as_text(item, at).strip()
            if pools is not None and selector.lower() not in known:
                raise ValidationError(at, f"{selector!r} is neither Spot, Regular nor a pool name")
            if selector.lower() in seen:
                raise ValidationError(at, f"{selector!r} already appears in a tier")
            seen.add(selector.lower())
            selectors.append(selector)
        tiers.append(tuple(selectors))
    return tuple(tiers)


def read_managed(fields: Fields, pools: Sequence[AgentPool]) -> tuple[str, ...]:
    """``managedPools``: known pool names, each once; absent: every pool but System pools.
    Also read by scenario files."""
    if not fields.has("managedPools"):
        return tuple(pool.name for pool in pools if pool.mode is not PoolMode.SYSTEM)
    names = {pool.name for pool in pools}
    managed: list[str] = []
    for item, at in fields.items("managedPools"):
        name = as_text(item, at)
        if name not in names:
            raise ValidationError(at, f"unknown pool {name!r}")
        if name in managed:
            raise ValidationError(at, f"duplicate pool {name!r}")
        managed.append(name)
    return tuple(managed)
