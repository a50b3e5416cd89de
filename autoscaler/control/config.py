"""The controller's configuration: one YAML file, then the environment, then command-line flags.

Callers: ``surge run`` (``control.cli``) calls ``load_config`` and hands the ``Config`` to
``control.serve``; tests call ``parse_config`` on dicts. The file format is documented in
docs/configuration.md, with a complete example in deploy/config.example.yaml; the YAML reading
and the value readers live in ``control.config_fields``.

Everything is validated before anything starts: each error is a ``ValidationError`` naming the
field path (``$.pools[1].maxCount``, or the environment variable / flag that set the value) and
the reason, with the file's line when the value came from the file; the CLI turns it into exit
code 2. Precedence, highest first: flags, environment variables, the file, defaults. Azure
coordinates go through ``cloud.aks_settings`` (after the environment is merged over the file's
``azure`` section, so that precedence is the same for every key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from autoscaler.cloud.aks_settings import AKS_POOL_NODE_LIMIT, AksSettings, aks_settings
from autoscaler.control.config_fields import (
    DNS_LABEL,
    choice,
    dns_name,
    env_bool,
    env_choice,
    number,
    provisioning_timers,
    read_yaml,
    scale_down_of,
    seconds,
    subsection,
    with_line,
)
from autoscaler.control.loop import LoopConfig
from autoscaler.control.snapshot_fields import Fields, as_list, as_text
from autoscaler.control.snapshot_policy import loop_policy, read_limits
from autoscaler.kube.lease import LeaseConfig
from autoscaler.model.errors import ValidationError

TOP_FIELDS = (
    "region", "azure", "pools", "priorityTiers", "limits", "maxNewNodesPerLoop", "timers",
    "batching", "scaleDown", "dryRun", "kubernetes", "leaderElection", "operationStore",
    "events", "metrics", "logging",
)
AZURE_ENV = {  # azure key -> the environment variable that overrides it
    "subscriptionId": "AZURE_SUBSCRIPTION_ID",
    "resourceGroup": "SURGE_RESOURCE_GROUP",
    "clusterName": "SURGE_CLUSTER_NAME",
    "armEndpoint": "SURGE_ARM_ENDPOINT",
    "authorityHost": "AZURE_AUTHORITY_HOST",
    "managedTag": "SURGE_MANAGED_TAG",
    "caBundle": "SURGE_CA_BUNDLE",
}
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
_POOL_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
_REGION = re.compile(r"[a-z][a-z0-9]*")


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """When the runner starts a pass: a batch of cluster changes closes after ``idle`` seconds
    without a change or ``max`` seconds after it opened; with no change, every ``tick``."""

    idle: float = 1.0
    max: float = 10.0
    tick: float = 10.0


@dataclass(frozen=True, slots=True)
class EventConfig:
    """Kubernetes Events on pods: the same (pod, reason, message) is not repeated within
    ``dedup_window`` seconds, and at most ``burst`` events go out at once, refilled at
    ``per_second``."""

    dedup_window: float = 600.0
    burst: int = 50
    per_second: float = 5.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The /metrics, /healthz and /readyz server; ``port`` 0 picks a free port (tests).
    /healthz fails after ``stuck_after`` tick intervals without a completed pass."""

    address: str = "0.0.0.0"
    port: int = 8080
    enabled: bool = True
    stuck_after: int = 6


@dataclass(frozen=True, slots=True)
class Config:
    loop: LoopConfig
    azure: AksSettings
    min_counts: Mapping[str, int] = field(default_factory=dict)  # pool -> minCount from the file
    batch: BatchConfig = BatchConfig()
    leader_election: bool = True
    lease: LeaseConfig = LeaseConfig()
    namespace: str | None = None  # None: the pod's own namespace (see control.serve)
    status_configmap: str = "surge-status"
    schedulers: tuple[str, ...] = ("default-scheduler",)
    sync_timeout: float = 120.0
    watch_volumes: bool = True  # PersistentVolumeClaims and PersistentVolumes: volume zones
    store: str = "configmap"  # "configmap" | "file"
    store_path: str = ""
    events: EventConfig = EventConfig()
    metrics: MetricsConfig = MetricsConfig()
    log_format: str = "json"
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line flags; None leaves the value to the environment and the file."""

    dry_run: bool | None = None
    log_format: str | None = None


# --- reading ----------------------------------------------------------------------------------


def load_config(
    path: str, environ: Mapping[str, str] | None = None, flags: Overrides | None = None
) -> Config:
    """The configuration in file ``path``, overridden by ``environ`` and ``flags``."""
    # An empty file (or one of comments only) is allowed: every key takes its default, and the
    # required ones (region, the azure coordinates) may all come from the environment.
    value, lines = read_yaml(path, allow_empty=True)
    try:
        return parse_config(value, environ or {}, flags or Overrides())
    except ValidationError as err:
        located = with_line(err, path, lines)
        if located is err:
            raise
        raise located from None


# --- the document -----------------------------------------------------------------------------


def parse_config(
    value: object, environ: Mapping[str, str], flags: Overrides | None = None
) -> Config:
    """The configuration in a parsed document, overridden by ``environ`` and ``flags``."""
    flags = flags or Overrides()
    doc = Fields({} if value is None else value, "$", optional=TOP_FIELDS)
    region = environ.get("SURGE_REGION", "").strip()
    if region:
        if _REGION.fullmatch(region) is None:
            raise ValidationError("SURGE_REGION", f"invalid Azure region {region!r}")
    else:
        if not doc.has("region"):
            raise ValidationError("$.region", "required (or set SURGE_REGION), e.g. 'eastus'")
        region = as_text(doc.get("region"), doc.at("region")).strip()
        if _REGION.fullmatch(region) is None:
            raise ValidationError(doc.at("region"), f"invalid Azure region {region!r}")
    pools, min_counts, max_counts = _pools(doc)
    azure = _azure(doc, environ, pools, max_counts)
    timers = subsection(doc, "timers", ("tick", "maxNodeProvisionTime", "poolRefreshInterval"))
    batching = subsection(doc, "batching", ("idle", "max"))
    batch = BatchConfig(seconds(batching, "idle", 1.0, positive=True),
                        seconds(batching, "max", 10.0, positive=True),
                        seconds(timers, "tick", 10.0, positive=True))
    if batch.max < batch.idle:
        raise ValidationError(batching.at("max"), f"{batch.max:g}s is less than idle "
                              f"{batch.idle:g}s")
    dry_run = doc.boolean("dryRun", False)
    if environ.get("SURGE_DRY_RUN", "").strip():
        dry_run = env_bool(environ, "SURGE_DRY_RUN")
    if flags.dry_run is not None:
        dry_run = flags.dry_run
    provision, refresh = provisioning_timers(timers)
    loop = LoopConfig(
        region=region,
        managed_pools=pools,
        limits=read_limits(doc),
        policy=loop_policy(doc, pools),
        max_node_provision_time=provision,
        pool_refresh_interval=refresh,
        dry_run=dry_run,
        scale_down=scale_down_of(doc),
    )
    kube = subsection(doc, "kubernetes", ("namespace", "schedulerNames", "statusConfigMap",
                                        "syncTimeout", "watchVolumes"))
    namespace = _namespace(kube, environ)
    schedulers = tuple(as_text(v, at).strip() for v, at in kube.items("schedulerNames"))
    if kube.has("schedulerNames") and not schedulers:
        raise ValidationError(kube.at("schedulerNames"), "must name at least one scheduler")
    status_name = dns_name(kube, "statusConfigMap", "surge-status")
    election, lease = _lease(doc, environ, namespace)
    store, store_path = _store(doc)
    logging = subsection(doc, "logging", ("format", "level"))
    log_format = choice(logging, "format", LOG_FORMATS, "json")
    if environ.get("SURGE_LOG_FORMAT", "").strip():
        log_format = env_choice(environ, "SURGE_LOG_FORMAT", LOG_FORMATS)
    if flags.log_format is not None:
        log_format = flags.log_format
    log_level = choice(logging, "level", LOG_LEVELS, "info")
    if environ.get("SURGE_LOG_LEVEL", "").strip():
        log_level = env_choice(environ, "SURGE_LOG_LEVEL", LOG_LEVELS)
    return Config(
        loop=loop,
        azure=azure,
        min_counts=min_counts,
        batch=batch,
        leader_election=election,
        lease=lease,
        namespace=namespace,
        status_configmap=status_name,
        schedulers=schedulers or ("default-scheduler",),
        sync_timeout=seconds(kube, "syncTimeout", 120.0, positive=True),
        watch_volumes=kube.boolean("watchVolumes", True),
        store=store,
        store_path=store_path,
        events=_events(doc),
        metrics=_metrics(doc, environ),
        log_format=log_format,
        log_level=log_level,
    )


def _pools(doc: Fields) -> tuple[tuple[str, ...] | None, dict[str, int], dict[str, int]]:
    """Managed pools by name (None: selected by tag in Azure) with their min and max counts."""
    if not doc.has("pools"):
        return None, {}, {}
    entries = as_list(doc.get("pools"), doc.at("pools"))
    if not entries:
        raise ValidationError(doc.at("pools"), "must list at least one pool (or be left out "
                              "to select pools by tag)")
    names: list[str] = []
    mins: dict[str, int] = {}
    maxes: dict[str, int] = {}
    for item, at in entries:
        entry = Fields(item, at, required=("name",), optional=("minCount", "maxCount"))
        name = entry.text("name")
        if _POOL_NAME.fullmatch(name) is None:
            rule = "1-12 lowercase letters and digits, starting with a letter"
            raise ValidationError(entry.at("name"), f"invalid pool name {name!r} ({rule})")
        if name in names:
            raise ValidationError(entry.at("name"), f"duplicate pool {name!r}")
        names.append(name)
        low = entry.integer("minCount", 0, 0, AKS_POOL_NODE_LIMIT)
        high = entry.integer("maxCount", AKS_POOL_NODE_LIMIT, 0, AKS_POOL_NODE_LIMIT)
        if high < low:
            raise ValidationError(entry.at("maxCount"), f"{high} is less than minCount {low}")
        if entry.has("minCount"):
            mins[name] = low
        if entry.has("maxCount"):
            maxes[name] = high
    return tuple(names), mins, maxes


def _azure(
    doc: Fields, environ: Mapping[str, str], pools: tuple[str, ...] | None,
    max_counts: dict[str, int],
) -> AksSettings:
    section = subsection(doc, "azure", tuple(AZURE_ENV))
    merged: dict[str, object] = {}
    for key, var in AZURE_ENV.items():
        value = environ.get(var, "").strip()
        if value:
            merged[key] = value
        elif section.has(key):
            merged[key] = as_text(section.get(key), section.at(key)).strip()
    ca_bundle = str(merged.pop("caBundle", ""))
    if pools is not None:
        merged["managedPools"] = list(pools)
    merged["maxCounts"] = max_counts
    # The environment is already merged in; SURGE_MANAGED_POOLS applies when no pools are listed.
    rest = {k: v for k, v in environ.items() if k == "SURGE_MANAGED_POOLS"}
    settings = aks_settings(merged, rest, section.path)
    return replace(settings, connection_verify=ca_bundle) if ca_bundle else settings


def _namespace(kube: Fields, environ: Mapping[str, str]) -> str | None:
    text = environ.get("SURGE_NAMESPACE", "").strip()
    where = "SURGE_NAMESPACE"
    if not text and kube.has("namespace"):
        text, where = as_text(kube.get("namespace"), kube.at("namespace")).strip(), kube.at(
            "namespace")
    if not text:
        text, where = environ.get("POD_NAMESPACE", "").strip(), "POD_NAMESPACE"
    if text and (len(text) > 63 or DNS_LABEL.fullmatch(text) is None):
        raise ValidationError(where, f"invalid namespace {text!r}")
    return text or None


def _lease(
    doc: Fields, environ: Mapping[str, str], namespace: str | None
) -> tuple[bool, LeaseConfig]:
    section = subsection(doc, "leaderElection", (
        "enabled", "leaseName", "leaseDuration", "renewDeadline", "retryPeriod"))
    base = LeaseConfig()
    lease = LeaseConfig(
        name=dns_name(section, "leaseName", base.name),
        namespace=namespace or base.namespace,
        identity=environ.get("POD_NAME", "").strip(),
        lease_duration=seconds(section, "leaseDuration", base.lease_duration, positive=True),
        renew_deadline=seconds(section, "renewDeadline", base.renew_deadline, positive=True),
        retry_period=seconds(section, "retryPeriod", base.retry_period, positive=True),
    )
    # client-go's rule: the lease outlives the deadline, which outlives a retry (with jitter),
    # so a leader gives up before anyone may take over.
    if lease.renew_deadline >= lease.lease_duration:
        raise ValidationError(section.at("renewDeadline"), f"{lease.renew_deadline:g}s must be "
                              f"less than leaseDuration {lease.lease_duration:g}s")
    if lease.retry_period * 1.2 >= lease.renew_deadline:
        raise ValidationError(section.at("retryPeriod"), f"{lease.retry_period:g}s must be less "
                              f"than renewDeadline / 1.2 ({lease.renew_deadline / 1.2:g}s)")
    return section.boolean("enabled", True), lease


def _store(doc: Fields) -> tuple[str, str]:
    section = subsection(doc, "operationStore", ("kind", "path"))
    kind = choice(section, "kind", ("configmap", "file"), "configmap")
    path = section.text("path").strip()
    if kind == "file" and not path:
        raise ValidationError(section.at("path"), "required when kind is file")
    if kind == "configmap" and path:
        raise ValidationError(section.at("path"), "only for kind file")
    return kind, path


def _events(doc: Fields) -> EventConfig:
    section = subsection(doc, "events", ("dedupWindow", "burst", "perSecond"))
    base = EventConfig()
    per_second = base.per_second
    if section.has("perSecond"):
        per_second = number(section.get("perSecond"), section.at("perSecond"), lo=0.001)
    return EventConfig(
        dedup_window=seconds(section, "dedupWindow", base.dedup_window, positive=True),
        burst=section.integer("burst", base.burst, 1, 10_000),
        per_second=per_second,
    )


def _metrics(doc: Fields, environ: Mapping[str, str]) -> MetricsConfig:
    section = subsection(doc, "metrics", ("enabled", "address", "port", "stuckAfterIntervals"))
    base = MetricsConfig()
    port = section.integer("port", base.port, 0, 65535)
    if environ.get("SURGE_METRICS_PORT", "").strip():
        text = environ["SURGE_METRICS_PORT"].strip()
        if not text.isdigit() or int(text) > 65535:
            raise ValidationError("SURGE_METRICS_PORT", f"expected a port number, got {text!r}")
        port = int(text)
    return MetricsConfig(
        address=section.text("address", base.address).strip(),
        port=port,
        enabled=section.boolean("enabled", base.enabled),
        stuck_after=section.integer("stuckAfterIntervals", base.stuck_after, 2, 1000),
    )
