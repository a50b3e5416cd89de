"""ARM agent-pool JSON -> ``AgentPool``, and the rules for which pools may be managed.

Callers: ``cloud.aks.AksProvider`` (on the JSON of the SDK's models, ``as_dict()``) and tests.
Works on plain JSON (ARM's camelCase names, ``properties`` nested) so that it needs no Azure
SDK. Pool sizes: ``count``; ``maxCount`` / ``minCount`` only exist on pools AKS autoscales, so
bounds for the manually scaled pools we manage come from config or the pool's tags (see
``AksSettings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.cloud.aks_settings import (
    AKS_POOL_NODE_LIMIT,
    MAX_COUNT_TAG,
    MIN_COUNT_TAG,
    AksSettings,
)
from autoscaler.cloud.provider import ManagedPoolError, Refused
from autoscaler.model.labels import labels_of
from autoscaler.model.node import Taint
from autoscaler.model.pod import TaintEffect
from autoscaler.model.pool import AgentPool, PoolMode, Priority

_EFFECTS = {effect.value.lower(): effect for effect in TaintEffect}


def properties(body: Mapping[str, Any]) -> Mapping[str, Any]:
    props = body.get("properties")
    return props if isinstance(props, Mapping) else {}


def pool_tags(body: Mapping[str, Any]) -> dict[str, str]:
    tags = properties(body).get("tags") or {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {}


def parse_taint(text: str, where: str) -> Taint:
    """``key=value:Effect`` or ``key:Effect``, AKS's ``nodeTaints`` spelling."""
    spec, sep, effect_text = text.rpartition(":")
    effect = _EFFECTS.get(effect_text.strip().lower())
    if not sep or effect is None or not spec:
        raise ManagedPoolError(where, f"taint {text!r} is not key[=value]:Effect")
    key, _, value = spec.partition("=")
    return Taint(key=key.strip(), value=value.strip(), effect=effect)


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _tag_count(tags: Mapping[str, str], key: str, where: str) -> int | None:
    text = tags.get(key)
    if text is None:
        return None
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise ManagedPoolError(f"{where}.tags.{key}", f"expected a count >= 0, got {text!r}")
    return count


def pool_from_arm(body: Mapping[str, Any], settings: AksSettings) -> AgentPool:
    """The model of one agent pool as ARM returns it (``GET .../agentPools/{name}``)."""
    name = str(body.get("name", ""))
    where = f"agentPools[{name}]"
    props = properties(body)
    tags = pool_tags(body)
    mode = PoolMode.SYSTEM if str(props.get("mode", "")).lower() == "system" else PoolMode.USER
    count = _int(props.get("count"), 0)
    autoscaling = bool(props.get("enableAutoScaling"))
    max_count = settings.max_counts.get(name)
    if max_count is None:
        max_count = _tag_count(tags, MAX_COUNT_TAG, where)
    if max_count is None:
        max_count = _int(props.get("maxCount"), AKS_POOL_NODE_LIMIT)
    min_count = _tag_count(tags, MIN_COUNT_TAG, where)
    if min_count is None:
        min_count = _int(props.get("minCount"), 0)
    if mode is PoolMode.SYSTEM:
        min_count = max(min_count, 1)
    priority = (
        Priority.SPOT if str(props.get("scaleSetPriority", "")).lower() == "spot"
        else Priority.REGULAR
    )
    labels = props.get("nodeLabels") or {}
    version = props.get("currentOrchestratorVersion") or props.get("orchestratorVersion") or ""
    return AgentPool(
        name=name,
        vm_size=str(props.get("vmSize", "")),
        count=count,
        min_count=min_count,
        max_count=max_count,
        zones=tuple(sorted(str(z) for z in props.get("availabilityZones") or ())),
        priority=priority,
        mode=mode,
        labels=labels_of({str(k): str(v) for k, v in labels.items()}),
        taints=tuple(parse_taint(str(t), where) for t in props.get("nodeTaints") or ()),
        max_pods=_int(props.get("maxPods"), 30),
        os_type=str(props.get("osType") or "Linux"),
        enable_autoscaling=autoscaling,
        os_disk_size_gb=_int(props.get("osDiskSizeGB"), 128),
        # A pool that does not say keeps the model's default version.
        **({"kubernetes_version": str(version)} if version else {}),
    )


def managed_pools(
    bodies: list[Mapping[str, Any]], settings: AksSettings
) -> tuple[AgentPool, ...]:
    """The pools the settings select, by name; refuses a selected pool AKS autoscales."""
    pools: list[AgentPool] = []
    for body in bodies:
        name = str(body.get("name", ""))
        if not settings.selects(name, pool_tags(body)):
            continue
        pool = pool_from_arm(body, settings)
        if pool.enable_autoscaling:
            raise ManagedPoolError(
                f"agentPools[{name}]",
                "has enableAutoScaling=true: AKS's cluster autoscaler owns it and refuses manual "
                "scaling; disable it on the pool or stop selecting the pool",
            )
        pools.append(pool)
    return tuple(sorted(pools, key=lambda p: p.name))


def check_change(body: Mapping[str, Any], settings: AksSettings, count: int) -> None:
    """Refuses (``Refused``) to set ``count`` on a pool we may not change that way."""
    name = str(body.get("name", ""))
    props = properties(body)
    if not settings.selects(name, pool_tags(body)):
        raise Refused("NotManaged", f"agent pool {name!r} is not managed by surge")
    if props.get("enableAutoScaling"):
        raise Refused(
            "AutoScalingEnabled",
            f"agent pool {name!r} has enableAutoScaling=true; AKS refuses manual scaling",
        )
    if str(props.get("mode", "")).lower() == "system" and count < 1:
        raise Refused(
            "SystemPoolMinimum",
            f"agent pool {name!r} is a System pool; it keeps at least 1 node (asked {count})",
        )
    if count < 0:
        raise Refused("InvalidCount", f"agent pool {name!r}: count {count} is negative")
