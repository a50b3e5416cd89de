"""The ClusterRole and Role grant exactly what the code asks of the Kubernetes API, in the
namespaces it asks it, and ``surge run`` with the rendered configuration is refused nothing.

The code's calls are read off autoscaler/ (``rbac.calls_in_code``); the rendered grants are
evaluated like the RBAC authorizer would (``rbac.Grants``). The end-to-end test runs
``surge run --once`` with the mounted configuration and the pod's environment against the
Kubernetes and ARM twins, then the scale-down calls a single pass cannot reach (cordon,
uncordon, eviction), and checks every request the twin served."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from autoscaler.control.cli import main
from autoscaler.control.kubeobjects import KubeDecoder
from autoscaler.kube.cache import CacheOptions, ClusterCache
from autoscaler.kube.client import KubeApi, api_client
from autoscaler.kube.source import EvictionResult
from simulator.twin import ArmTwin
from simulator.twin.kube import KubeTwin
from tests.adapters.support import CLIENT_ID, SECRET, fresh_model
from tests.builders import SPOT_TOLERATION, GiB, node, pod
from tests.deploy.rbac import Access, Grants, access_of, calls_in_code
from tests.deploy.support import Obj, config_text, env_of, only, render

BOUND = 20.0  # seconds: the longest a twin-backed step may take before the test fails


def grants(objects: list[Obj]) -> Grants:
    deployment = only(objects, "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    return Grants.of(objects, deployment["metadata"]["namespace"], account)


def test_the_code_makes_kubernetes_calls_the_scan_can_see() -> None:
    """Guards the scan itself: the calls of kube/client.py, lease.py and status.py are found."""
    calls = calls_in_code()
    assert {c.module for c in calls} >= {"autoscaler/kube/client.py",
                                         "autoscaler/kube/lease.py", "autoscaler/kube/status.py"}
    assert ("coordination.k8s.io", "leases", "update") in {c.access.rule for c in calls}


@pytest.mark.parametrize("tree", ["base", "overlays/dry-run", "overlays/prometheus-operator"])
def test_the_roles_grant_exactly_the_verbs_the_code_uses(tree: str) -> None:
    used = {c.access.rule for c in calls_in_code()}
    granted = grants(render(tree)).rules()
    assert sorted(granted - used) == [], "granted but never called"
    assert sorted(used - granted) == [], "called but not granted"


def test_objects_the_code_reads_by_name_are_granted_only_in_its_own_namespace() -> None:
    """The Lease and the status ConfigMap: namespaced objects the code gets, updates or patches
    by name are surge's own; a ClusterRole would grant them in every namespace."""
    owned = {(c.access.group, c.access.resource) for c in calls_in_code()
             if c.access.namespace and c.access.name and "/" not in c.access.resource
             and c.access.verb in ("get", "update", "patch")}
    assert owned == {("coordination.k8s.io", "leases"), ("", "configmaps")}
    cluster = grants(render("base")).cluster_rules()
    assert not [rule for rule in cluster if rule[:2] in owned]


def test_read_write_rules_on_owned_objects_name_them() -> None:
    for rule in only(render("base"), "Role")["rules"]:
        assert rule.get("resourceNames") or rule["verbs"] == ["create"], rule


def test_the_request_parser_reads_rbac_attributes_like_the_api_server() -> None:
    assert access_of("GET", "/api/v1/pods?limit=500&watch=true") == Access("watch", "", "pods")
    assert access_of("POST", "/api/v1/namespaces/a/pods/p/eviction") == Access(
        "create", "", "pods/eviction", "a", "p")
    assert access_of("PUT", "/apis/coordination.k8s.io/v1/namespaces/n/leases/surge") == Access(
        "update", "coordination.k8s.io", "leases", "n", "surge")
    assert access_of("GET", "/api/v1/nodes") == Access("list", "", "nodes")


def test_the_authorizer_honours_namespaces_and_resource_names() -> None:
    rules = grants(render("base"))
    namespace = only(render("base"), "Namespace")["metadata"]["name"]
    lease = ("get", "coordination.k8s.io", "leases")
    assert rules.allows(Access(*lease, namespace, "surge"))
    assert not rules.allows(Access(*lease, "default", "surge"))
    assert not rules.allows(Access(*lease, namespace, "other"))
    assert rules.allows(Access("create", "", "events", "anywhere"))
    assert not rules.allows(Access("delete", "", "pods", "anywhere", "p"))


# --- end to end against the twins ---------------------------------------------------------


@pytest.fixture
def pod_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The rendered container's environment; logging set up by ``surge run`` is undone."""
    env = env_of(render("base"), pod_name="surge-7c9f8d6b5-abcde")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("SURGE_DRY_RUN", raising=False)
    monkeypatch.setenv("SURGE_METRICS_PORT", "0")
    root = logging.getLogger()
    level = root.level
    yield env
    for handler in [h for h in root.handlers if h.get_name() == "surge"]:
        root.removeHandler(handler)
    root.setLevel(level)


def cluster(arm: ArmTwin, kube: KubeTwin, pools: list[str]) -> None:
    """Every configured pool in ARM (spot ones as spot), a pending burst in a user namespace,
    and a bound pod (the one the eviction asks for)."""
    for name in pools:
        arm.model.add_pool(name, "Standard_D4s_v5", 1 if name.startswith("reg") else 0,
                           zones=(name[-1],), spot=name.startswith("spot"))
    kube.add_node(node("aks-reg1-0", pool="reg1", zone="eastus-1"))
    kube.add_pod(pod("api-0", 500, GiB, namespace="shop", node_name="aks-reg1-0"))
    for i in range(12):  # more than the upcoming regular nodes hold: a spot scale-up
        kube.add_pod(pod(f"web-{i}", 1000, GiB, namespace="shop",
                         tolerations=(SPOT_TOLERATION,)))


def test_every_request_surge_run_makes_is_granted_by_the_rendered_roles(
    pod_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    objects = render("base")
    doc = yaml.safe_load(config_text(objects))
    with ArmTwin(fresh_model()) as arm, KubeTwin() as kube:
        cluster(arm, kube, [p["name"] for p in doc["pools"]])
        model = arm.model
        doc["azure"] = {"subscriptionId": model.subscription, "resourceGroup": model.resource_group,
                        "clusterName": model.cluster, "armEndpoint": arm.url,
                        "authorityHost": arm.url, "caBundle": arm.ca_file}
        doc["kubernetes"]["syncTimeout"] = f"{BOUND:g}s"
        config = tmp_path / "config.yaml"
        config.write_text(json.dumps(doc))
        for key, value in (("AZURE_TENANT_ID", model.tenant), ("AZURE_CLIENT_ID", CLIENT_ID),
                           ("AZURE_CLIENT_SECRET", SECRET)):
            monkeypatch.setenv(key, value)
        kubeconfig = kube.write_kubeconfig(str(tmp_path / "kubeconfig"))

        assert main(["run", "--config", str(config), "--kubeconfig", kubeconfig, "--once"]) == 0
        out = capsys.readouterr().out
        assert "Leader:  " + pod_env["POD_NAME"] in out
        assert arm.requests["PUT agentPool"] >= 1, out  # the pass acted: a scale-up, events

        # The scale-down calls, through the same ClusterSource methods the controller uses.
        cache = ClusterCache(KubeApi(api_client(kubeconfig)), KubeDecoder(),
                             CacheOptions(), instance=pod_env["POD_NAME"]).start()
        try:
            reflectors = getattr(cache, "reflectors", (cache.pods, cache.nodes))
            assert cache.wait_for(lambda: all(r.synced for r in reflectors), BOUND)
            bound = next(p for p in cache.observe().pods if p.node_name == "aks-reg1-0")
            cache.cordon("aks-reg1-0", True)
            assert cache.evict(bound, 30) == EvictionResult.EVICTED
            cache.cordon("aks-reg1-0", False)
        finally:
            cache.close()
        served = [tuple(r.split(" ", 1)) for r in kube.requests]

    resource_requests = [access_of(method, url) for method, url in served
                         if url.startswith(("/api/v1/", "/apis/")) and url.count("/") > 3]
    seen = {a.rule for a in resource_requests}
    assert {("", "events", "create"), ("coordination.k8s.io", "leases", "update"),
            ("", "configmaps", "patch"), ("", "pods/eviction", "create")} <= seen
    assert seen <= {c.access.rule for c in calls_in_code()}, "the scan missed a call"
    refused = sorted({a for a in resource_requests if not grants(objects).allows(a)})
    assert refused == []
