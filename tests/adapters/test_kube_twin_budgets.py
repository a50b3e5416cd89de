"""The Kubernetes twin's PodDisruptionBudgets and Eviction API, through the official client.

Covers: budgets listed with a resourceVersion and their status (the disruption controller's
counts), watched from that version (a MODIFIED at a new version whenever a selected pod
changes, nothing for other pods), evictions spending ``disruptionsAllowed`` before the pod is
deleted, the API server's refusals (429, 500 for two budgets, 409 on a uid precondition, 400 on
a name mismatch), the pods it evicts without a budget check, generations, and budgets served
by ``surge twin --scenario``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from autoscaler.kube.client import KubeApi, api_client
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.labels import LabelSelector, labels_of
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_store import PDBS, PODS
from tests.builders import node, pod

WEB = LabelSelector(labels_of({"app": "web"}))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="api")
def api_fixture(kubeconfig: str) -> k8s.ApiClient:
    return api_client(kubeconfig)


def web_cluster(twin: KubeTwin, running: int = 3, **budget: Any) -> None:
    twin.add_node(node("n1"))
    for i in range(running):
        twin.add_pod(pod(f"web-{i}", labels={"app": "web"}, node_name="n1"))
    twin.add_pdb(PodDisruptionBudget("web", "default", WEB, **budget))


def evict(api: k8s.ApiClient, name: str, namespace: str = "default",
          **options: Any) -> None:
    body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
                          delete_options=k8s.V1DeleteOptions(**options) if options else None)
    k8s.CoreV1Api(api).create_namespaced_pod_eviction(name, namespace, body)


def status(api: k8s.ApiClient, name: str = "web") -> Any:
    return k8s.PolicyV1Api(api).read_namespaced_pod_disruption_budget_status(
        name, "default").status


def budget_events(twin: KubeTwin, kubeconfig: str, since: str, act: Any) -> list[dict[str, Any]]:
    """Every PodDisruptionBudget watch event from ``since`` while ``act`` runs."""
    stream = KubeApi(api_client(kubeconfig)).watch(
        "poddisruptionbudgets", resource_version=since, field_selector=None, timeout_seconds=60)
    act()
    twin.drop_watches()  # a clean end: everything before it is delivered first
    return list(stream)


def test_a_budget_list_carries_a_version_and_the_controllers_counts(
    twin: KubeTwin, api: k8s.ApiClient
) -> None:
    web_cluster(twin, max_unavailable="50%")
    twin.add_pod(pod("web-9", labels={"app": "web"}))  # pending: expected, not healthy
    listed: Any = k8s.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces()
    assert listed.metadata.resource_version == str(twin.store.rv)
    (only,) = listed.items
    assert (only.status.expected_pods, only.status.current_healthy,
            only.status.desired_healthy, only.status.disruptions_allowed) == (4, 3, 2, 1)
    assert only.status.observed_generation == only.metadata.generation == 1


def test_a_budget_watch_gets_a_new_version_each_time_a_selected_pod_changes(
    twin: KubeTwin, api: k8s.ApiClient, kubeconfig: str
) -> None:
    web_cluster(twin, min_available=2)
    listed: Any = k8s.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces()
    since: str = listed.metadata.resource_version

    def act() -> None:
        twin.add_pod(pod("web-3", labels={"app": "web"}, node_name="n1"))
        twin.add_pod(pod("db-0", labels={"app": "db"}, node_name="n1"))  # not selected
        twin.add_pod(pod("web-0", labels={"app": "web"}, namespace="other", node_name="n1"))
        twin.set_phase("default/web-1", "Failed")
        twin.delete_pod("default/web-2")

    events = budget_events(twin, kubeconfig, since, act)
    assert [(e["type"], e["object"]["status"]["disruptionsAllowed"]) for e in events] == [
        ("MODIFIED", 2), ("MODIFIED", 1), ("MODIFIED", 0)]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(since)


def test_an_eviction_spends_the_budget_before_the_pod_goes_then_it_is_recounted(
    twin: KubeTwin, api: k8s.ApiClient, kubeconfig: str
) -> None:
    web_cluster(twin, min_available=2)
    _, since = twin.store.items(PDBS)
    events = budget_events(twin, kubeconfig, str(since), lambda: evict(api, "web-0"))
    spent, recounted = (e["object"]["status"] for e in events)
    assert (spent["disruptionsAllowed"], list(spent["disruptedPods"])) == (0, ["web-0"])
    assert (recounted["disruptionsAllowed"], recounted["currentHealthy"]) == (0, 2)
    assert "disruptedPods" not in recounted
    with pytest.raises(ApiException) as refused:
        evict(api, "web-1")
    assert refused.value.status == 429
    assert "Retry-After" not in (refused.value.headers or {})  # as the API server sends it


@pytest.mark.parametrize("edit, status_code", [
    (lambda t: t.add_pdb(PodDisruptionBudget("all", "default", LabelSelector(),
                                             max_unavailable=3)), 500),
    (lambda t: None, 409),
])
def test_the_eviction_api_refuses_a_pod_under_two_budgets_and_a_failed_precondition(
    twin: KubeTwin, api: k8s.ApiClient, edit: Any, status_code: int
) -> None:
    web_cluster(twin, max_unavailable=3)
    edit(twin)
    preconditions = k8s.V1Preconditions(uid="someone-else") if status_code == 409 else None
    with pytest.raises(ApiException) as refused:
        evict(api, "web-0", preconditions=preconditions)
    assert refused.value.status == status_code
    assert twin.pod("default/web-0")


def test_a_name_that_differs_from_the_url_is_a_bad_request(
    twin: KubeTwin, api: k8s.ApiClient
) -> None:
    web_cluster(twin, max_unavailable=3)
    body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name="web-1", namespace="default"))
    with pytest.raises(ApiException) as refused:
        k8s.CoreV1Api(api).create_namespaced_pod_eviction("web-0", "default", body)
    assert refused.value.status == 400


@pytest.mark.parametrize("prepare", [
    lambda t: t.mark_unschedulable("default/web-0"),  # pending
    lambda t: t.set_phase("default/web-0", "Succeeded"),
    lambda t: t.store.patch(PODS, "default", "web-0",
                            {"metadata": {"deletionTimestamp": "2026-01-05T00:00:00Z"}}),
])
def test_a_pod_that_is_pending_ended_or_leaving_is_evicted_whatever_its_budget(
    twin: KubeTwin, api: k8s.ApiClient, prepare: Any
) -> None:
    web_cluster(twin, min_available=3)
    prepare(twin)
    evict(api, "web-0", grace_period_seconds=5)
    assert twin.store.evictions == [("default/web-0", 5)]


def test_an_unready_pod_goes_only_while_its_budget_is_met(
    twin: KubeTwin, api: k8s.ApiClient
) -> None:
    web_cluster(twin, running=4, min_available=2)
    for name in ("web-0", "web-1", "web-2"):
        twin.store.patch(PODS, "default", name, {"status": {"conditions": [
            {"type": "Ready", "status": "False"}]}})
    with pytest.raises(ApiException) as refused:  # 1 healthy < 2 desired
        evict(api, "web-0")
    assert refused.value.status == 429
    twin.store.patch(PODS, "default", "web-1", {"status": {"conditions": [
        {"type": "Ready", "status": "True"}]}})
    evict(api, "web-0")  # 2 healthy >= 2 desired: the unready pod may go
    assert status(api).disruptions_allowed == 0


@pytest.mark.parametrize("spec, allowed", [
    ({}, 0),  # neither field: nothing may be disrupted
    ({"minAvailable": 0}, 3),
    ({"maxUnavailable": "34%"}, 2),
])
def test_a_budget_status_follows_the_controllers_arithmetic(
    twin: KubeTwin, api: k8s.ApiClient, spec: dict[str, Any], allowed: int
) -> None:
    web_cluster(twin, max_unavailable=3)
    twin.store.create(PDBS, {"metadata": {"name": "other", "namespace": "default"},
                             "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}})
    assert status(api, "other").disruptions_allowed == allowed


def test_a_spec_change_bumps_the_generation_and_is_observed_at_once(
    twin: KubeTwin, api: k8s.ApiClient
) -> None:
    web_cluster(twin, max_unavailable=1)
    twin.store.patch(PDBS, "default", "web", {"spec": {"maxUnavailable": 2}})
    twin.store.patch(PDBS, "default", "web", {"metadata": {"labels": {"team": "shop"}}})
    read: Any = k8s.PolicyV1Api(api).read_namespaced_pod_disruption_budget("web", "default")
    assert (read.metadata.generation, read.status.observed_generation,
            read.status.disruptions_allowed) == (2, 2, 2)


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_drains_a_node_through_the_eviction_api(
    twin: KubeTwin, kubeconfig: str, tmp_path: Path
) -> None:
    web_cluster(twin, max_unavailable=3)
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "--cache-dir", str(tmp_path / "cache"), "drain",
         "n1", "--ignore-daemonsets", "--timeout=20s"],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "node/n1 drained" in done.stdout
    assert sorted(key for key, _ in twin.store.evictions) == [
        "default/web-0", "default/web-1", "default/web-2"]
    assert status(api_client(kubeconfig)).disruptions_allowed == 0


def test_surge_twin_serves_a_scenarios_budgets(tmp_path: Path, capsys: Any) -> None:
    from simulator.twin.kube_serve import main

    scenario = str(ROOT / "simulator" / "scenarios" / "viral-launch.yaml")
    assert main(["--scenario", scenario, "--kubeconfig", str(tmp_path / "k"),
                 "--seconds", "0"]) == 0
    assert "2 PodDisruptionBudgets" in capsys.readouterr().out

