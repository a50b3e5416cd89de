"""The snapshot loader: JSON to ClusterState, strict validation, and the documented schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from autoscaler.control import snapshot, snapshot_pools
from autoscaler.control.snapshot import load_snapshot, parse_snapshot
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import HOSTNAME_LABEL, Operator, Requirement
from autoscaler.model.node import Taint
from autoscaler.model.pod import Pod, TaintEffect, Toleration
from autoscaler.model.pool import PoolMode, Priority
from tests.builders import GiB, MiB, snapshot_doc

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "snapshot.json"
SCHEMA = ROOT / "docs" / "snapshot.schema.json"


def pending(doc: dict[str, Any]) -> dict[str, Any]:
    """The pending pod of ``snapshot_doc()``, to edit in place."""
    return doc["pods"][1]


def parse_pending_pod(**fields: object) -> Pod:
    doc = snapshot_doc()
    pending(doc).update(fields)
    state, _ = parse_snapshot(doc)
    return next(p for p in state.pods if p.name == "web-1")


# --- the example -------------------------------------------------------------------------------


def test_the_example_snapshot_loads_every_pool_node_and_pod() -> None:
    state, warnings = load_snapshot(str(EXAMPLE))
    raw = json.loads(EXAMPLE.read_text())
    assert state.region == "eastus"
    assert [p.name for p in state.pools] == [p["name"] for p in raw["pools"]]
    assert len(state.nodes) == len(raw["nodes"])
    assert len(state.pods) == len(raw["pods"])
    assert state.now == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert warnings == ()


def test_the_example_manages_every_user_pool_and_not_the_system_pool() -> None:
    state, _ = load_snapshot(str(EXAMPLE))
    system = {p.name for p in state.pools if p.mode is PoolMode.SYSTEM}
    assert system == {"system"}
    assert {o.pool for o in state.options} == {p.name for p in state.pools} - system


def test_the_example_gpu_pool_carries_its_taint_and_the_statefulset_pod_its_volume_zone() -> None:
    state, _ = load_snapshot(str(EXAMPLE))
    gpu = next(p for p in state.pools if p.name == "gpunc4z1")
    assert Taint("nvidia.com/gpu", "true", TaintEffect.NO_SCHEDULE) in gpu.taints
    database = next(p for p in state.pods if p.name == "orders-db-2")
    assert database.volume_zones == ("eastus-2",)
    assert len(state.backoffs) == 1


# --- mapping into the model --------------------------------------------------------------------


def test_a_pod_owner_becomes_kind_slash_name_and_quantities_become_planner_units() -> None:
    pod = parse_pending_pod()
    assert pod.owner == "ReplicaSet/web-7d9"
    assert dict(pod.containers[0].requests) == {"cpu": 500, "memory": GiB}
    assert pod.node_name is None


def test_an_init_container_with_restart_policy_always_is_a_sidecar() -> None:
    pod = parse_pending_pod(initContainers=[
        {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
        {"name": "setup", "resources": {"requests": {"cpu": "1"}}},
    ])
    assert [c.sidecar for c in pod.init_containers] == [True, False]


def test_a_limit_without_a_request_requests_the_limit_as_the_api_server_defaults_it() -> None:
    pod = parse_pending_pod(containers=[
        {"name": "main", "resources": {"requests": {"cpu": "250m"},
                                       "limits": {"cpu": "1", "memory": "512Mi"}}}
    ])
    assert dict(pod.containers[0].requests) == {"cpu": 250, "memory": 512 * MiB}


def test_tolerations_keep_operator_value_and_effect_and_an_empty_effect_matches_all() -> None:
    pod = parse_pending_pod(tolerations=[
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "batch"},
        {"operator": "Exists"},
    ])
    assert pod.tolerations == (
        Toleration("nvidia.com/gpu", "Exists", "", TaintEffect.NO_SCHEDULE),
        Toleration("dedicated", "Equal", "batch", None),
        Toleration("", "Exists", "", None),
    )


def test_required_node_affinity_is_kept_and_preferred_terms_are_dropped() -> None:
    term = {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
    pod = parse_pending_pod(affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "size", "operator": "Gt", "values": ["3"]}]}}
        ],
    }})
    assert len(pod.required_affinity) == 1
    assert pod.required_affinity[0].match_expressions == (
        Requirement("disk", Operator.IN, ("ssd",)),
    )


def test_match_fields_on_metadata_name_becomes_a_hostname_requirement() -> None:
    pod = parse_pending_pod(affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["aks-x-0"]}]}
        ]}
    }})
    expressions = pod.required_affinity[0].match_expressions
    assert expressions == (Requirement(HOSTNAME_LABEL, Operator.IN, ("aks-x-0",)),)


def test_required_pod_anti_affinity_and_zone_spread_are_mapped() -> None:
    pod = parse_pending_pod(
        affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOSTNAME_LABEL}
        ]}},
        topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                    "whenUnsatisfiable": "DoNotSchedule", "minDomains": 3,
                                    "labelSelector": {"matchLabels": {"app": "web"}}}],
    )
    assert pod.anti_affinity[0].topology_key == HOSTNAME_LABEL
    assert pod.anti_affinity[0].label_selector.match_labels == (("app", "web"),)
    spread = pod.topology_spread[0]
    assert (spread.max_skew, spread.min_domains) == (1, 3)


@pytest.mark.parametrize(
    ("claims", "listed", "zones"),
    [
        (["data"], {"data": ["eastus-2"]}, ("eastus-2",)),
        (["data", "logs"], {"data": ["eastus-1", "eastus-2"], "logs": ["eastus-2"]}, ("eastus-2",)),
        (["data", "logs"], {"data": ["eastus-1"], "logs": ["eastus-3"]}, ()),
        (["data", "scratch"], {"data": ["eastus-3"]}, ("eastus-3",)),
        (["scratch"], {"data": ["eastus-3"]}, None),
    ],
)
def test_volume_zones_are_the_intersection_over_listed_claims(
    claims: list[str], listed: dict[str, list[str]], zones: tuple[str, ...] | None
) -> None:
    doc = snapshot_doc()
    pending(doc)["volumes"] = [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]
    doc["persistentVolumeClaims"] = [
        {"namespace": "default", "name": name, "zones": z} for name, z in listed.items()
    ]
    state, _ = parse_snapshot(doc)
    assert next(p for p in state.pods if p.name == "web-1").volume_zones == zones


def test_pools_map_aks_taint_strings_priority_and_defaults() -> None:
    doc = snapshot_doc()
    doc["pools"][1]["nodeTaints"] = ["dedicated=batch:NoExecute", "maintenance:NoSchedule"]
    state, _ = parse_snapshot(doc)
    spot, regular = state.pools
    assert spot.priority is Priority.SPOT and regular.priority is Priority.REGULAR
    assert regular.taints == (
        Taint("dedicated", "batch", TaintEffect.NO_EXECUTE),
        Taint("maintenance", "", TaintEffect.NO_SCHEDULE),
    )
    assert (regular.mode, regular.min_count, regular.enable_autoscaling) == (
        PoolMode.USER, 0, False
    )


def test_limits_policy_and_backoffs_are_mapped() -> None:
    doc = snapshot_doc()
    doc["limits"] = {"maxNodes": 50, "maxCores": 400, "maxMemory": "2Ti"}
    doc["policy"] = {"priorityTiers": [["spotd4z1"], ["Regular"]], "maxNewNodes": 20}
    doc["backoffs"] = [{"vmSize": "Standard_D4s_v5", "priority": "Spot",
                        "until": "2026-11-25T13:00:00+01:00", "reason": "QuotaExceeded"}]
    state, _ = parse_snapshot(doc)
    assert (state.limits.max_nodes, state.limits.max_cores) == (50, 400)
    assert state.limits.max_memory_bytes == 2 * 2**40
    assert state.policy.priority_tiers == (("spotd4z1",), ("Regular",))
    assert state.policy.max_new_nodes == 20
    backoff = state.backoffs[0]
    assert backoff.zone is None
    assert backoff.until == datetime(2026, 11, 25, 12, tzinfo=UTC)  # the offset is applied


def test_managed_pools_when_listed_are_the_only_pools_with_options() -> None:
    doc = snapshot_doc()
    doc["managedPools"] = ["regd4z1"]
    state, _ = parse_snapshot(doc)
    assert [o.pool for o in state.options] == ["regd4z1"]


def test_json_null_reads_as_an_absent_optional_field() -> None:
    pod = parse_pending_pod(nodeName=None, uid=None, priority=None)
    assert (pod.node_name, pod.uid, pod.priority) == (None, "", 0)


@pytest.mark.parametrize(
    ("edit", "warning"),
    [
        (lambda d: d["pools"][0].update(count=0), "pool spotd4z1 has 1 nodes but count 0"),
        (
            lambda d: d["pods"][1].update(affinity={"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]}}),
            "1 pod(s) use required podAffinity",
        ),
        (
            lambda d: d["pools"][1].update(enableAutoScaling=True),
            "pool regd4z1 has enableAutoScaling=true",
        ),
    ],
)
def test_suspicious_but_valid_input_gives_a_warning(edit: object, warning: str) -> None:
    doc = snapshot_doc()
    edit(doc)
    _, warnings = parse_snapshot(doc)
    assert any(w.startswith(warning) for w in warnings), warnings


# --- strictness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["pods"][1].update(nodeSelector={"bad key!": "x"}),
         "$.pods[1].nodeSelector['bad key!']"),
        (lambda d: d["pods"][1]["containers"][0]["resources"]["requests"].update(
            {"nvidia.com/gpu": "one"}),
         "$.pods[1].containers[0].resources.requests['nvidia.com/gpu']"),
        (lambda d: d["pods"][1].update(tolerations=[{"key": "a", "operator": "Exists",
                                                     "value": "b"}]),
         "$.pods[1].tolerations[0].value"),
        (lambda d: d["pods"][1].update(topologySpreadConstraints=[
            {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]),
         "$.pods[1].topologySpreadConstraints[0].maxSkew"),
        (lambda d: d["pods"][1].update(affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "n", "operator": "Gt", "values": ["x"]}]}]}}}),
         "$.pods[1].affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
         ".nodeSelectorTerms[0].matchExpressions[0].values"),
        (lambda d: d["pods"][1].update(containers=[]), "$.pods[1].containers"),
        (lambda d: d["pods"][1].update(uid="same", name="web-2") or d["pods"][0].update(uid="same"),
         "$.pods[1].uid"),
        (lambda d: d["nodes"][0]["allocatable"].pop("pods"), "$.nodes[0].allocatable.pods"),
        (lambda d: d["pools"][0].update(zones=["1", "1"]), "$.pools[0].zones[1]"),
        (lambda d: d["pools"][0].update(name="Spot_Pool"), "$.pools[0].name"),
        (lambda d: d.update(backoffs=[{"vmSize": "x", "priority": "Spot", "zone": "westus-1",
                                       "until": "2026-11-25T13:00:00Z", "reason": "r"}]),
         "$.backoffs[0].zone"),
        (lambda d: d.update(policy={"priorityTiers": [["Spot"], ["spot"]]}),
         "$.policy.priorityTiers[1][0]"),
        (lambda d: d.update(capturedAt="2026-11-25 12:00:00"), "$.capturedAt"),
        (lambda d: d.update(pools=None), "$.pools"),
        (lambda d: d.update(vmSizes={"Standard_New_v9": {"vcpus": 4}}),
         "$.vmSizes.Standard_New_v9.memoryGiB"),
    ],
)
def test_invalid_documents_are_refused_with_the_path_of_the_bad_value(
    edit: object, path: str
) -> None:
    doc = snapshot_doc()
    edit(doc)
    with pytest.raises(ValidationError) as raised:
        parse_snapshot(doc)
    assert raised.value.path == path, raised.value


def test_an_invalid_value_repeated_in_several_pods_is_reported_at_its_first_occurrence() -> None:
    doc = snapshot_doc()
    for pod in doc["pods"]:
        pod["tolerations"] = [{"key": "a", "operator": "Sometimes"}]
    with pytest.raises(ValidationError) as raised:
        parse_snapshot(doc)
    assert raised.value.path == "$.pods[0].tolerations[0].operator"


def test_pods_with_identical_parts_get_equal_parts() -> None:
    doc = snapshot_doc()
    state, _ = parse_snapshot(doc)
    bound, waiting = state.pods
    assert (bound.containers, bound.tolerations) == (waiting.containers, waiting.tolerations)
    assert bound.node_name == "aks-spotd4z1-0" and waiting.node_name is None


def test_nothing_is_built_when_any_part_of_the_document_is_invalid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: object, **__: object) -> object:
        raise AssertionError("the catalog was loaded before validation finished")

    monkeypatch.setattr(snapshot, "load_catalog", refuse)
    doc = snapshot_doc()
    doc["backoffs"] = [{"vmSize": "x", "priority": "Spot", "until": "soon", "reason": "r"}]
    with pytest.raises(ValidationError, match=r"^\$\.backoffs\[0\]\.until: "):
        parse_snapshot(doc)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"apiVersion": 1,\n "kind": }', "line 2 column 10"),
        ('{"region": "a", "region": "b"}', "duplicate key 'region'"),
        ('{"maxNodes": NaN}', "NaN is not valid JSON"),
    ],
)
def test_files_that_are_not_strict_json_are_refused_at_the_root(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(text)
    with pytest.raises(ValidationError) as raised:
        load_snapshot(str(path))
    assert raised.value.path == "$"
    assert reason in raised.value.reason


def test_a_missing_file_is_refused_with_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"^\$: cannot read .*No such file"):
        load_snapshot(str(tmp_path / "absent.json"))


# --- the JSON Schema agrees with the loader -------------------------------------------------------


def _resolve(schema: dict[str, object], node: dict[str, object]) -> dict[str, object]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        target: object = schema
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(schema, target)
    return node


def _undeclared(schema: dict[str, object], node: dict[str, object], value: object,
                path: str) -> list[str]:
    """Keys of ``value`` that the schema does not declare (a subset of JSON Schema: $ref,
    properties, additionalProperties as a schema, items)."""
    node = _resolve(schema, node)
    found: list[str] = []
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties", False)
        for key, item in value.items():
            if key in properties:
                found += _undeclared(schema, properties[key], item, f"{path}.{key}")
            elif isinstance(extra, dict):
                found += _undeclared(schema, extra, item, f"{path}.{key}")
            else:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            found += _undeclared(schema, node["items"], item, f"{path}[{i}]")
    return found


def test_the_schema_is_draft_2020_12_and_declares_every_field_the_example_uses() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert _undeclared(schema, schema, json.loads(EXAMPLE.read_text()), "$") == []


def test_the_schema_top_level_fields_are_the_loaders() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["required"]) == {"apiVersion", "kind", "region", "capturedAt", "pools"}
    assert set(schema["properties"]) == set(schema["required"]) | set(snapshot.TOP_FIELDS)
    pool = schema["$defs"]["pool"]
    assert set(pool["properties"]) == {"name", "vmSize", "count", *snapshot_pools.POOL_FIELDS}
