"""Scenario files: what a valid file becomes, and that every bad input names its field and line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler.model.errors import ValidationError
from autoscaler.model.pool import PoolMode, Priority
from simulator.curves import Step, Table, Viral
from simulator.loader import apply_autoscaler_file, trace_scenario
from simulator.scenario import Batch, Deployment, TraceReplay
from simulator.workloads import default_scenario, load_scenario
from tests.builders import GiB, scenario_doc

FIXTURES = Path(__file__).parent.parent / "fixtures"
SHIPPED = Path(__file__).parent.parent.parent / "simulator" / "scenarios"


def write(tmp_path: Path, doc: object, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc: dict[str, Any] = scenario_doc()
    change(doc)
    return doc


# --- what a valid file becomes ------------------------------------------------------------------


def test_a_valid_scenario_file_becomes_pools_settings_cloud_and_workloads(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, scenario_doc()))
    assert (scenario.name, scenario.duration, scenario.seed, scenario.region) == (
        "small", 7200.0, 3, "eastus")
    assert [(p.name, p.priority, p.zones, p.count, p.max_count) for p in scenario.pools] == [
        ("spotz1", Priority.SPOT, ("1",), 1, 10), ("regz1", Priority.REGULAR, ("1",), 0, 10)]
    assert scenario.loop.policy.priority_tiers == (("Spot",), ("Regular",))
    assert scenario.loop.managed_pools == ("spotz1", "regz1")
    assert scenario.loop_interval_s == 10.0
    assert scenario.cloud.capacity == {("standard_d4s_v5", "eastus-1", "Spot"): 3}
    assert scenario.cloud.spot_evictions_per_node_hour == 0.1
    web, api, report = scenario.workloads
    assert isinstance(web, Deployment) and isinstance(api, Deployment)
    assert web.replicas == Viral(4, 40, at=600.0, rise=1800.0, half_life=3600.0)
    assert (web.template.cpu_m, web.template.memory, web.template.tolerate_spot) == (
        500, GiB, True)
    assert web.template.labels == (("app", "web"),)
    assert api.replicas == Step(3)
    assert report == Batch("report", "default", report.template, 1800.0, 2, 1200.0)


def test_unset_fields_take_their_documented_defaults(tmp_path: Path) -> None:
    doc = {"name": "bare", "duration": 60,
           "pools": [{"name": "p", "vmSize": "Standard_D2s_v5"}]}
    scenario = load_scenario(write(tmp_path, doc))
    assert scenario.start == datetime(2026, 1, 5, tzinfo=UTC)
    assert (scenario.seed, scenario.loop_interval_s, scenario.sample_every_s) == (0, 10.0, 60.0)
    assert scenario.pools[0].max_count == 1000 and scenario.pools[0].max_pods == 30
    assert scenario.loop.max_node_provision_time == timedelta(minutes=15)
    assert scenario.cloud.provision_seconds == (90.0, 240.0)
    assert scenario.cloud.capacity == {} and scenario.workloads == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("1h30m", 5400.0), ("2.5h", 9000.0), ("1d", 86400.0),
     ("250ms", 0.25), (45, 45.0), (1.5, 1.5)],
)
def test_durations_are_seconds_or_unit_strings(
    tmp_path: Path, text: object, seconds: float
) -> None:
    doc = mutated(lambda d: d.update(duration=text))
    assert load_scenario(write(tmp_path, doc)).duration == seconds


def test_a_csv_curve_is_read_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "curve.csv").write_bytes((FIXTURES / "replicas_small.csv").read_bytes())
    doc = mutated(lambda d: d["workloads"][1].update(replicas={"kind": "csv", "file": "curve.csv"}))
    api = load_scenario(write(tmp_path, doc)).workloads[1]
    assert isinstance(api, Deployment)
    assert api.replicas == Table((0.0, 600.0, 1800.0), (3, 10, 4))


def test_the_system_pool_is_not_managed_unless_listed(tmp_path: Path) -> None:
    def add_system(d: dict[str, Any]) -> None:
        d["pools"].append({"name": "sys", "vmSize": "Standard_D2s_v5", "mode": "System"})

    scenario = load_scenario(write(tmp_path, mutated(add_system)))
    assert scenario.pools[-1].mode is PoolMode.SYSTEM
    assert scenario.loop.managed_pools == ("spotz1", "regz1")


def test_an_autoscaler_settings_file_replaces_the_scenarios_settings(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, scenario_doc()))
    settings = write(tmp_path, {"loopInterval": "30s", "priorityTiers": [["Regular"], ["Spot"]],
                                "limits": {"maxNodes": 7, "maxMemory": "64Gi"}}, "c.yaml")
    changed = apply_autoscaler_file(scenario, settings)
    assert changed.loop_interval_s == 30.0
    assert changed.loop.policy.priority_tiers == (("Regular",), ("Spot",))
    assert (changed.loop.limits.max_nodes, changed.loop.limits.max_memory_bytes) == (7, 64 * GiB)
    assert changed.workloads == scenario.workloads


# --- strict validation --------------------------------------------------------------------------


def _set(*keys: object, value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _drop(*keys: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


W = "workloads"
BAD = [
    (_set("colour", value="blue"), "$.colour", "unknown field"),
    (_drop("name"), "$.name", "required"),
    (_set("duration", value=[1]), "$.duration", "expected a duration"),
    (_set("duration", value="10 minutes"), "$.duration", "malformed duration"),
    (_set("duration", value=-5), "$.duration", "greater than zero"),
    (_set("start", value="2026-01-01T00:00:00"), "$.start", "RFC 3339"),
    (_set("seed", value=-1), "$.seed", "out of range"),
    (_set("pools", 0, "count", value=-1), "$.pools[0].count", "out of range"),
    (_set("pools", 0, "vmSize", value="Standard_Nope"), "$.pools[0].vmSize", "not in the VM"),
    (_set("pools", 0, "name", value="Spot_1"), "$.pools[0].name", "invalid pool name"),
    (_set("pools", 1, "name", value="spotz1"), "$.pools[1].name", "duplicate pool"),
    (_set("pools", 0, "zones", value=["4"]), "$.pools[0].zones[0]", "invalid zone"),
    (_set("pools", 0, "priority", value="Cheap"), "$.pools[0].priority", "not one of"),
    (_set("pools", 0, "taints", value=["sku=gpu"]), "$.pools[0].taints[0]", "key=value:Effect"),
    (_set("pools", 0, "maxCount", value=0), "$.pools[0].maxCount", "less than count"),
    (_set("pools", 0, "nodeLabels", value={}), "$.pools[0].nodeLabels", "unknown field"),
    (_set("autoscaler", "priorityTiers", value=[["Gold"]]), "$.autoscaler.priorityTiers[0][0]",
     "neither Spot"),
    (_set("autoscaler", "managedPools", value=["nope"]), "$.autoscaler.managedPools[0]",
     "unknown pool"),
    (_set("autoscaler", "loopInterval", value=0), "$.autoscaler.loopInterval", "greater than"),
    (_set("autoscaler", "limits", value={"maxNodes": -3}), "$.autoscaler.limits.maxNodes",
     "out of range"),
    (_set("cloud", "spotEvictionsPerNodeHour", value=-0.5), "$.cloud.spotEvictionsPerNodeHour",
     "out of range"),
    (_set("cloud", "capacity", 0, "priority", value="spot"), "$.cloud.capacity[0].priority",
     "not one of"),
    (_set("cloud", "capacity", 0, "nodes", value=-1), "$.cloud.capacity[0].nodes",
     "out of range"),
    (_set("cloud", "quotas", value={"familyCores": {"madeUpFamily": 8}}),
     "$.cloud.quotas.familyCores.madeUpFamily", "no VM size"),
    (_set("cloud", "provisioning", value={"min": "5m", "max": "1m"}),
     "$.cloud.provisioning.max", "less than min"),
    (_set(W, 1, "kind", value="cronjob"), "$.workloads[1].kind", "unknown workload kind"),
    (_set(W, 0, "replicas", "kind", value="zigzag"), "$.workloads[0].replicas.kind",
     "unknown curve kind"),
    (_set(W, 0, "replicas", "peak", value=2), "$.workloads[0].replicas.peak",
     "less than baseline"),
    (_set(W, 0, "replicas", "halfLife", value=0), "$.workloads[0].replicas.halfLife",
     "greater than"),
    (_set(W, 0, "replicas", "steps", value=[]), "$.workloads[0].replicas.steps",
     "unknown field"),
    (_set(W, 1, "replicas", value=-2), "$.workloads[1].replicas", "out of range"),
    (_set(W, 1, "replicas", value="3"), "$.workloads[1].replicas", "expected an object"),
    (_set(W, 0, "pod", "cpu", value="-1"), "$.workloads[0].pod.cpu", "negative"),
    (_set(W, 0, "pod", "memory", value="lots"), "$.workloads[0].pod.memory", "malformed"),
    (_set(W, 0, "pod", "tolerateSpot", value="yes please"), "$.workloads[0].pod.tolerateSpot",
     "boolean"),
    (_set(W, 0, "pod", "zoneSpread", value=0), "$.workloads[0].pod.zoneSpread", "out of range"),
    (_set(W, 0, "noise", value=2), "$.workloads[0].noise", "out of range"),
    (_set(W, 1, "name", value="web"), "$.workloads[1].name", "duplicate workload"),
    (_set(W, 1, "name", value="API"), "$.workloads[1].name", "invalid name"),
    (_drop(W, 2, "runFor"), "$.workloads[2].runFor", "required"),
    (_set(W, 2, "pods", value=0), "$.workloads[2].pods", "out of range"),
    (_set(W, 2, "waves", value=3), "$.workloads[2].every", "required when waves"),
    (_set("traces", value=[{"kind": "alibaba", "file": "x"}]), "$.traces[0].kind",
     "unknown trace kind"),
    (_set("traces", value=[{"kind": "openb", "file": "missing.csv"}]), "$.traces[0].file",
     "no such file"),
    (_set("vmSizes", value={"Standard_X9": {"vcpus": 9}}), "$.vmSizes.Standard_X9.memoryGiB",
     "required"),
]


@pytest.mark.parametrize(("change", "path", "reason"), BAD)
def test_a_bad_field_is_refused_with_its_path(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], path: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load_scenario(write(tmp_path, mutated(change)))
    assert caught.value.path == path
    assert reason in caught.value.reason


def test_an_error_names_the_line_of_the_offending_field(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = yaml.safe_dump(scenario_doc(), sort_keys=False).replace("halfLife: 1h", "halfLife: 0")
    path.write_text(text)
    line = 1 + text.splitlines().index(
        next(x for x in text.splitlines() if "halfLife: 0" in x))
    with pytest.raises(ValidationError, match=rf"\(.*s\.yaml, line {line}\)"):
        load_scenario(str(path))


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("name: x\nduration: 1h\npools: [\n", ":4", "YAML syntax"),
        ("name: x\nname: y\n", ":2", "duplicate key 'name' (first on line 1)"),
        ("name: x\n3: y\n", ":2", "mapping keys must be strings"),
        ("", ":1", "empty"),
        ("a: 1\n---\nb: 2\n", ":2", "YAML syntax"),
    ],
)
def test_yaml_syntax_errors_name_the_file_and_line(
    tmp_path: Path, text: str, where: str, reason: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError) as caught:
        load_scenario(str(path))
    assert caught.value.path == f"{path}{where}"
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("csv", "where", "reason"),
    [
        ("t,r\n0,1\n", ":1", "header"),
        ("time,replicas\n0,1\n60,x\n", ":3", "column replicas"),
        ("time,replicas\n0,1\n-5,2\n", ":3", "column time"),
        ("time,replicas\n60,1\n30,2\n", ":3", "increase"),
        ("time,replicas\n0,1,2\n", ":2", "expected 2 columns"),
        ("time,replicas\n", ":2", "no rows"),
    ],
)
def test_a_bad_replicas_csv_names_its_file_line_and_column(
    tmp_path: Path, csv: str, where: str, reason: str
) -> None:
    (tmp_path / "c.csv").write_text(csv)
    doc = mutated(lambda d: d[W][1].update(replicas={"kind": "csv", "file": "c.csv"}))
    with pytest.raises(ValidationError) as caught:
        load_scenario(write(tmp_path, doc))
    assert caught.value.path == f"{tmp_path / 'c.csv'}{where}"
    assert reason in caught.value.reason


def test_a_missing_scenario_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        load_scenario(str(tmp_path / "nope.yaml"))


# --- shipped scenarios and trace scenarios ------------------------------------------------------


def test_the_default_scenario_is_a_six_hour_viral_launch_with_spot_and_regular_per_zone() -> None:
    scenario = default_scenario()
    assert (scenario.name, scenario.duration) == ("viral-launch", 6 * 3600.0)
    zonal = {(p.priority, p.zones) for p in scenario.pools if len(p.zones) == 1}
    assert {(prio, (z,)) for prio in Priority for z in "123"} <= zonal
    assert any(p.mode is PoolMode.SYSTEM for p in scenario.pools)
    web = next(w for w in scenario.workloads if w.name == "web")
    assert isinstance(web, Deployment) and isinstance(web.replicas, Viral)
    assert web.replicas.peak == 10 * web.replicas.baseline
    assert web.template.tolerate_spot and web.template.zone_spread_max_skew == 1
    api = next(w for w in scenario.workloads if w.name == "api")
    assert isinstance(api, Deployment) and not api.template.tolerate_spot
    assert any(isinstance(w, Batch) and w.template.gpu > 0 for w in scenario.workloads)
    assert any(key[2] == "Spot" for key in scenario.cloud.capacity)


@pytest.mark.parametrize("name", sorted(p.name for p in SHIPPED.glob("*.yaml")))
def test_every_shipped_scenario_loads(name: str) -> None:
    scenario = load_scenario(str(SHIPPED / name))
    assert scenario.name == name.removesuffix(".yaml")
    assert scenario.description and scenario.workloads


def test_an_openb_trace_scenario_replays_the_trace_on_the_default_pools() -> None:
    scenario = trace_scenario(str(FIXTURES / "openb_pod_list_small.csv"), compression=100.0)
    (replay,) = scenario.workloads
    assert isinstance(replay, TraceReplay) and len(replay.pods) == 8
    assert scenario.pools == default_scenario().pools
    last = max(p.submit_at for p in replay.pods)
    assert scenario.duration == pytest.approx(last + 3600.0)
    gpu_taint = ("sku", "gpu")
    assert all((t.key, t.value) == gpu_taint for t in replay.pods[0].template.tolerations)


def test_an_azure_llm_trace_scenario_is_a_gpu_deployment_on_the_serving_curve() -> None:
    scenario = trace_scenario(str(FIXTURES / "AzureLLMInferenceTrace_small.csv"))
    (llm,) = scenario.workloads
    assert isinstance(llm, Deployment) and isinstance(llm.replicas, Table)
    assert llm.template.gpu == 1


def test_the_complete_example_in_the_format_docs_loads(tmp_path: Path) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "scenarios.md").read_text()
    example = docs.split("## A complete example")[1].split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    scenario = load_scenario(str(path))
    assert scenario.name == "small-launch" and len(scenario.workloads) == 2
