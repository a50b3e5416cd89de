"""The zones a pod's bound PersistentVolumes allow: claims, volumes and pods, read off raw JSON.

Callers: ``kube.cache.ClusterCache`` (``watch_volumes``) indexes each pod's claims with
``pod_claims`` in its pods thread, keeps claims as ``claim_volume`` and PersistentVolumes as
``volume_zones`` in their own reflectors' tables, and asks a ``ZoneIndex`` for each pod's
``Pod.volume_zones`` when it assembles an ``Observation``; ``control.capture`` (``surge
snapshot``) writes the same zones as a snapshot's ``persistentVolumeClaims``. Pure: dicts in,
values out, no ``kubernetes`` import, no clock.

The rules are kube-scheduler's VolumeZone / VolumeBinding filters for *bound* claims: a pod may
only run in a zone every one of its bound volumes allows, so its zones are the intersection
over its claims. A volume's zones come from its required node affinity: the terms are OR-ed (a
union), and a term without a zone requirement admits every zone (the volume then restricts
nothing). A claim not bound yet (``WaitForFirstConsumer``) is provisioned where the pod lands,
and a claim or volume not in view is not known to restrict: both add no restriction. A generic
ephemeral volume is a claim the ephemeral-volume controller names ``<pod>-<volume>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from autoscaler.model.labels import ZONE_LABEL

# The zone keys a volume's node affinity may use: the well-known label, its deprecated beta
# form (volumes provisioned by older in-tree plugins) and the Azure Disk CSI driver's own
# topology key, which is what AKS writes on zonal disks (its values are the same
# ``<region>-<n>`` names as the node zone label).
ZONE_KEYS = frozenset((ZONE_LABEL, "failure-domain.beta.kubernetes.io/zone",
                       "topology.disk.csi.azure.com/zone"))

Zones = tuple[str, ...]


def pod_claims(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``namespace/name`` keys of the claims ``obj`` (a pod) mounts, in volume order.

    On the sync's hot path (every listed pod): plain ``get``s, and most pods, whose only
    volume is the service-account token, cost one loop step."""
    spec = obj.get("spec") or {}
    volumes = spec.get("volumes")
    if not volumes:
        return ()
    claims: list[str] = []
    meta = obj.get("metadata") or {}
    for volume in volumes:
        claim = volume.get("persistentVolumeClaim")
        if claim is not None:
            name = claim.get("claimName")
        elif volume.get("ephemeral") is not None:
            name = f"{meta.get('name')}-{volume.get('name')}"
        else:
            continue
        if name:
            claims.append(f"{meta.get('namespace') or 'default'}/{name}")
    return tuple(claims)


def claim_volume(obj: Mapping[str, Any]) -> str | None:
    """The PersistentVolume a claim is bound to; None while it is not bound (the cache then
    leaves it out: an unbound claim restricts nothing)."""
    return (obj.get("spec") or {}).get("volumeName") or None


def _term_zones(term: Mapping[str, Any]) -> frozenset[str] | None:
    """The zones one node selector term admits; None: any (no zone requirement in it)."""
    zones: frozenset[str] | None = None
    for requirement in term.get("matchExpressions") or ():
        if requirement.get("key") not in ZONE_KEYS or requirement.get("operator") != "In":
            continue  # NotIn / Exists on a zone say nothing about which zones remain
        values = frozenset(requirement.get("values") or ())
        if "" in values:
            continue  # the Azure Disk CSI value of a non-zonal disk: any zone
        zones = values if zones is None else zones & values  # a term's requirements AND
    return zones


def volume_zones(obj: Mapping[str, Any]) -> Zones | None:
    """The zones a PersistentVolume may be used from, sorted; None when it restricts none
    (the cache then leaves it out of its table)."""
    required = (((obj.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
    terms = required.get("nodeSelectorTerms") or ()
    if not terms:
        return None
    union: set[str] = set()
    for term in terms:
        zones = _term_zones(term or {})
        if zones is None:
            return None  # the terms are OR-ed: one that admits any zone admits them all
        union |= zones
    return tuple(sorted(union))


def intersect(zone_sets: Iterable[Zones | None]) -> Zones | None:
    """Zones every set admits, in the first restricting set's order; None when none restricts.
    An empty tuple means no zone at all: the pod cannot run anywhere."""
    out: Zones | None = None
    for zones in zone_sets:
        if zones is not None:
            out = zones if out is None else tuple(z for z in out if z in zones)
    return out


class ZoneIndex:
    """Claim key -> the zones its bound volume allows, memoised until the claims or volumes
    change. Not thread-safe: the cache calls it under its lock.

    ``claims`` is the claims reflector's table (claim key -> volume name, bound claims only)
    and ``volumes`` the volumes reflector's (volume name -> zones, restricting volumes only).
    ``version`` is anything that changes whenever either table does (their change counters):
    a different one drops the memo, so a burst of pod changes reuses it and a claim or volume
    event costs one look-up per claim a pod mounts, on the next observe."""

    def __init__(self) -> None:
        self._version: object = None
        self._memo: dict[str, Zones | None] = {}

    def zones_of(self, claim_keys: tuple[str, ...], claims: Mapping[str, str],
                 volumes: Mapping[str, Zones], version: object) -> Zones | None:
        if version != self._version:
            self._version = version
            self._memo = {}
        memo = self._memo
        found: list[Zones | None] = []
        for key in claim_keys:
            if key in memo:
                found.append(memo[key])
                continue
            name = claims.get(key)
            zones = memo[key] = None if name is None else volumes.get(name)
            found.append(zones)
        return intersect(found)
