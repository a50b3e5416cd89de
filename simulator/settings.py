"""Scenario sections about the infrastructure: agent pools, the autoscaler's settings and the
simulated cloud, read strictly from YAML.

Callers: ``simulator.loader`` (scenario files, and autoscaler settings files given with
``surge simulate --config``). Every error is a ``ValidationError`` naming the field path; the
format is documented in docs/scenarios.md. The ``scaleDown`` section and the durations are read
by the controller's readers (``autoscaler.control.config_fields``), so that settings tried here
are accepted or refused by ``surge run`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from autoscaler.control.config_fields import provisioning_timers, scale_down_of, seconds
from autoscaler.control.loop import LoopConfig
from autoscaler.control.snapshot_fields import (
    Fields,
    as_enum,
    as_int,
    as_list,
    as_object,
    child,
)
from autoscaler.control.snapshot_policy import loop_policy, read_limits, read_managed
from autoscaler.control.snapshot_pools import read_pool
from autoscaler.model.aks import Catalog, zone_label
from autoscaler.model.errors import ValidationError
from autoscaler.model.pool import AgentPool, Priority
from simulator.cloud_pools import CloudModel
from simulator.yamlsource import duration, number, zone_number

AUTOSCALER_FIELDS = (
    "loopInterval", "managedPools", "limits", "priorityTiers", "maxNewNodesPerLoop",
    "maxNodeProvisionTime", "poolRefreshInterval", "dryRun", "scaleDown",
)
CLOUD_FIELDS = (
    "provisioning", "operationTime", "registerLead", "capacity", "quotas",
    "spotEvictionsPerNodeHour", "evictionNotice",
)


# --- pools ------------------------------------------------------------------------------------


def parse_pools(value: object, path: str, catalog: Catalog) -> tuple[AgentPool, ...]:
    pools: list[AgentPool] = []
    first: dict[str, str] = {}
    entries = as_list(value, path)
    if not entries:
        raise ValidationError(path, "must list at least one pool")
    for item, at in entries:
        pool = _pool(item, at, catalog)
        if pool.name in first:
            reason = f"duplicate pool name {pool.name!r} (first at {first[pool.name]})"
            raise ValidationError(child(at, "name"), reason)
        first[pool.name] = at
        pools.append(pool)
    return tuple(pools)


def _pool(value: object, path: str, catalog: Catalog) -> AgentPool:
    """A scenario pool: the snapshot's pool reader with the scenario's field names, and a VM
    size that must be in the catalog (the simulated cloud needs its shape and price)."""
    pool = read_pool(value, path, count_required=False, labels_key="labels",
                     taints_key="taints", zone=zone_number)
    vm = catalog.get(pool.vm_size)
    if vm is None:
        reason = f"{pool.vm_size!r} is not in the VM-size catalog; add it under vmSizes"
        raise ValidationError(child(path, "vmSize"), reason)
    return replace(pool, vm_size=vm.name)


# --- autoscaler -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AutoscalerSettings:
    loop: LoopConfig
    loop_interval_s: float


def parse_autoscaler(
    value: object, path: str, region: str, pools: tuple[AgentPool, ...]
) -> AutoscalerSettings:
    """The ``autoscaler`` section (absent: the defaults) as the loop's configuration."""
    fields = Fields({} if value is None else value, path, optional=AUTOSCALER_FIELDS)
    managed = read_managed(fields, pools)
    provision, refresh = provisioning_timers(fields)
    loop = LoopConfig(
        region=region,
        managed_pools=managed,
        limits=read_limits(fields),
        policy=loop_policy(fields, {p.name for p in pools}),
        max_node_provision_time=provision,
        pool_refresh_interval=refresh,
        dry_run=fields.boolean("dryRun", False),
        scale_down=scale_down_of(fields),
    )
    return AutoscalerSettings(loop, seconds(fields, "loopInterval", 10.0, positive=True))


# --- cloud ------------------------------------------------------------------------------------


def parse_cloud(value: object, path: str, region: str, catalog: Catalog) -> CloudModel:
    """The ``cloud`` section (absent: an unlimited cloud with AKS-like delays)."""
    fields = Fields({} if value is None else value, path, optional=CLOUD_FIELDS)
    provision = (90.0, 240.0)
    if fields.has("provisioning"):
        span = Fields(fields.get("provisioning"), fields.at("provisioning"),
                      required=("min", "max"))
        low = duration(span.get("min"), span.at("min"))
        high = duration(span.get("max"), span.at("max"))
        if high < low:
            raise ValidationError(span.at("max"), f"{high:g}s is less than min {low:g}s")
        provision = (low, high)
    capacity = _capacity(fields, region, catalog)
    regional, spot, family = _quotas(fields, catalog)
    rate = 0.0
    if fields.has("spotEvictionsPerNodeHour"):
        at = fields.at("spotEvictionsPerNodeHour")
        rate = number(fields.get("spotEvictionsPerNodeHour"), at)
    return CloudModel(
        provision_seconds=provision,
        operation_seconds=seconds(fields, "operationTime", 30.0, positive=False),
        capacity=capacity,
        regional_cores=regional,
        family_cores=family,
        spot_cores=spot,
        spot_evictions_per_node_hour=rate,
        eviction_notice_seconds=seconds(fields, "evictionNotice", 30.0, positive=False),
        register_lead_seconds=seconds(fields, "registerLead", 15.0, positive=False),
    )


def _capacity(
    fields: Fields, region: str, catalog: Catalog
) -> dict[tuple[str, str | None, str], int]:
    capacity: dict[tuple[str, str | None, str], int] = {}
    for item, at in fields.items("capacity"):
        entry = Fields(item, at, required=("vmSize", "priority", "nodes"), optional=("zone",))
        vm = catalog.get(entry.text("vmSize"))
        if vm is None:
            reason = f"{entry.text('vmSize')!r} is not in the VM-size catalog"
            raise ValidationError(entry.at("vmSize"), reason)
        zone = None
        if entry.has("zone"):
            zone = zone_label(region, zone_number(entry.get("zone"), entry.at("zone")))
        priority = as_enum(Priority, entry.get("priority"), entry.at("priority"))
        key = (vm.name.lower(), zone, priority.value)
        if key in capacity:
            raise ValidationError(at, f"a second limit for {vm.name} {zone or 'no zone'} "
                                      f"{priority.value}")
        capacity[key] = entry.integer("nodes", 0)
    return capacity


def _quotas(fields: Fields, catalog: Catalog) -> tuple[int | None, int | None, dict[str, int]]:
    if not fields.has("quotas"):
        return None, None, {}
    quotas = Fields(fields.get("quotas"), fields.at("quotas"),
                    optional=("regionalCores", "spotCores", "familyCores"))
    regional = quotas.integer("regionalCores", 0) if quotas.has("regionalCores") else None
    spot = quotas.integer("spotCores", 0) if quotas.has("spotCores") else None
    families = {size.family.lower(): size.family for size in catalog.sizes.entries}
    family: dict[str, int] = {}
    if quotas.has("familyCores"):
        at = quotas.at("familyCores")
        for name, cores in as_object(quotas.get("familyCores"), at).items():
            where = child(at, name)
            if name.lower() not in families:
                raise ValidationError(where, f"no VM size of the catalog is in family {name!r}")
            family[families[name.lower()]] = as_int(cores, where)
    return regional, spot, family
