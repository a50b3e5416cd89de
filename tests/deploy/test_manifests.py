"""The kustomize trees render, validate against the Kubernetes schemas, and agree with the code:
the configuration they mount is one ``surge run`` accepts, and the names, ports and namespace
it resolves to are the ones the manifests grant, expose and probe."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from autoscaler.control.config import Config, parse_config
from autoscaler.control.config import read_yaml as read_config_yaml
from tests.deploy.support import (
    DEPLOY,
    KUSTOMIZE,
    TREES,
    Obj,
    config_text,
    container,
    env_of,
    of_kind,
    only,
    render,
)

KUBERNETES_VERSION = "1.31.0"  # the oldest minor AKS supports as of this writing
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def resolved_config(objects: list[Obj]) -> Config:
    """What ``surge run`` would resolve from the mounted file and the container's environment."""
    value, _ = read_config_yaml("config.yaml", config_text(objects))
    return parse_config(value, env_of(objects))


def validate(obj: Mapping[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is in the dev extra: make setup")
    kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("tree", TREES)
def test_each_tree_renders_to_named_objects_in_surges_namespace(tree: str) -> None:
    objects = render(tree)
    assert objects
    namespace = only(objects, "Namespace")["metadata"]["name"]
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for obj in objects:
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]


@pytest.mark.parametrize("tree", TREES)
def test_every_built_in_object_validates_against_the_kubernetes_schema(tree: str) -> None:
    for obj in render(tree):
        if obj["kind"] not in CUSTOM_KINDS:
            validate(obj)


def test_the_schema_check_rejects_a_malformed_deployment() -> None:
    deployment = copy.deepcopy(only(render("base"), "Deployment"))
    deployment["spec"]["replicas"] = "two"
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"][
        "pathh"] = "/healthz"
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    with pytest.raises(kubernetes_validate.ValidationError, match=r"replicas|pathh"):
        validate(deployment)


def test_the_deployment_runs_two_leader_elected_critical_replicas() -> None:
    objects = render("base")
    deployment = only(objects, "Deployment")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert resolved_config(objects).leader_election is True
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()


def test_the_pod_uses_workload_identity_through_its_service_account() -> None:
    objects = render("base")
    pod = only(objects, "Deployment")["spec"]["template"]
    account = only(objects, "ServiceAccount", pod["spec"]["serviceAccountName"])
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]


def test_the_container_is_restricted_and_writes_only_to_its_tmp_volume() -> None:
    objects = render("base")
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert RESTRICTED_POD.items() <= spec["securityContext"].items()
    assert spec["securityContext"]["runAsUser"] >= 10000
    security = container(objects)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    writable = [m for m in container(objects)["volumeMounts"] if not m.get("readOnly")]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert [(m["mountPath"], "emptyDir" in volumes[m["name"]]) for m in writable] == [
        ("/tmp", True)]


def test_the_container_has_requests_and_limits() -> None:
    resources = container(render("base"))["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[kind].keys()


def test_probes_metrics_and_service_all_use_the_port_the_config_resolves_to() -> None:
    objects = render("base")
    port = resolved_config(objects).metrics.port
    named = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    probes = {kind: container(objects)[kind]["httpGet"]
              for kind in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert named.get(probe["port"], probe["port"]) == port
    service = only(objects, "Service")
    assert [named.get(p["targetPort"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        port]
    assert service["spec"]["selector"].items() <= only(objects, "Deployment")["spec"][
        "template"]["metadata"]["labels"].items()


def test_the_lease_and_status_live_in_the_namespace_the_role_is_in() -> None:
    objects = render("base")
    config = resolved_config(objects)
    role = only(objects, "Role")
    assert config.namespace == role["metadata"]["namespace"]
    assert config.lease.namespace == role["metadata"]["namespace"]
    named = {(r["resources"][0], n) for r in role["rules"] for n in r.get("resourceNames", [])}
    assert named == {("leases", config.lease.name), ("configmaps", config.status_configmap)}


def test_the_pod_disruption_budget_keeps_one_replica_up() -> None:
    objects = render("base")
    pdb = only(objects, "PodDisruptionBudget")
    labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_network_policy_admits_only_the_metrics_port_and_lets_out_dns_and_https() -> None:
    objects = render("base")
    policy = only(objects, "NetworkPolicy")
    port = resolved_config(objects).metrics.port
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [port]
    egress = sorted((p["protocol"], p["port"]) for r in policy["spec"]["egress"]
                    for p in r["ports"])
    assert egress == [("TCP", 53), ("TCP", 443), ("UDP", 53)]


def test_the_mounted_configuration_is_the_example_configuration() -> None:
    """One text: kustomize reads files only under the base, so the base holds the example and
    deploy/config.example.yaml (documented elsewhere) must not drift from it."""
    base_copy = (KUSTOMIZE / "base" / "config.yaml").read_text("utf-8")
    assert config_text(render("base")) == base_copy
    example = DEPLOY / "config.example.yaml"
    if example.exists():
        assert example.read_text("utf-8") == base_copy


@pytest.mark.parametrize(("tree", "dry_run"), [
    ("base", False), ("overlays/dry-run", True), ("overlays/prometheus-operator", False)])
def test_only_the_dry_run_overlay_resolves_to_dry_run(tree: str, dry_run: bool) -> None:
    assert resolved_config(render(tree)).loop.dry_run is dry_run


def test_the_service_monitor_scrapes_the_metrics_service_port() -> None:
    objects = render("overlays/prometheus-operator")
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [
        (next(iter(ports)), "/metrics")]


def test_every_alert_has_an_expression_a_severity_and_a_summary() -> None:
    rules = [r for g in only(render("overlays/prometheus-operator"), "PrometheusRule")["spec"][
        "groups"] for r in g["rules"]]
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"].strip()
    for wanted in ("SurgeLoopStuck", "SurgePodsPendingTooLong", "SurgeBackoffFlapping",
                   "SurgeScaleFailures"):
        assert wanted in names


def test_overlays_change_only_what_they_are_for() -> None:
    base = {(o["kind"], o["metadata"]["name"]) for o in render("base")}
    assert {(o["kind"], o["metadata"]["name"]) for o in render("overlays/dry-run")} == base
    operator = {(o["kind"], o["metadata"]["name"]) for o in render(
        "overlays/prometheus-operator")}
    assert operator - base == {("ServiceMonitor", "surge"), ("PrometheusRule", "surge")}
    assert len(of_kind(render("overlays/dry-run"), "Deployment")) == 1
