"""Where the AKS adapter points and which pools it manages: settings from config or environment.

Callers: the in-cluster runner and the CLI build ``AksSettings`` with ``aks_settings(config,
environ)`` and hand them to ``cloud.aks.AksProvider``; tests and the twin build them directly.
Config values win over environment variables; a required value missing from both is a
``ValidationError`` that names the config field and the variable, so the message says how to fix
it. No Azure SDK here: this module is imported without the SDKs.

Environment variables: ``AZURE_SUBSCRIPTION_ID``, ``SURGE_RESOURCE_GROUP``,
``SURGE_CLUSTER_NAME`` (required unless in config); ``SURGE_ARM_ENDPOINT`` (default the public
cloud), ``AZURE_AUTHORITY_HOST`` (read by azure-identity too), ``SURGE_MANAGED_POOLS``
(comma-separated names), ``SURGE_MANAGED_TAG`` (``key=value``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from autoscaler.model.errors import ValidationError

PUBLIC_ARM = "https://management.azure.com"
DEFAULT_MANAGED_TAG = ("surge.io/managed", "true")
MAX_COUNT_TAG = "surge.io/max-count"
MIN_COUNT_TAG = "surge.io/min-count"
# AKS caps a Virtual Machine Scale Sets pool at 1000 nodes; a manually scaled pool has no
# maxCount of its own, so this is the ceiling unless config or a tag says less.
AKS_POOL_NODE_LIMIT = 1000

_REQUIRED = (
    ("subscription_id", "subscriptionId", "AZURE_SUBSCRIPTION_ID"),
    ("resource_group", "resourceGroup", "SURGE_RESOURCE_GROUP"),
    ("cluster_name", "clusterName", "SURGE_CLUSTER_NAME"),
)


@dataclass(frozen=True, slots=True)
class AksSettings:
    """One cluster's coordinates, endpoints and managed-pool selection.

    ``managed_pools`` names pools to manage; ``managed_tag`` selects pools carrying that tag
    (both given: a pool qualifies by either). Neither given: pools tagged
    ``surge.io/managed=true``. ``max_counts`` caps pools by name; otherwise the
    ``surge.io/max-count`` tag, the pool's ``maxCount``, then ``AKS_POOL_NODE_LIMIT``."""

    subscription_id: str
    resource_group: str
    cluster_name: str
    arm_endpoint: str = PUBLIC_ARM
    authority_host: str | None = None  # None: azure-identity's default / AZURE_AUTHORITY_HOST
    credential_scope: str | None = None  # None: "<arm_endpoint>/.default"
    managed_pools: tuple[str, ...] | None = None
    managed_tag: tuple[str, str] | None = None
    max_counts: Mapping[str, int] = field(default_factory=dict)
    connection_verify: str | bool = True  # CA bundle path (the twin) or True for the system's

    @property
    def scope(self) -> str:
        return self.credential_scope or f"{self.arm_endpoint.rstrip('/')}/.default"

    def selects(self, name: str, tags: Mapping[str, str]) -> bool:
        """Whether a pool called ``name`` with these tags is one we manage."""
        by_name = self.managed_pools is not None and name in self.managed_pools
        tag = self.managed_tag
        if tag is None and self.managed_pools is None:
            tag = DEFAULT_MANAGED_TAG
        by_tag = tag is not None and tags.get(tag[0]) == tag[1]
        return by_name or by_tag


def parse_tag(text: str, path: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValidationError(path, f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def aks_settings(
    config: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    path: str = "$.azure",
) -> AksSettings:
    """Settings from a config mapping (camelCase keys, under ``path``) and the environment."""
    config = config or {}
    environ = environ or {}
    values: dict[str, str] = {}
    for attr, key, var in _REQUIRED:
        value = config.get(key) or environ.get(var, "").strip()
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"{path}.{key}", f"missing: set it in the config or in the environment as {var}"
            )
        values[attr] = value
    endpoint = _text(config, "armEndpoint", path) or environ.get("SURGE_ARM_ENDPOINT", "")
    authority = _text(config, "authorityHost", path) or environ.get("AZURE_AUTHORITY_HOST", "")
    pools = config.get("managedPools")
    if pools is None and environ.get("SURGE_MANAGED_POOLS", "").strip():
        pools = [p.strip() for p in environ["SURGE_MANAGED_POOLS"].split(",") if p.strip()]
    if pools is not None and (
        not isinstance(pools, list | tuple) or not all(isinstance(p, str) and p for p in pools)
    ):
        raise ValidationError(f"{path}.managedPools", "expected a list of pool names")
    tag_text = _text(config, "managedTag", path) or environ.get("SURGE_MANAGED_TAG", "")
    max_counts = config.get("maxCounts", {})
    if not isinstance(max_counts, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in max_counts.values()
    ):
        raise ValidationError(f"{path}.maxCounts", "expected pool name -> count >= 0")
    return AksSettings(
        arm_endpoint=endpoint.rstrip("/") or PUBLIC_ARM,
        authority_host=authority or None,
        managed_pools=tuple(pools) if pools is not None else None,
        managed_tag=parse_tag(tag_text, f"{path}.managedTag") if tag_text else None,
        max_counts=dict(max_counts),
        **values,
    )


def _text(config: Mapping[str, object], key: str, path: str) -> str:
    value = config.get(key, "")
    if not isinstance(value, str):
        raise ValidationError(f"{path}.{key}", "expected a string")
    return value.strip()
