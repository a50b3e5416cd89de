"""The Kubernetes twin speaks what the official client and kubectl expect.

Everything goes through the real ``kubernetes`` client (its typed APIs, which deserialise
the twin's answers into the client's models) or ``kubectl``: discovery, selectors, consistent
pages, watch semantics (selector entry and exit, 410), Leases, ConfigMaps, Events, PDBs and
eviction, node patches and injected faults.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from autoscaler.kube.client import KubeApi, api_client
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_objects import pdb_json
from simulator.twin.kube_store import BY_ID, PODS
from tests.builders import node, pod


@pytest.fixture(name="api")
def api_fixture(kubeconfig: str) -> k8s.ApiClient:
    return api_client(kubeconfig)


def cluster(twin: KubeTwin) -> None:
    twin.add_node(node("n1"))
    twin.add_pod(pod("web-1", node_name="n1", labels={"app": "web", "tier": "front"}))
    twin.add_pod(pod("web-2", labels={"app": "web"}))
    twin.add_pod(pod("db-1", node_name="n1", namespace="data", labels={"app": "db"}))


def names(items: list[Any]) -> list[str]:
    return sorted(item.metadata.name for item in items)


def test_discovery_lists_the_resources_the_controller_uses(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api).get_api_resources()
    assert {"pods", "nodes", "events", "configmaps", "pods/eviction"} <= {
        r.name for r in core.resources}
    groups = {g.name for g in k8s.ApisApi(api).get_api_versions().groups}
    assert {"coordination.k8s.io", "events.k8s.io", "policy"} <= groups
    assert k8s.VersionApi(api).get_code().major == "1"


def test_openapi_is_not_served(twin: KubeTwin) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{twin.url}/openapi/v2", timeout=5)
    assert raised.value.code == 404


@pytest.mark.parametrize("fields, labels, expected", [
    ("spec.nodeName=", "", ["web-2"]),
    ("spec.nodeName!=", "", ["db-1", "web-1"]),
    ("status.phase=Running,metadata.namespace=data", "", ["db-1"]),
    ("metadata.name==web-1", "", ["web-1"]),
    ("", "app=web", ["web-1", "web-2"]),
    ("", "app in (db, cache)", ["db-1"]),
    ("", "app,!tier", ["db-1", "web-2"]),
    ("", "tier notin (front)", ["db-1", "web-2"]),
])
def test_lists_filter_by_field_and_label_selectors(
    twin: KubeTwin, api: k8s.ApiClient, fields: str, labels: str, expected: list[str]
) -> None:
    cluster(twin)
    listed = k8s.CoreV1Api(api).list_pod_for_all_namespaces(
        field_selector=fields or None, label_selector=labels or None)
    assert names(listed.items) == expected


def test_an_unsupported_field_selector_is_a_bad_request(
    twin: KubeTwin, api: k8s.ApiClient
) -> None:
    with pytest.raises(ApiException) as raised:
        k8s.CoreV1Api(api).list_pod_for_all_namespaces(field_selector="spec.hostname=x")
    assert raised.value.status == 400


def test_pages_of_a_list_are_one_snapshot(twin: KubeTwin, api: k8s.ApiClient) -> None:
    for i in range(5):
        twin.add_pod(pod(f"p{i}"))
    core = k8s.CoreV1Api(api)
    first = core.list_pod_for_all_namespaces(limit=2)
    twin.add_pod(pod("late"))
    twin.delete_pod("default/p4")
    seen = list(first.items)
    token = first.metadata._continue
    while token:
        page = core.list_pod_for_all_namespaces(limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        seen += page.items
        token = page.metadata._continue
    assert names(seen) == ["p0", "p1", "p2", "p3", "p4"]


def watch_all(twin: KubeTwin, kubeconfig: str, since: str, selector: str | None,
              act: Any) -> list[tuple[str, str]]:
    """(type, name) of every event a pod watch from ``since`` gets while ``act`` runs."""
    stream = KubeApi(api_client(kubeconfig)).watch(
        "pods", resource_version=since, field_selector=selector, timeout_seconds=60)
    act()
    twin.drop_watches()  # a clean end: everything before it is delivered first
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in stream]


def test_a_watch_sends_deleted_when_a_pod_leaves_its_selector_and_added_when_it_enters(
    twin: KubeTwin, kubeconfig: str
) -> None:
    cluster(twin)
    _, since = twin.store.items(PODS)

    def act() -> None:
        twin.bind_pod("default/web-2", "n1")  # leaves "pending"
        twin.mark_unschedulable("default/web-1")  # enters it
        twin.add_pod(pod("web-3"))
        twin.store.patch(PODS, "default", "web-3", {"metadata": {"labels": {"x": "y"}}})
        twin.delete_pod("default/web-3")
        twin.delete_pod("data/db-1")  # never in the selector: not sent

    events = watch_all(twin, kubeconfig, str(since), "spec.nodeName=", act)
    assert events == [("DELETED", "web-2"), ("ADDED", "web-1"), ("ADDED", "web-3"),
                      ("MODIFIED", "web-3"), ("DELETED", "web-3")]


def test_a_watch_from_version_zero_starts_with_the_current_objects(
    twin: KubeTwin, kubeconfig: str
) -> None:
    cluster(twin)
    events = watch_all(twin, kubeconfig, "0", None, lambda: twin.delete_pod("default/web-2"))
    assert sorted(events[:3]) == [("ADDED", "db-1"), ("ADDED", "web-1"), ("ADDED", "web-2")]
    assert events[3:] == [("DELETED", "web-2")]


def test_a_watch_from_a_compacted_version_gets_410_expired(
    twin: KubeTwin, kubeconfig: str
) -> None:
    cluster(twin)
    twin.add_pod(pod("later"))
    twin.compact()
    stream = KubeApi(api_client(kubeconfig)).watch(
        "pods", resource_version="1", field_selector=None, timeout_seconds=60)
    events = list(stream)
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", 410, "Expired")]


def test_a_lease_update_with_a_stale_version_is_a_conflict(api: k8s.ApiClient) -> None:
    leases = k8s.CoordinationV1Api(api)
    body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name="surge", namespace="kube-system"),
                       spec=k8s.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15))
    created = leases.create_namespaced_lease("kube-system", body)
    with pytest.raises(ApiException) as again:
        leases.create_namespaced_lease("kube-system", body)
    assert again.value.status == 409
    created.spec.holder_identity = "b"
    renewed = leases.replace_namespaced_lease("surge", "kube-system", created)
    assert renewed.spec.holder_identity == "b"
    assert renewed.metadata.resource_version != created.metadata.resource_version
    created.spec.holder_identity = "c"  # still carries the version before the renewal
    with pytest.raises(ApiException) as stale:
        leases.replace_namespaced_lease("surge", "kube-system", created)
    assert stale.value.status == 409
    read = leases.read_namespaced_lease("surge", "kube-system")
    assert read.spec.holder_identity == "b"


def test_a_configmap_is_created_read_replaced_and_merge_patched(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="surge-status"), data={"a": "1"})
    core.create_namespaced_config_map("kube-system", body)
    current = core.read_namespaced_config_map("surge-status", "kube-system")
    current.data = {"a": "2"}
    core.replace_namespaced_config_map("surge-status", "kube-system", current)
    core.patch_namespaced_config_map("surge-status", "kube-system", {"data": {"b": "3"}})
    assert core.read_namespaced_config_map("surge-status", "kube-system").data == {
        "a": "2", "b": "3"}


def test_core_events_are_created_and_patched_and_new_api_events_created(
    twin: KubeTwin, api: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(api)
    event = k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(name="web-2.1", namespace="default"),
        involved_object=k8s.V1ObjectReference(kind="Pod", name="web-2", namespace="default"),
        reason="NotTriggerScaleUp", message="no pool fits", count=1, type="Normal")
    core.create_namespaced_event("default", event)
    core.patch_namespaced_event("web-2.1", "default", {"count": 2})
    assert core.read_namespaced_event("web-2.1", "default").count == 2
    k8s.EventsV1Api(api).create_namespaced_event("default", k8s.EventsV1Event(
        metadata=k8s.V1ObjectMeta(name="web-2.2", namespace="default"),
        event_time="2026-01-05T00:00:00.000000Z", reason="TriggeredScaleUp", note="spot1 0->2",
        action="ScaleUp", reporting_controller="surge", reporting_instance="surge-0",
        regarding=k8s.V1ObjectReference(kind="Pod", name="web-2", namespace="default"),
        type="Normal"))
    stored = twin.store.items(BY_ID["events.k8s.io/events"])[0]
    assert [s.obj["note"] for s in stored] == ["spot1 0->2"]


@pytest.mark.parametrize("running, allowed", [(2, False), (3, True)])
def test_eviction_is_refused_with_429_when_it_would_break_a_disruption_budget(
    twin: KubeTwin, api: k8s.ApiClient, running: int, allowed: bool
) -> None:
    twin.add_node(node("n1"))
    for i in range(running):
        twin.add_pod(pod(f"web-{i}", node_name="n1"))
    twin.store.create(BY_ID["policy/poddisruptionbudgets"],
                      pdb_json("web", "default", {"app": "web"}, min_available=2))
    budgets = k8s.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces().items
    assert [b.status.disruptions_allowed for b in budgets] == [running - 2]
    eviction = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name="web-0", namespace="default"))
    core = k8s.CoreV1Api(api)
    if allowed:
        core.create_namespaced_pod_eviction("web-0", "default", eviction)
    else:
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod_eviction("web-0", "default", eviction)
        assert refused.value.status == 429
    gone = "web-0" not in names(core.list_namespaced_pod("default").items)
    assert gone is allowed


def test_a_node_is_cordoned_with_a_patch(twin: KubeTwin, api: k8s.ApiClient) -> None:
    twin.add_node(node("n1"))
    k8s.CoreV1Api(api).patch_node("n1", {"spec": {"unschedulable": True}})
    assert k8s.CoreV1Api(api).read_node("n1").spec.unschedulable is True


@pytest.mark.parametrize("status, retry_after", [(500, None), (429, 3.0), (503, 1.0)])
def test_injected_faults_answer_the_next_requests(
    twin: KubeTwin, api: k8s.ApiClient, status: int, retry_after: float | None
) -> None:
    twin.fail_next(1, status, retry_after=retry_after, match="GET /api/v1/nodes")
    core = k8s.CoreV1Api(api)
    with pytest.raises(ApiException) as raised:
        core.list_node()
    assert raised.value.status == status
    assert raised.value.headers.get("Retry-After") == (
        None if retry_after is None else f"{retry_after:g}")
    assert core.list_node().items == []  # only the next one


def test_a_restart_keeps_the_objects_and_may_move_the_port(twin: KubeTwin) -> None:
    cluster(twin)
    old = twin.port
    twin.restart(new_port=True)
    assert twin.port != old
    body = urllib.request.urlopen(f"{twin.url}/api/v1/nodes", timeout=5).read()
    assert b'"name":"n1"' in body


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
@pytest.mark.parametrize("args, expected", [
    (["get", "pods", "-A"], ["NAMESPACE", "data", "db-1", "web-2", "Pending", "Running"]),
    (["get", "nodes"], ["NAME", "STATUS", "n1", "Ready"]),
    (["get", "pods", "-o", "wide"], ["NODE", "web-1", "n1"]),
    (["cordon", "n1"], ["node/n1 cordoned"]),
])
def test_kubectl_works_against_the_twin(
    twin: KubeTwin, kubeconfig: str, tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    cluster(twin)
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "--cache-dir", str(tmp_path / "cache"), *args],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    for word in expected:
        assert word in done.stdout


ROOT = Path(__file__).resolve().parents[2]


def test_surge_twin_serves_a_snapshot_and_writes_a_kubeconfig(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autoscaler.control.cli import main

    kubeconfig = tmp_path / "twin.kubeconfig"
    args = ["twin", "--snapshot", str(ROOT / "examples" / "snapshot.json"),
            "--kubeconfig", str(kubeconfig), "--seconds", "0"]
    assert main(args) == 0
    assert "8 nodes, 63 pods (57 pending)" in capsys.readouterr().out
    assert "http://127.0.0.1:" in kubeconfig.read_text()


def test_a_scenario_starts_with_its_pools_nodes_and_its_deployments_pending() -> None:
    from simulator.twin.kube_serve import scenario_cluster

    pods, nodes = scenario_cluster(str(ROOT / "simulator" / "scenarios" / "viral-launch.yaml"))
    assert nodes and all(n.pool for n in nodes)
    assert pods and all(p.node_name is None for p in pods)
