"""The Bicep for the cluster surge expects, checked for structure (the compiler is not available
here): modules and parameters line up, the cluster has what surge relies on, the pools are the
ones the example configuration manages, and the controller's identity can do exactly what the
code asks of ARM, on this cluster only."""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest
import yaml

from tests.deploy.bicep import BicepFile, Declaration, read, read_params
from tests.deploy.support import DEPLOY, KUSTOMIZE, ROOT, only, render

AZURE = DEPLOY / "azure"
CLUSTER = "Microsoft.ContainerService/managedClusters"
POOL = f"{CLUSTER}/agentPools"
PROVIDER = "Microsoft.ContainerService/managedClusters"
# How each SDK operation the code calls is authorized by ARM.
ARM_ACTIONS = {
    ("agent_pools", "list"): f"{PROVIDER}/agentPools/read",
    ("agent_pools", "get"): f"{PROVIDER}/agentPools/read",
    ("agent_pools", "begin_create_or_update"): f"{PROVIDER}/agentPools/write",
    ("agent_pools", "begin_delete_machines"): f"{PROVIDER}/agentPools/deleteMachines/action",
    ("managed_clusters", "get"): f"{PROVIDER}/read",
}
# Granted though no call needs it yet: issue 6 asks for read access to the cluster itself.
GRANTED_BY_DESIGN = {f"{PROVIDER}/read"}


def main_file() -> BicepFile:
    return read(AZURE / "main.bicep")


def module(path: str) -> BicepFile:
    return read(AZURE / path)


def text(value: str) -> str:
    """A Bicep string literal's content."""
    assert value.startswith("'") and value.endswith("'"), value
    return value[1:-1]


def param_list(value: str) -> list[str]:
    return re.findall(r"'([^']*)'", value)


def one(file: BicepFile, kind: str) -> Declaration:
    (found,) = [d for d in file.resources(kind) if d.body.get("properties") is not None]
    return found


def cluster_properties() -> dict[str, Any]:
    return dict(one(module("modules/cluster.bicep"), CLUSTER).body["properties"])


@pytest.mark.parametrize("symbol", ["monitoring", "cluster", "userPools", "controller"])
def test_each_module_gets_every_parameter_it_declares_and_no_other(symbol: str) -> None:
    (use,) = [m for m in main_file().modules() if m.symbol == symbol]
    declared = module(use.target).params
    passed = set(use.body["params"])
    assert passed <= declared.keys()
    assert {name for name, default in declared.items() if default is None} <= passed


def test_the_parameters_file_sets_every_required_parameter_and_only_declared_ones() -> None:
    using, values = read_params(AZURE / "main.bicepparam")
    assert using == "main.bicep"
    params = main_file().params
    assert values.keys() <= params.keys()
    assert {n for n, default in params.items() if default is None} <= values.keys()


@pytest.mark.parametrize(("path", "expected"), [
    (("enableRBAC",), "true"),
    (("disableLocalAccounts",), "true"),
    (("aadProfile", "managed"), "true"),
    (("aadProfile", "enableAzureRBAC"), "false"),  # Entra ID with Kubernetes RBAC
    (("oidcIssuerProfile", "enabled"), "true"),
    (("securityProfile", "workloadIdentity", "enabled"), "true"),
])
def test_the_cluster_has_entra_id_kubernetes_rbac_and_workload_identity(
    path: tuple[str, ...], expected: str
) -> None:
    value: Any = cluster_properties()
    for key in path:
        value = value[key]
    assert value == expected


def test_the_system_pool_spans_every_zone_with_a_node_in_each() -> None:
    (system,) = cluster_properties()["agentPoolProfiles"]
    assert text(system["mode"]) == "System"
    assert system["availabilityZones"] == "zones" and system["count"] == "length(zones)"
    _, values = read_params(AZURE / "main.bicepparam")
    assert param_list(values["zones"]) == ["1", "2", "3"]


def user_pools() -> dict[str, dict[str, Any]]:
    """Pool name -> properties, the loops unrolled over the parameter file's zones."""
    _, values = read_params(AZURE / "main.bicepparam")
    pools = {}
    for declaration in module("modules/user-pools.bicep").resources(POOL):
        for zone in param_list(values["zones"]):
            name = text(declaration.body["name"]).replace("${zone}", zone)
            pools[name] = {**declaration.body["properties"], "zone": zone}
    return pools


def test_user_pools_are_one_per_zone_and_priority_and_not_autoscaled() -> None:
    pools = user_pools()
    assert len(pools) == 6
    for props in pools.values():
        assert props["enableAutoScaling"] == "false"
        assert text(props["mode"]) == "User"
        assert props["availabilityZones"] == ["zone"]
    priorities = {(text(p["scaleSetPriority"]), p["zone"]) for p in pools.values()}
    assert priorities == {(kind, z) for kind in ("Spot", "Regular") for z in ("1", "2", "3")}


def test_spot_pools_delete_on_eviction_and_pay_up_to_the_regular_price() -> None:
    for props in user_pools().values():
        if text(props["scaleSetPriority"]) == "Spot":
            assert text(props["scaleSetEvictionPolicy"]) == "Delete"
            assert props["spotMaxPrice"] == "-1"


def test_the_pools_created_are_the_pools_the_example_configuration_manages() -> None:
    config = yaml.safe_load((KUSTOMIZE / "base" / "config.yaml").read_text("utf-8"))
    assert {p["name"] for p in config["pools"]} == set(user_pools())


def identity() -> BicepFile:
    return module("modules/controller-identity.bicep")


def test_the_federated_credential_is_for_the_rendered_service_account() -> None:
    objects = render("base")
    account = only(objects, "ServiceAccount")["metadata"]
    federation = one(identity(), "Microsoft.ManagedIdentity/userAssignedIdentities/"
                     "federatedIdentityCredentials").body["properties"]
    assert federation["issuer"] == "oidcIssuerUrl"
    assert federation["audiences"] == ["'api://AzureADTokenExchange'"]
    (use,) = [m for m in main_file().modules() if m.symbol == "controller"]
    _, values = read_params(AZURE / "main.bicepparam")
    bound = {"namespace": text(values[use.body["params"]["namespace"]]),
             "serviceAccount": text(values[use.body["params"]["serviceAccount"]])}
    subject = text(federation["subject"]).replace("${namespace}", bound["namespace"]).replace(
        "${serviceAccount}", bound["serviceAccount"])
    assert subject == f"system:serviceaccount:{account['namespace']}:{account['name']}"
    assert use.body["params"]["oidcIssuerUrl"] == "cluster.outputs.oidcIssuerUrl"


def arm_operations() -> set[tuple[str, str]]:
    """(operation group, method) of every Azure SDK call in autoscaler/cloud."""
    found = set()
    for path in (ROOT / "autoscaler" / "cloud").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr in {"agent_pools", "managed_clusters"}):
                found.add((node.value.attr, node.attr))
    return found


def test_the_custom_role_allows_exactly_the_arm_operations_the_code_calls() -> None:
    operations = arm_operations()
    assert ("agent_pools", "begin_create_or_update") in operations
    unknown = operations - ARM_ACTIONS.keys()
    assert not unknown, f"map these SDK operations to ARM actions: {sorted(unknown)}"
    used = {ARM_ACTIONS[op] for op in operations}
    role = one(identity(), "Microsoft.Authorization/roleDefinitions").body["properties"]
    (permissions,) = role["permissions"]
    actions = {text(a) for a in permissions["actions"]}
    assert actions == used | GRANTED_BY_DESIGN
    assert all(permissions[k] == "[]" for k in ("notActions", "dataActions", "notDataActions"))


def test_the_role_is_assignable_and_assigned_on_the_cluster_only() -> None:
    role = one(identity(), "Microsoft.Authorization/roleDefinitions").body["properties"]
    assert role["assignableScopes"] == ["cluster.id"]
    assignment = one(identity(), "Microsoft.Authorization/roleAssignments").body
    assert assignment["scope"] == "cluster"
    assert assignment["properties"]["principalId"] == "identity.properties.principalId"
    assert text(assignment["properties"]["principalType"]) == "ServicePrincipal"
