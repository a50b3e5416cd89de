"""AksProvider with the real azure-mgmt-containerservice and azure-identity against the ARM twin."""

from __future__ import annotations

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError

from autoscaler.cloud.aks import AksProvider
from autoscaler.cloud.aks_settings import aks_settings
from autoscaler.cloud.provider import (
    CloudError,
    Conflict,
    ManagedPoolError,
    OperationState,
    PreconditionFailed,
    Refused,
    Throttled,
)
from autoscaler.model.node import Taint
from autoscaler.model.pod import TaintEffect
from autoscaler.model.pool import PoolMode, Priority
from simulator.twin import ArmTwin
from tests.adapters.support import (
    CLIENT_ID,
    FEDERATED_TOKEN,
    secret_credential,
    twin_provider,
    twin_settings,
)


def test_a_client_secret_credential_lists_managed_pools_with_their_aks_fields(
    arm_twin: ArmTwin,
) -> None:
    arm_twin.model.add_pool(
        "spot1",
        "Standard_D8s_v5",
        3,
        zones=("1",),
        spot=True,
        tags={"surge.io/managed": "true", "surge.io/max-count": "40"},
        nodeLabels={"team": "web"},
        nodeTaints=["dedicated=web:NoSchedule"],
        maxPods=110,
        osDiskSizeGB=64,
        currentOrchestratorVersion="1.31.2",
    )
    (pool,) = twin_provider(arm_twin).list_pools()
    assert (pool.name, pool.vm_size, pool.count, pool.max_count) == (
        "spot1", "Standard_D8s_v5", 3, 40
    )
    assert (pool.zones, pool.priority, pool.mode) == (("1",), Priority.SPOT, PoolMode.USER)
    assert pool.labels == (("team", "web"),)
    assert pool.taints == (Taint("dedicated", "web", TaintEffect.NO_SCHEDULE),)
    assert (pool.max_pods, pool.os_disk_size_gb, pool.kubernetes_version) == (110, 64, "1.31.2")
    assert arm_twin.model.grants == ["client_secret"]


def test_default_credential_through_workload_identity_env_vars_reaches_the_twin(
    arm_twin: ArmTwin, monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    token_file = tmp_path / "azure-identity-token"  # type: ignore[operator]
    token_file.write_text(FEDERATED_TOKEN)
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_TENANT_ID", arm_twin.model.tenant)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", arm_twin.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", arm_twin.ca_file)  # no connection_verify anywhere
    arm_twin.model.add_pool("user1", count=2)
    model = arm_twin.model
    settings = aks_settings(  # the in-cluster path: everything from the environment
        {},
        {
            "AZURE_SUBSCRIPTION_ID": model.subscription,
            "SURGE_RESOURCE_GROUP": model.resource_group,
            "SURGE_CLUSTER_NAME": model.cluster,
            "SURGE_ARM_ENDPOINT": arm_twin.url,
            "AZURE_AUTHORITY_HOST": arm_twin.url,
        },
    )
    provider = AksProvider(settings)
    assert [p.name for p in provider.list_pools()] == ["user1"]
    assert arm_twin.model.grants == ["client_assertion"]


def test_a_wrong_client_secret_is_an_authentication_failure(arm_twin: ArmTwin) -> None:
    provider = AksProvider(twin_settings(arm_twin), secret_credential(arm_twin, secret="wrong"))
    with pytest.raises(CloudError) as raised:
        provider.list_pools()
    assert raised.value.code == "AuthenticationFailed"
    assert arm_twin.requests["GET agentPools"] == 0


def test_scale_puts_the_count_with_if_match_and_returns_before_the_operation_ends(
    arm_twin: ArmTwin,
) -> None:
    arm_twin.model.add_pool("user1", count=2)
    etag = arm_twin.model.pools["user1"]["properties"]["eTag"]
    op = twin_provider(arm_twin).scale("user1", 5)
    assert (op.pool, op.kind, op.target) == ("user1", "scale", 5)
    assert op.token
    assert arm_twin.model.if_matches == [etag]
    assert [o.target for o in arm_twin.model.in_progress()] == [5]
    assert arm_twin.requests["PUT agentPool"] == 1
    assert arm_twin.requests["GET operation"] == 0


def test_an_operation_is_in_progress_until_the_twin_ends_it_then_succeeded(
    arm_twin: ArmTwin,
) -> None:
    arm_twin.model.add_pool("user1", count=2)
    provider = twin_provider(arm_twin)
    op = provider.scale("user1", 4)
    assert provider.operation(op).state is OperationState.IN_PROGRESS
    arm_twin.model.complete_operations()
    assert provider.operation(op).state is OperationState.SUCCEEDED
    assert [p.count for p in provider.list_pools()] == [4]
    assert len(arm_twin.model.machines["user1"]) == 4


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("QuotaExceeded", "Operation results in exceeding quota limits of Core."),
        (
            "OperationNotAllowed",
            "Operation could not be completed as it results in exceeding approved "
            "LowPriorityCores quota.",
        ),
        ("ZonalAllocationFailed", "Allocation failed in zone 1."),
        ("AllocationFailed", "We do not have sufficient capacity for the requested VM size."),
        ("OverconstrainedAllocationRequest", "Allocation failed: too restrictive."),
        ("OverconstrainedZonalAllocationRequest", "Zonal allocation failed: too restrictive."),
        ("SkuNotAvailable", "The requested VM size is currently not available."),
    ],
)
def test_a_failure_at_the_end_of_the_operation_reports_its_arm_error_code(
    arm_twin: ArmTwin, code: str, message: str
) -> None:
    arm_twin.model.add_pool("spot1", count=0, spot=True, zones=("2",))
    provider = twin_provider(arm_twin)
    op = provider.scale("spot1", 3)
    arm_twin.model.fail_operation("spot1", code, message)
    arm_twin.model.complete_operations()
    status = provider.operation(op)
    assert (status.state, status.error_code, status.message) == (
        OperationState.FAILED, code, message
    )
    assert arm_twin.model.count("spot1") == 0


def test_a_canceled_operation_is_a_failure_named_canceled(arm_twin: ArmTwin) -> None:
    arm_twin.model.add_pool("user1", count=1)
    provider = twin_provider(arm_twin)
    op = provider.scale("user1", 2)
    arm_twin.model.fail_operation("user1", "Canceled")
    arm_twin.model.complete_operations()
    status = provider.operation(op)
    assert (status.state, status.error_code) == (OperationState.FAILED, "Canceled")


def test_a_partly_successful_operation_leaves_the_count_it_reached(arm_twin: ArmTwin) -> None:
    arm_twin.model.add_pool("spot1", count=1, spot=True)
    provider = twin_provider(arm_twin)
    op = provider.scale("spot1", 6)
    arm_twin.model.fail_operation("spot1", "QuotaExceeded", achieved=4)
    arm_twin.model.complete_operations()
    assert provider.operation(op).error_code == "QuotaExceeded"
    assert [p.count for p in provider.list_pools()] == [4]


@pytest.mark.parametrize(
    ("status", "code", "message", "retry_after", "expected", "expected_code"),
    [
        (409, "OperationNotAllowed", "another operation is in progress", None, Conflict,
         "OperationNotAllowed"),
        (429, "TooManyRequests", "throttled", 17, Throttled, "TooManyRequests"),
        (400, "InvalidParameter", "count is invalid", None, CloudError, "InvalidParameter"),
        (412, "PreconditionFailed", "eTag mismatch", None, PreconditionFailed,
         "PreconditionFailed"),
        (409, "OperationNotAllowed", "exceeding approved standardDSv5Family Cores quota", None,
         CloudError, "OperationNotAllowed"),
    ],
)
def test_a_refused_put_raises_the_matching_cloud_error(
    arm_twin: ArmTwin,
    status: int,
    code: str,
    message: str,
    retry_after: float | None,
    expected: type[CloudError],
    expected_code: str,
) -> None:
    arm_twin.model.add_pool("user1", count=1)
    arm_twin.model.fail_next("PUT agentPool", status, code, message, retry_after=retry_after)
    with pytest.raises(CloudError) as raised:
        twin_provider(arm_twin).scale("user1", 2)
    assert type(raised.value) is expected
    assert raised.value.code == expected_code
    assert message in raised.value.message
    if retry_after is not None:
        assert isinstance(raised.value, Throttled)
        assert raised.value.retry_after == retry_after
    assert arm_twin.model.in_progress() == []
    assert arm_twin.requests["PUT agentPool"] == 1  # SDK retries are off


@pytest.mark.parametrize("route", ["GET agentPools", "GET operation"])
def test_throttled_reads_and_polls_carry_retry_after(arm_twin: ArmTwin, route: str) -> None:
    arm_twin.model.add_pool("user1", count=1)
    provider = twin_provider(arm_twin)
    op = provider.scale("user1", 2)
    arm_twin.model.fail_next(route, 429, "TooManyRequests", retry_after=42)
    with pytest.raises(Throttled) as raised:
        provider.list_pools() if route == "GET agentPools" else provider.operation(op)
    assert raised.value.retry_after == 42


def test_the_twin_answers_412_to_a_put_whose_etag_is_stale(arm_twin: ArmTwin) -> None:
    arm_twin.model.add_pool("user1", count=1)
    provider = twin_provider(arm_twin)
    model = arm_twin.model
    pool = provider.client.agent_pools.get(model.resource_group, model.cluster, "user1")
    arm_twin.model.touch("user1")
    assert pool.properties is not None
    pool.properties.count = 3
    with pytest.raises(ResourceModifiedError):
        provider.client.agent_pools.begin_create_or_update(
            arm_twin.model.resource_group, arm_twin.model.cluster, "user1", pool,
            etag=pool.properties.e_tag, match_condition=MatchConditions.IfNotModified,
            polling=False,
        )
    assert arm_twin.model.count("user1") == 1


def test_a_second_scale_while_one_runs_is_a_conflict(arm_twin: ArmTwin) -> None:
    arm_twin.model.add_pool("user1", count=1)
    provider = twin_provider(arm_twin)
    provider.scale("user1", 2)
    with pytest.raises(Conflict) as raised:
        provider.scale("user1", 3)
    assert raised.value.code == "OperationNotAllowed"


def test_delete_machines_removes_the_named_nodes_when_the_operation_ends(arm_twin: ArmTwin) -> None:
    arm_twin.model.add_pool("user1", count=3)
    doomed = arm_twin.model.machines["user1"][1]
    provider = twin_provider(arm_twin)
    op = provider.delete_machines("user1", [doomed])
    assert (op.kind, op.target) == ("delete-machines", 2)
    assert provider.operation(op).state is OperationState.IN_PROGRESS
    arm_twin.model.complete_operations()
    assert provider.operation(op).state is OperationState.SUCCEEDED
    assert doomed not in arm_twin.model.machines["user1"]
    assert arm_twin.model.count("user1") == 2


def test_deleting_a_machine_the_pool_does_not_have_is_invalid(arm_twin: ArmTwin) -> None:
    arm_twin.model.add_pool("user1", count=1)
    with pytest.raises(CloudError) as raised:
        twin_provider(arm_twin).delete_machines("user1", ["aks-user1-12345678-vmss00zzzz"])
    assert raised.value.code == "InvalidParameter"


def test_an_operation_whose_record_is_gone_is_reported_failed_not_in_progress(
    arm_twin: ArmTwin,
) -> None:
    arm_twin.model.add_pool("user1", count=1)
    provider = twin_provider(arm_twin)
    op = provider.scale("user1", 2)
    arm_twin.model.operations.clear()
    status = provider.operation(op)
    assert (status.state, status.error_code) == (OperationState.FAILED, "OperationNotFound")


@pytest.mark.parametrize(
    ("selection", "listed"),
    [
        ({}, ["tagged"]),
        ({"managed_pools": ("plain",)}, ["plain"]),
        ({"managed_tag": ("team", "web")}, ["web"]),
        ({"managed_pools": ("plain",), "managed_tag": ("team", "web")}, ["plain", "web"]),
    ],
)
def test_pools_are_managed_by_name_or_by_tag(
    arm_twin: ArmTwin, selection: dict[str, object], listed: list[str]
) -> None:
    arm_twin.model.add_pool("tagged")
    arm_twin.model.add_pool("plain", tags={})
    arm_twin.model.add_pool("web", tags={"team": "web"})
    assert [p.name for p in twin_provider(arm_twin, **selection).list_pools()] == listed


def test_managing_a_pool_aks_autoscales_is_refused_naming_the_pool(arm_twin: ArmTwin) -> None:
    arm_twin.model.add_pool("auto", enableAutoScaling=True, minCount=1, maxCount=5)
    with pytest.raises(ManagedPoolError) as raised:
        twin_provider(arm_twin).list_pools()
    assert "auto" in str(raised.value) and "enableAutoScaling" in str(raised.value)


@pytest.mark.parametrize(
    ("pool", "kwargs", "action", "code"),
    [
        ("sys", {"mode": "System"}, ("scale", 0), "SystemPoolMinimum"),
        ("sys", {"mode": "System"}, ("delete", 2), "SystemPoolMinimum"),
        ("other", {"tags": {}}, ("scale", 5), "NotManaged"),
    ],
)
def test_changes_that_break_a_pool_rule_are_refused_before_any_put(
    arm_twin: ArmTwin,
    pool: str,
    kwargs: dict[str, object],
    action: tuple[str, int],
    code: str,
) -> None:
    arm_twin.model.add_pool(pool, count=2, **kwargs)  # type: ignore[arg-type]
    provider = twin_provider(arm_twin)
    with pytest.raises(Refused) as raised:
        if action[0] == "scale":
            provider.scale(pool, action[1])
        else:
            provider.delete_machines(pool, arm_twin.model.machines[pool][: action[1]])
    assert raised.value.code == code
    assert pool in raised.value.message
    assert arm_twin.requests["PUT agentPool"] + arm_twin.requests["POST deleteMachines"] == 0
