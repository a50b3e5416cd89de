"""AKS settings, ARM pool JSON mapping, operation stores and error classification (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoscaler.cloud.aks_errors import DEFAULT_RETRY_AFTER, retry_after
from autoscaler.cloud.aks_pools import check_change, managed_pools, pool_from_arm
from autoscaler.cloud.aks_settings import AKS_POOL_NODE_LIMIT, AksSettings, aks_settings
from autoscaler.cloud.provider import ManagedPoolError, Operation, Refused
from autoscaler.cloud.store import JsonFileStore, MemoryStore, OperationStore
from autoscaler.control.backoff import CAPACITY, DEFAULT, LOW_QUOTA, backoff_duration, classify
from autoscaler.model.errors import ValidationError
from autoscaler.model.pool import PoolMode, Priority

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ENV = {
    "AZURE_SUBSCRIPTION_ID": "sub-env",
    "SURGE_RESOURCE_GROUP": "rg-env",
    "SURGE_CLUSTER_NAME": "aks-env",
}
SETTINGS = AksSettings("sub", "rg", "aks")


def arm_pool(name: str = "p1", **props: Any) -> dict[str, Any]:
    return {"name": name, "properties": {"count": 1, "vmSize": "Standard_D4s_v5", **props}}


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        ({}, ENV, ("sub-env", "rg-env", "aks-env")),
        ({"subscriptionId": "sub-cfg"}, ENV, ("sub-cfg", "rg-env", "aks-env")),
        (
            {"subscriptionId": "s", "resourceGroup": "r", "clusterName": "c"},
            {},
            ("s", "r", "c"),
        ),
    ],
)
def test_cluster_coordinates_come_from_config_first_then_environment(
    config: dict[str, object], environ: dict[str, str], expected: tuple[str, str, str]
) -> None:
    settings = aks_settings(config, environ)
    assert (settings.subscription_id, settings.resource_group, settings.cluster_name) == expected


@pytest.mark.parametrize(
    ("missing", "path", "variable"),
    [
        ("AZURE_SUBSCRIPTION_ID", "$.azure.subscriptionId", "AZURE_SUBSCRIPTION_ID"),
        ("SURGE_RESOURCE_GROUP", "$.azure.resourceGroup", "SURGE_RESOURCE_GROUP"),
        ("SURGE_CLUSTER_NAME", "$.azure.clusterName", "SURGE_CLUSTER_NAME"),
    ],
)
def test_a_missing_coordinate_names_the_config_field_and_the_variable(
    missing: str, path: str, variable: str
) -> None:
    environ = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ValidationError) as raised:
        aks_settings({}, environ)
    assert raised.value.path == path
    assert variable in raised.value.reason


def test_endpoints_and_pool_selection_are_read_from_the_environment() -> None:
    settings = aks_settings(
        {},
        {
            **ENV,
            "SURGE_ARM_ENDPOINT": "https://127.0.0.1:8443/",
            "AZURE_AUTHORITY_HOST": "https://127.0.0.1:8443",
            "SURGE_MANAGED_POOLS": "spot1, reg1",
            "SURGE_MANAGED_TAG": "team=web",
        },
    )
    assert settings.arm_endpoint == "https://127.0.0.1:8443"
    assert settings.scope == "https://127.0.0.1:8443/.default"
    assert settings.authority_host == "https://127.0.0.1:8443"
    assert settings.managed_pools == ("spot1", "reg1")
    assert settings.managed_tag == ("team", "web")


def test_a_managed_tag_without_a_value_separator_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        aks_settings({"managedTag": "surge.io/managed"}, ENV)
    assert raised.value.path == "$.azure.managedTag"


@pytest.mark.parametrize(
    ("props", "tags", "overrides", "max_count", "min_count"),
    [
        ({}, {}, {}, AKS_POOL_NODE_LIMIT, 0),
        ({"maxCount": 9, "minCount": 2}, {}, {}, 9, 2),
        ({"maxCount": 9}, {"surge.io/max-count": "12", "surge.io/min-count": "1"}, {}, 12, 1),
        ({"maxCount": 9}, {"surge.io/max-count": "12"}, {"p1": 3}, 3, 0),
        ({"mode": "System"}, {}, {}, AKS_POOL_NODE_LIMIT, 1),
    ],
)
def test_pool_bounds_come_from_config_then_tags_then_the_pool(
    props: dict[str, Any],
    tags: dict[str, str],
    overrides: dict[str, int],
    max_count: int,
    min_count: int,
) -> None:
    settings = AksSettings("s", "r", "c", max_counts=overrides)
    pool = pool_from_arm(arm_pool(tags=tags, **props), settings)
    assert (pool.max_count, pool.min_count) == (max_count, min_count)


def test_a_spot_system_pool_maps_priority_mode_zones_and_version() -> None:
    pool = pool_from_arm(
        arm_pool(
            scaleSetPriority="Spot", mode="System", availabilityZones=["3", "1"],
            orchestratorVersion="1.30", currentOrchestratorVersion="1.30.6",
        ),
        SETTINGS,
    )
    assert (pool.priority, pool.mode, pool.zones) == (Priority.SPOT, PoolMode.SYSTEM, ("1", "3"))
    assert pool.kubernetes_version == "1.30.6"


@pytest.mark.parametrize(
    ("taint", "tags"),
    [("no-effect", {}), ("k=v:Sometimes", {}), ("k=v:NoSchedule", {"surge.io/max-count": "x"})],
)
def test_malformed_taints_and_count_tags_name_the_pool(taint: str, tags: dict[str, str]) -> None:
    with pytest.raises(ManagedPoolError) as raised:
        pool_from_arm(arm_pool("odd", nodeTaints=[taint], tags=tags), SETTINGS)
    assert "odd" in raised.value.path


def test_a_selected_pool_with_autoscaling_enabled_is_refused_and_others_are_ignored() -> None:
    bodies = [
        arm_pool("auto", enableAutoScaling=True, tags={"surge.io/managed": "true"}),
        arm_pool("free", enableAutoScaling=True),
    ]
    with pytest.raises(ManagedPoolError) as raised:
        managed_pools(bodies, SETTINGS)
    assert raised.value.path == "agentPools[auto]"
    assert managed_pools(bodies[1:], SETTINGS) == ()


@pytest.mark.parametrize(
    ("props", "count", "code"),
    [
        ({"mode": "System"}, 0, "SystemPoolMinimum"),
        ({"enableAutoScaling": True}, 3, "AutoScalingEnabled"),
        ({}, -1, "InvalidCount"),
    ],
)
def test_changes_that_break_a_pool_rule_are_refused(
    props: dict[str, Any], count: int, code: str
) -> None:
    settings = AksSettings("s", "r", "c", managed_pools=("p1",))
    with pytest.raises(Refused) as raised:
        check_change(arm_pool(**props), settings, count)
    assert raised.value.code == code


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_store_keeps_one_operation_per_pool_until_it_is_deleted(
    kind: str, tmp_path: Path
) -> None:
    store: OperationStore = (
        MemoryStore() if kind == "memory" else JsonFileStore(str(tmp_path / "ops.json"))
    )
    first = Operation("spot1", "scale", 3, "token-a", NOW, before=1)
    store.save(first)
    assert store.load()["spot1"].before == 1  # the count it started from survives a restart
    store.save(Operation("reg1", "scale", 2, "token-b", NOW))
    deleting = Operation("spot1", "delete-machines", 2, "token-c", NOW + timedelta(seconds=5),
                         ("aks-spot1-3",))
    store.save(deleting)
    store.delete("reg1")
    store.delete("never-there")
    assert store.load() == {"spot1": deleting}  # with the machines: a new leader reads them


def test_an_operation_stored_without_machines_or_start_count_loads_without_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ops.json"
    path.write_text(json.dumps({"operations": [{
        "pool": "p", "kind": "delete-machines", "target": 1, "token": "t",
        "started": NOW.isoformat()}]}))
    loaded = JsonFileStore(str(path)).load()["p"]
    assert (loaded.machines, loaded.before) == ((), None)


@pytest.mark.parametrize(
    ("content", "path"),
    [
        ("not json", "ops.json"),
        (json.dumps({"operations": {}}), "ops.json$.operations"),
        (json.dumps({"operations": [{"pool": "p"}]}), "ops.json$.operations[0]"),
        (
            json.dumps({"operations": [{"pool": "p", "kind": "scale", "target": "3",
                                        "token": "t", "started": NOW.isoformat()}]}),
            "ops.json$.operations[0].target",
        ),
        (
            json.dumps({"operations": [{"pool": "p", "kind": "delete-machines", "target": 3,
                                        "token": "t", "started": NOW.isoformat(),
                                        "machines": "n1"}]}),
            "ops.json$.operations[0].machines",
        ),
        (
            json.dumps({"operations": [{"pool": "p", "kind": "scale", "target": 3,
                                        "token": "t", "started": NOW.isoformat(),
                                        "before": -1}]}),
            "ops.json$.operations[0].before",
        ),
    ],
)
def test_a_damaged_store_file_names_the_bad_field(
    content: str, path: str, tmp_path: Path
) -> None:
    file = tmp_path / "ops.json"
    file.write_text(content)
    with pytest.raises(ValidationError) as raised:
        JsonFileStore(str(file)).load()
    assert raised.value.path.endswith(path)


@pytest.mark.parametrize(
    ("code", "message", "priority", "partial", "expected"),
    [
        ("OperationNotAllowed", "exceeding approved LowPriorityCores quota", Priority.SPOT,
         False, CAPACITY),
        ("OperationNotAllowed", "exceeding approved Total Regional Cores quota",
         Priority.REGULAR, True, LOW_QUOTA),
        ("OperationNotAllowed", "another operation is in progress", Priority.SPOT, False,
         DEFAULT),
        ("OverconstrainedZonalAllocationRequest", "", Priority.SPOT, False, CAPACITY),
        ("InvalidParameter", "", Priority.REGULAR, False, DEFAULT),
    ],
)
def test_quota_reported_as_operation_not_allowed_backs_off_like_quota(
    code: str, message: str, priority: Priority, partial: bool, expected: timedelta
) -> None:
    assert backoff_duration(code, priority, partial=partial, message=message) == expected


def test_a_quota_message_under_a_generic_code_is_classified_as_quota_exceeded() -> None:
    assert classify("OperationNotAllowed", "LowPriorityCores quota") == "QuotaExceeded"
    assert classify("OperationNotAllowed", "busy") == "OperationNotAllowed"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("17", 17.0),
        ("Wed, 25 Nov 2026 12:01:30 GMT", 90.0),
        ("soon", DEFAULT_RETRY_AFTER),
        (None, DEFAULT_RETRY_AFTER),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(header: str | None, expected: float) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert retry_after(headers, now=NOW) == expected
