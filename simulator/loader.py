"""Scenario files (YAML) -> ``Scenario``; the built-in default scenario; trace-only scenarios.

Callers: ``simulator.cli`` (``surge simulate [SCENARIO | --trace FILE] [--config FILE]``),
``simulator.workloads`` re-exports ``load_scenario`` and ``default_scenario``; tests. Strict:
unknown keys, wrong types, negative numbers and unknown kinds raise ``ValidationError`` naming
the field path and the file's line; syntax errors in YAML or in a referenced CSV name the file
and line. Infrastructure sections are read by ``simulator.settings``; the format is
docs/scenarios.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path

from autoscaler.control.snapshot_budgets import PDB_FIELDS, pdb
from autoscaler.control.snapshot_fields import (
    INT32_MAX,
    Fields,
    as_object,
    as_text,
    child,
    qualified_name,
)
from autoscaler.control.snapshot_pods import toleration
from autoscaler.model.aks import Catalog, load_catalog
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import LabelSelector, labels_of
from autoscaler.model.pod import Toleration
from autoscaler.model.pool import AgentPool
from autoscaler.model.quantity import quantity_units
from simulator.curves import parse_curve
from simulator.scenario import (
    DEFAULT_START,
    Batch,
    Deployment,
    PodTemplate,
    Scenario,
    TraceReplay,
    Workload,
)
from simulator.settings import parse_autoscaler, parse_cloud, parse_pools
from simulator.traces import load_azure_llm, load_openb, trace_kind
from simulator.yamlsource import duration, instant, kind_of, number, read_yaml, resolve

TOP_FIELDS = (
    "description", "start", "region", "seed", "sampleEvery", "vmSizes", "autoscaler", "cloud",
    "workloads", "traces", "podDisruptionBudgets",
)
POD_FIELDS = (
    "gpu", "tolerateSpot", "zoneSpread", "hostnameSpread", "nodeSelector", "tolerations",
    "labels", "priority",
)
_NAMESPACE_RULE = "lowercase letters, digits and '-', at most 63, starting and ending alphanumeric"
DEFAULT_SCENARIO = "viral-launch.yaml"


def load_scenario(path: str) -> Scenario:
    """The scenario in the YAML file ``path``; data files it names are relative to its folder."""
    document = read_yaml(path)
    try:
        return parse_scenario(document.value, Path(path).resolve().parent)
    except ValidationError as err:
        raise document.locate(err) from None


def default_scenario() -> Scenario:
    """The built-in "viral launch" scenario (``simulator/scenarios/viral-launch.yaml``)."""
    source = resources.files("simulator").joinpath("scenarios", DEFAULT_SCENARIO)
    document = read_yaml(DEFAULT_SCENARIO, source.read_text("utf-8"))
    try:
        return parse_scenario(document.value, Path("."))
    except ValidationError as err:
        raise document.locate(err) from None


def apply_autoscaler_file(scenario: Scenario, path: str) -> Scenario:
    """``scenario`` with its autoscaler settings replaced by the YAML file ``path``, whose top
    level has the fields of a scenario's ``autoscaler`` section."""
    document = read_yaml(path)
    try:
        settings = parse_autoscaler(document.value, "$", scenario.region, scenario.pools)
    except ValidationError as err:
        raise document.locate(err) from None
    return replace(scenario, loop=settings.loop, loop_interval_s=settings.loop_interval_s)


def parse_scenario(value: object, base_dir: Path) -> Scenario:
    """A decoded scenario document; ``base_dir`` resolves relative data-file paths."""
    top = Fields(value, "$", required=("name", "duration", "pools"), optional=TOP_FIELDS)
    region = top.text("region", "eastus").lower()
    overrides: dict[str, Mapping[str, object]] | None = None
    if top.has("vmSizes"):
        overrides = {}
        for size, entry in as_object(top.get("vmSizes"), "$.vmSizes").items():
            at = child("$.vmSizes", str(size))
            overrides[as_text(size, at)] = as_object(entry, at)
    catalog = load_catalog(overrides, "$.vmSizes")
    pools = parse_pools(top.get("pools"), top.at("pools"), catalog)
    settings = parse_autoscaler(top.get("autoscaler"), top.at("autoscaler"), region, pools)
    run_for = duration(top.get("duration"), top.at("duration"), positive=True)
    workloads = [
        _workload(item, at, base_dir) for item, at in top.items("workloads")
    ]
    workloads += [_trace(item, at, base_dir) for item, at in top.items("traces")]
    _unique_names(top, workloads)
    pdbs = tuple(_pdb(item, at, workloads) for item, at in top.items("podDisruptionBudgets"))
    return Scenario(
        name=top.text("name"),
        description=top.text("description", "", nonempty=False).strip(),
        start=instant(top.get("start"), top.at("start")) if top.has("start") else DEFAULT_START,
        duration=run_for,
        region=region,
        seed=top.integer("seed", 0),
        pools=pools,
        workloads=tuple(workloads),
        vm_overrides=overrides or {},
        loop=settings.loop,
        loop_interval_s=settings.loop_interval_s,
        sample_every_s=_seconds(top, "sampleEvery", 60.0),
        cloud=parse_cloud(top.get("cloud"), top.at("cloud"), region, catalog),
        pdbs=pdbs,
    )


def _pdb(value: object, path: str, workloads: list[Workload]) -> PodDisruptionBudget:
    """A budget over a workload's pods (``workload``: its namespace and pod labels) or over a
    label ``selector``."""
    fields = Fields(value, path, required=("name",), optional=(*PDB_FIELDS, "workload"))
    if fields.has("workload") == fields.has("selector"):
        raise ValidationError(fields.at("workload"), "set exactly one of workload and selector")
    if not fields.has("workload"):
        return pdb(fields)
    name = fields.text("workload")
    found = next((w for w in workloads if w.name == name), None)
    if found is None:
        raise ValidationError(fields.at("workload"), f"unknown workload {name!r}")
    if fields.has("namespace"):
        raise ValidationError(fields.at("namespace"), "comes from the workload; leave it out")
    if isinstance(found, TraceReplay):
        labels = found.pods[0].template.labels if found.pods else (("app", name),)
    else:
        labels = found.template.labels
    selector = LabelSelector(labels)
    return replace(pdb(fields, selector), namespace=found.namespace)


def _seconds(fields: Fields, key: str, default: float) -> float:
    if not fields.has(key):
        return default
    return duration(fields.get(key), fields.at(key), positive=True)


def _unique_names(top: Fields, workloads: list[Workload]) -> None:
    paths = [at for _, at in top.items("workloads")] + [at for _, at in top.items("traces")]
    first: dict[str, str] = {}
    for workload, at in zip(workloads, paths, strict=True):
        if workload.name in first:
            reason = f"duplicate workload name {workload.name!r} (first at {first[workload.name]})"
            raise ValidationError(child(at, "name"), reason)
        first[workload.name] = at


# --- workloads ----------------------------------------------------------------------------------

DEPLOYMENT_FIELDS = ("namespace", "sampleEvery", "noise")
BATCH_FIELDS = ("namespace", "at", "every", "waves")


def _workload(value: object, path: str, base_dir: Path) -> Workload:
    kind_name = kind_of(value, path, ("deployment", "batch"), "workload")
    if kind_name == "deployment":
        fields = Fields(value, path, required=("kind", "name", "pod", "replicas"),
                        optional=DEPLOYMENT_FIELDS)
        name, namespace = _name(fields), _namespace(fields)
        return Deployment(
            name=name,
            namespace=namespace,
            template=pod_template(fields.get("pod"), fields.at("pod"), name),
            replicas=parse_curve(fields.get("replicas"), fields.at("replicas"), base_dir),
            sample_every=_seconds(fields, "sampleEvery", 30.0),
            noise=number(fields.get("noise"), fields.at("noise"), hi=1.0)
            if fields.has("noise") else 0.0,
        )
    else:
        fields = Fields(value, path, required=("kind", "name", "pod", "pods", "runFor"),
                        optional=BATCH_FIELDS)
        name = _name(fields)
        at = duration(fields.get("at"), fields.at("at")) if fields.has("at") else 0.0
        waves = fields.integer("waves", 1, 1, INT32_MAX)
        every = _seconds(fields, "every", 0.0)
        if waves > 1 and every == 0:
            raise ValidationError(fields.at("every"), "required when waves is more than 1")
        return Batch(
            name=name,
            namespace=_namespace(fields),
            template=pod_template(fields.get("pod"), fields.at("pod"), name),
            at=at,
            pods=fields.integer("pods", 0, 1, INT32_MAX),
            run_seconds=duration(fields.get("runFor"), fields.at("runFor"), positive=True),
            every=every,
            waves=waves,
        )


def _name(fields: Fields) -> str:
    name = fields.text("name")
    _check_dns_label(name, fields.at("name"))
    return name


def _namespace(fields: Fields, default: str = "default") -> str:
    namespace = fields.text("namespace", default)
    _check_dns_label(namespace, fields.at("namespace"))
    return namespace


def _check_dns_label(text: str, path: str) -> None:
    stripped = text.replace("-", "")
    ok = (
        0 < len(text) <= 63 and stripped.isalnum() and stripped.isascii()
        and text == text.lower() and text[0] != "-" and text[-1] != "-"
    )
    if not ok:
        raise ValidationError(path, f"invalid name {text!r} ({_NAMESPACE_RULE})")


def pod_template(value: object, path: str, workload: str) -> PodTemplate:
    """A ``pod`` object: requests and constraints; labels default to ``app: <workload>``."""
    fields = Fields(value, path, required=("cpu", "memory"), optional=POD_FIELDS)
    labels = fields.labels("labels") if fields.has("labels") else {"app": workload}
    return PodTemplate(
        cpu_m=quantity_units("cpu", fields.get("cpu"), fields.at("cpu")),
        memory=quantity_units("memory", fields.get("memory"), fields.at("memory")),
        gpu=fields.integer("gpu", 0, 0, 64),
        tolerate_spot=fields.boolean("tolerateSpot", False),
        zone_spread_max_skew=fields.integer("zoneSpread", 1, 1, INT32_MAX)
        if fields.has("zoneSpread") else None,
        hostname_spread_max_skew=fields.integer("hostnameSpread", 1, 1, INT32_MAX)
        if fields.has("hostnameSpread") else None,
        node_selector=labels_of(fields.labels("nodeSelector")),
        tolerations=tuple(toleration(v, p) for v, p in fields.items("tolerations")),
        labels=labels_of(labels),
        priority=fields.integer("priority", 0, -(2**31), 10**9),
    )


# --- traces -------------------------------------------------------------------------------------

OPENB_FIELDS = ("name", "namespace", "compression", "at", "since", "until", "limit",
                "tolerateSpot", "nodeSelector", "tolerations", "gpuSpecLabel")
LLM_FIELDS = ("name", "namespace", "targetUtilisation", "reactionDelay", "window",
              "minReplicas", "maxReplicas", "step", "stabilisation", "at", "sampleEvery")


def _trace(value: object, path: str, base_dir: Path) -> Workload:
    if kind_of(value, path, ("openb", "azure-llm"), "trace") == "openb":
        fields = Fields(value, path, required=("kind", "file"), optional=OPENB_FIELDS)
        name = _name(fields) if fields.has("name") else "openb"
        label = None
        if fields.has("gpuSpecLabel"):
            label = qualified_name(fields.get("gpuSpecLabel"), fields.at("gpuSpecLabel"))
        return load_openb(
            resolve(fields.get("file"), fields.at("file"), base_dir),
            number(fields.get("compression"), fields.at("compression"), open_lo=True)
            if fields.has("compression") else 1.0,
            name=name,
            namespace=_namespace(fields, "openb"),
            offset=_offset(fields, "at"),
            since=_offset(fields, "since") if fields.has("since") else None,
            until=_offset(fields, "until") if fields.has("until") else None,
            limit=fields.integer("limit", 0, 1) if fields.has("limit") else None,
            tolerate_spot=fields.boolean("tolerateSpot", False),
            node_selector=labels_of(fields.labels("nodeSelector")),
            tolerations=tuple(toleration(v, p) for v, p in fields.items("tolerations")),
            gpu_spec_label=label,
        )
    else:
        required = ("kind", "file", "pod", "tokensPerSecondPerReplica")
        fields = Fields(value, path, required=required, optional=LLM_FIELDS)
        name = _name(fields) if fields.has("name") else "llm"
        step = _seconds(fields, "step", 15.0)
        curve = load_azure_llm(
            resolve(fields.get("file"), fields.at("file"), base_dir),
            number(fields.get("tokensPerSecondPerReplica"), fields.at("tokensPerSecondPerReplica"),
                   open_lo=True),
            number(fields.get("targetUtilisation"), fields.at("targetUtilisation"), hi=1.0,
                   open_lo=True) if fields.has("targetUtilisation") else 0.7,
            _offset(fields, "reactionDelay", 60.0),
            _seconds(fields, "window", 60.0),
            min_replicas=fields.integer("minReplicas", 1, 0, INT32_MAX),
            max_replicas=fields.integer("maxReplicas", 0, 1, INT32_MAX)
            if fields.has("maxReplicas") else None,
            step_s=step,
            stabilisation_s=_offset(fields, "stabilisation", 300.0),
        )
        return Deployment(
            name=name,
            namespace=_namespace(fields),
            template=pod_template(fields.get("pod"), fields.at("pod"), name),
            replicas=curve.shifted(_offset(fields, "at")),
            sample_every=_seconds(fields, "sampleEvery", step),
        )


def _offset(fields: Fields, key: str, default: float = 0.0) -> float:
    return duration(fields.get(key), fields.at(key)) if fields.has(key) else default


# --- trace-only scenarios -----------------------------------------------------------------------


def trace_scenario(
    path: str,
    base: Scenario | None = None,
    *,
    compression: float = 60.0,
    tokens_per_s_per_replica: float = 2000.0,
) -> Scenario:
    """A scenario replaying the trace file ``path`` (an openb pod list or an Azure LLM trace)
    on the pools, autoscaler settings and cloud of ``base`` (default: the built-in scenario),
    until an hour after the last arrival. Trace pods tolerate the taints of ``base``'s GPU
    pools; Azure LLM replicas are one-GPU serving pods (8 vCPU, 64 GiB)."""
    base = base or default_scenario()
    tolerations = _gpu_tolerations(base.pools, base.catalog())
    workload: Workload
    if trace_kind(path) == "openb":
        workload = load_openb(path, compression, tolerations=tolerations)
        last = max((p.submit_at for p in workload.pods), default=0.0)
    else:
        curve = load_azure_llm(path, tokens_per_s_per_replica)
        template = PodTemplate(8000, 64 * 2**30, 1, labels=(("app", "llm"),),
                               tolerations=tolerations)
        workload = Deployment("llm", "default", template, curve, sample_every=15.0)
        last = curve.times[-1]
    name = Path(path).name
    return replace(
        base,
        name=f"trace {name}",
        description=f"{name} replayed on the pools and settings of {base.name}",
        workloads=(workload,),
        duration=last + 3600.0,
    )


def _gpu_tolerations(pools: tuple[AgentPool, ...], catalog: Catalog) -> tuple[Toleration, ...]:
    tolerations: dict[tuple[str, str], Toleration] = {}
    for pool in pools:
        vm = catalog.get(pool.vm_size)
        if vm is None or vm.gpus == 0:
            continue
        for taint in pool.taints:
            tolerations[(taint.key, taint.value)] = Toleration(
                taint.key, "Equal", taint.value, taint.effect
            )
    return tuple(tolerations[key] for key in sorted(tolerations))
