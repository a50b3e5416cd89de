"""The controller's configuration: the example file, validation errors (path, reason, line, exit
code 2), and precedence of flags over environment over file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from autoscaler.control.cli import main
from autoscaler.control.config import Overrides, load_config, parse_config
from autoscaler.model.errors import ValidationError
from tests.builders import controller_env

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config.example.yaml"
AZURE = {"subscriptionId": "sub", "resourceGroup": "rg", "clusterName": "aks"}


def doc(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"region": "eastus", "azure": dict(AZURE)}
    base.update(fields)
    return base


def test_the_example_configuration_is_valid_and_reads_as_documented() -> None:
    config = load_config(str(EXAMPLE), {})
    assert config.loop.region == "eastus"
    assert config.loop.managed_pools == ("spot1", "spot2", "spot3", "reg1", "reg2", "reg3")
    assert config.azure.max_counts["spot1"] == 200
    assert config.min_counts["reg1"] == 1
    assert config.loop.limits.max_memory_bytes == 64 * 2**40
    assert config.loop.policy.priority_tiers == (("Spot",), ("Regular",))
    assert config.loop.max_node_provision_time == timedelta(minutes=15)
    assert (config.batch.idle, config.batch.max, config.batch.tick) == (1.0, 10.0, 10.0)
    assert config.loop.scale_down.max_grace_seconds == 600
    assert (config.lease.lease_duration, config.lease.renew_deadline) == (15.0, 10.0)
    assert (config.store, config.log_format, config.metrics.port) == ("configmap", "json", 8080)


def test_a_minimal_configuration_takes_the_defaults() -> None:
    config = parse_config(doc(), {})
    assert config.loop.managed_pools is None  # pools selected by tag in Azure
    assert config.loop.dry_run is False
    assert config.leader_election is True
    assert config.namespace is None
    assert config.schedulers == ("default-scheduler",)


@pytest.mark.parametrize(
    ("fields", "path", "reason"),
    [
        ({"region": None}, "$.region", "required"),
        ({"region": "East US"}, "$.region", "invalid Azure region"),
        ({"colour": "blue"}, "$.colour", "unknown field"),
        ({"azure": {"resourceGroup": "rg", "clusterName": "c"}}, "$.azure.subscriptionId",
         "AZURE_SUBSCRIPTION_ID"),
        ({"azure": {**AZURE, "tenant": "t"}}, "$.azure.tenant", "unknown field"),
        ({"pools": []}, "$.pools", "at least one pool"),
        ({"pools": [{"name": "Spot-1"}]}, "$.pools[0].name", "invalid pool name"),
        ({"pools": [{"name": "a"}, {"name": "a"}]}, "$.pools[1].name", "duplicate pool"),
        ({"pools": [{"name": "a", "minCount": 5, "maxCount": 2}]}, "$.pools[0].maxCount",
         "less than minCount 5"),
        ({"pools": [{"name": "a", "maxCount": 1001}]}, "$.pools[0].maxCount", "out of range"),
        ({"pools": [{"name": "a"}], "priorityTiers": [["b"]]}, "$.priorityTiers[0][0]",
         "neither Spot, Regular nor a pool name"),
        ({"priorityTiers": [["Spot"], ["spot"]]}, "$.priorityTiers[1][0]", "already appears"),
        ({"priorityTiers": [[]]}, "$.priorityTiers[0]", "must not be empty"),
        ({"limits": {"maxMemory": "lots"}}, "$.limits.maxMemory", ""),
        ({"timers": {"tick": "10 seconds"}}, "$.timers.tick", "malformed duration"),
        ({"timers": {"tick": 0}}, "$.timers.tick", "greater than zero"),
        ({"batching": {"idle": "5s", "max": "2s"}}, "$.batching.max", "less than idle"),
        ({"dryRun": "yes"}, "$.dryRun", "expected a boolean"),
        ({"maxNewNodesPerLoop": 0}, "$.maxNewNodesPerLoop", "out of range"),
        ({"scaleDown": {"maxDisruption": "150%"}}, "$.scaleDown.maxDisruption", "percentage"),
        ({"scaleDown": {"utilizationThreshold": 2}}, "$.scaleDown.utilizationThreshold",
         "out of range"),
        ({"leaderElection": {"renewDeadline": "20s"}}, "$.leaderElection.renewDeadline",
         "less than leaseDuration"),
        ({"leaderElection": {"retryPeriod": "9s"}}, "$.leaderElection.retryPeriod",
         "less than renewDeadline"),
        ({"kubernetes": {"namespace": "Kube_System"}}, "$.kubernetes.namespace",
         "invalid namespace"),
        ({"kubernetes": {"schedulerNames": []}}, "$.kubernetes.schedulerNames", "at least one"),
        ({"operationStore": {"kind": "file"}}, "$.operationStore.path", "required"),
        ({"operationStore": {"kind": "etcd"}}, "$.operationStore.kind", "not one of"),
        ({"logging": {"format": "xml"}}, "$.logging.format", "not one of"),
        ({"metrics": {"port": 70000}}, "$.metrics.port", "out of range"),
        ({"events": {"perSecond": 0}}, "$.events.perSecond", "out of range"),
    ],
)
def test_an_invalid_value_is_refused_naming_its_path_and_the_reason(
    fields: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as error:
        parse_config(doc(**fields), {})
    assert error.value.path == path
    assert reason in error.value.reason


def test_an_error_in_the_file_names_the_line(tmp_path: Path) -> None:
    file = tmp_path / "surge.yaml"
    file.write_text("region: eastus\nazure: {subscriptionId: s, resourceGroup: r, clusterName: c}\n"
                    "pools:\n  - name: spot1\n    maxCount: -3\n")
    with pytest.raises(ValidationError) as error:
        load_config(str(file), {})
    assert error.value.path == "$.pools[0].maxCount"
    assert f"({file}, line 5)" in error.value.reason


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("region: eastus\nregion: westus\n", ":2", "duplicate key 'region' (first on line 1)"),
        ("region: [eastus\n", ":2", "YAML syntax"),
        ("1: eastus\n", ":1", "mapping keys must be strings"),
        ("region: eastus\n---\nregion: westus\n", ":2", "YAML syntax"),
    ],
)
def test_a_malformed_yaml_file_is_refused_with_its_line(
    tmp_path: Path, text: str, where: str, reason: str
) -> None:
    file = tmp_path / "surge.yaml"
    file.write_text(text)
    with pytest.raises(ValidationError) as error:
        load_config(str(file), {})
    assert error.value.path == f"{file}{where}"
    assert reason in error.value.reason


@pytest.mark.parametrize("text", ["", "# all defaults\n"])
def test_an_empty_config_file_takes_every_key_from_the_environment_and_the_defaults(
    tmp_path: Path, text: str
) -> None:
    file = tmp_path / "surge.yaml"
    file.write_text(text)
    env = controller_env()
    config = load_config(str(file), env)
    assert config.loop.region == "eastus"
    assert config == parse_config({}, env)


@pytest.mark.parametrize(
    ("section", "key"),
    [("timers", "tick"), ("timers", "maxNodeProvisionTime"), ("timers", "poolRefreshInterval"),
     ("batching", "idle"), ("batching", "max"), ("kubernetes", "syncTimeout"),
     ("leaderElection", "leaseDuration"), ("leaderElection", "renewDeadline"),
     ("leaderElection", "retryPeriod"), ("events", "dedupWindow"), ("scaleDown", "drainTimeout")],
)
def test_a_zero_duration_outside_the_scale_down_delays_is_still_refused(
    section: str, key: str
) -> None:
    with pytest.raises(ValidationError) as error:
        parse_config(doc(**{section: {key: "0s"}}), {})
    assert error.value.path == f"$.{section}.{key}"
    assert "greater than zero" in error.value.reason


def test_surge_run_with_an_invalid_config_exits_2_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "surge.yaml"
    file.write_text("region: eastus\nazure: {subscriptionId: s, resourceGroup: r, clusterName: c}\n"
                    "batching: {idle: 3s, max: 1s}\n")
    assert main(["run", "--config", str(file), "--once"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("surge: error: $.batching.max: 1s is less than idle 3s")
    assert "line 3" in err


def test_surge_run_with_a_missing_config_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("file_value", "env", "flag", "expected"),
    [
        (False, {}, None, False),
        (True, {}, None, True),
        (False, {"SURGE_DRY_RUN": "true"}, None, True),
        (True, {"SURGE_DRY_RUN": "false"}, None, False),
        (False, {"SURGE_DRY_RUN": "false"}, True, True),
    ],
)
def test_dry_run_comes_from_the_flag_then_the_environment_then_the_file(
    file_value: bool, env: dict[str, str], flag: bool | None, expected: bool
) -> None:
    config = parse_config(doc(dryRun=file_value), env, Overrides(dry_run=flag))
    assert config.loop.dry_run is expected


@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [({}, None, "text"), ({"SURGE_LOG_FORMAT": "json"}, None, "json"),
     ({"SURGE_LOG_FORMAT": "json"}, "text", "text")],
)
def test_log_format_comes_from_the_flag_then_the_environment_then_the_file(
    env: dict[str, str], flag: str | None, expected: str
) -> None:
    config = parse_config(doc(logging={"format": "text"}), env, Overrides(log_format=flag))
    assert config.log_format == expected


def test_environment_variables_override_the_azure_section_and_the_rest() -> None:
    env = {
        "AZURE_SUBSCRIPTION_ID": "env-sub", "SURGE_CLUSTER_NAME": "env-aks",
        "SURGE_CA_BUNDLE": "/ca.pem", "SURGE_REGION": "westeurope",
        "SURGE_NAMESPACE": "surge", "POD_NAME": "surge-0", "SURGE_METRICS_PORT": "9090",
        "SURGE_LOG_LEVEL": "debug",
    }
    config = parse_config(doc(kubernetes={"namespace": "kube-system"}), env)
    assert (config.azure.subscription_id, config.azure.resource_group,
            config.azure.cluster_name) == ("env-sub", "rg", "env-aks")
    assert config.azure.connection_verify == "/ca.pem"
    assert config.loop.region == "westeurope"
    assert config.namespace == config.lease.namespace == "surge"
    assert config.lease.identity == "surge-0"
    assert (config.metrics.port, config.log_level) == (9090, "debug")


def test_the_azure_coordinates_may_come_from_the_environment_alone() -> None:
    env = {"AZURE_SUBSCRIPTION_ID": "s", "SURGE_RESOURCE_GROUP": "r", "SURGE_CLUSTER_NAME": "c"}
    config = parse_config({"region": "eastus"}, env)
    assert config.azure.cluster_name == "c"


@pytest.mark.parametrize(
    ("env", "name"),
    [({"SURGE_DRY_RUN": "maybe"}, "SURGE_DRY_RUN"),
     ({"SURGE_LOG_FORMAT": "xml"}, "SURGE_LOG_FORMAT"),
     ({"SURGE_METRICS_PORT": "http"}, "SURGE_METRICS_PORT"),
     ({"SURGE_REGION": "East US"}, "SURGE_REGION"),
     ({"POD_NAMESPACE": "Bad_NS"}, "POD_NAMESPACE")],
)
def test_an_invalid_environment_variable_is_named_in_the_error(
    env: dict[str, str], name: str
) -> None:
    with pytest.raises(ValidationError) as error:
        parse_config(doc(), env)
    assert error.value.path == name
