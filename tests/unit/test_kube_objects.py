"""Live Kubernetes objects -> snapshot entries -> model values (kube.objects, kubeobjects)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from autoscaler.control.kubeobjects import KubeDecoder
from autoscaler.control.snapshot_pods import PodReader
from autoscaler.kube.objects import (
    BOUND,
    IGNORED,
    PENDING,
    node_entry,
    pod_entry,
    pod_role,
)
from autoscaler.kube.reflector import Backoff
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import (
    HOSTNAME_LABEL,
    ZONE_LABEL,
    LabelSelector,
    Operator,
    Requirement,
    labels_of,
)
from autoscaler.model.pod import (
    AntiAffinity,
    Container,
    NodeSelectorTerm,
    Pod,
    TaintEffect,
    Toleration,
    TopologySpread,
)
from simulator.twin.kube_objects import node_json, pod_json
from tests.builders import SPOT_TOLERATION, node, pod, res


def unschedulable(**status: Any) -> dict[str, Any]:
    obj = pod_json(pod("p"))
    obj["status"].update(status)
    return obj


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj["spec"].update(spec)
    return obj


def with_meta(obj: dict[str, Any], **meta: Any) -> dict[str, Any]:
    obj["metadata"].update(meta)
    return obj


SCHEDULED_FALSE = {"type": "PodScheduled", "status": "False"}


@pytest.mark.parametrize("obj, schedulers, role", [
    (pod_json(pod("p")), ("default-scheduler",), PENDING),
    (pod_json(pod("p", node_name="n1")), ("default-scheduler",), BOUND),
    (with_meta(pod_json(pod("p", node_name="n1")), deletionTimestamp="x"), (), BOUND),
    (with_meta(pod_json(pod("p")), deletionTimestamp="x"), ("default-scheduler",), IGNORED),
    (unschedulable(phase="Succeeded"), ("default-scheduler",), IGNORED),
    (unschedulable(phase="Failed"), ("default-scheduler",), IGNORED),
    (unschedulable(conditions=[]), ("default-scheduler",), IGNORED),
    (unschedulable(conditions=[SCHEDULED_FALSE | {"reason": "SchedulerError"}]),
     ("default-scheduler",), IGNORED),
    (unschedulable(conditions=[{"type": "PodScheduled", "status": "True"}]),
     ("default-scheduler",), IGNORED),
    (with_spec(pod_json(pod("p")), schedulerName="volcano"), ("default-scheduler",), IGNORED),
    (with_spec(pod_json(pod("p")), schedulerName="volcano"), ("volcano",), PENDING),
    (with_spec(pod_json(pod("p")), schedulerName=None), ("default-scheduler",), PENDING),
])
def test_a_pod_is_pending_only_once_its_scheduler_found_it_unschedulable(
    obj: dict[str, Any], schedulers: tuple[str, ...], role: str
) -> None:
    assert pod_role(obj, schedulers) == role


def test_a_pod_entry_keeps_what_schedules_and_drops_the_rest() -> None:
    obj = pod_json(pod("web-1", tolerations=(SPOT_TOLERATION,)), padding=True)
    obj["spec"]["affinity"] = {
        "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [
                {"key": "a", "operator": "Exists"}]}}]},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": HOSTNAME_LABEL, "labelSelector": {"matchLabels": {"app": "web"}},
            "namespaceSelector": {}, "matchLabelKeys": ["pod-template-hash"]}]},
    }
    obj["spec"]["containers"][0]["resources"]["claims"] = [{"name": "gpu"}]
    obj["spec"]["volumes"].append({"name": "data", "persistentVolumeClaim": {
        "claimName": "data-0", "readOnly": True}})
    entry = pod_entry(obj)
    assert set(entry) == {"name", "namespace", "uid", "owner", "labels", "containers",
                          "priority", "tolerations", "affinity", "volumes"}
    assert entry["containers"] == [{"name": "main", "resources": {
        "requests": {"cpu": "100m", "memory": "134217728"}}}]
    assert entry["affinity"] == {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": HOSTNAME_LABEL, "labelSelector": {"matchLabels": {"app": "web"}}}]}}
    assert entry["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}}]
    assert entry["owner"] == {"kind": "ReplicaSet", "name": "web"}


def test_match_label_keys_narrow_a_spread_constraint_to_the_pods_own_revision() -> None:
    obj = pod_json(pod("web-1", labels={"app": "web", "pod-template-hash": "abc"}))
    obj["spec"]["topologySpreadConstraints"] = [{
        "maxSkew": 1, "topologyKey": ZONE_LABEL, "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "web"}},
        "matchLabelKeys": ["pod-template-hash"], "nodeTaintsPolicy": "Honor"}]
    spread = pod_entry(obj)["topologySpreadConstraints"]
    assert spread[0]["labelSelector"] == {"matchLabels": {"app": "web", "pod-template-hash": "abc"}}
    assert "nodeTaintsPolicy" not in spread[0]


@pytest.mark.parametrize("labels, pool", [
    ({"kubernetes.azure.com/agentpool": "spot1", "agentpool": "old"}, "spot1"),
    ({"agentpool": "legacy"}, "legacy"),
    ({}, None),
])
def test_a_node_names_its_pool_in_a_label(labels: dict[str, str], pool: str | None) -> None:
    obj = node_json(node("n1", pool=None, zone=None))
    obj["metadata"]["labels"] = labels
    assert node_entry(obj)["pool"] == pool


def test_a_node_that_has_not_reported_allocatable_offers_nothing_and_is_not_ready() -> None:
    obj = node_json(node("n1"))
    del obj["status"]
    entry = node_entry(obj)
    assert entry["allocatable"] == {"cpu": "0", "memory": "0", "pods": "0"}
    assert entry["ready"] is False


SPREAD = TopologySpread(1, ZONE_LABEL, label_selector=LabelSelector(labels_of({"app": "web"})))
ANTI = AntiAffinity(HOSTNAME_LABEL, LabelSelector(labels_of({"app": "web"})), ("default",))
AFFINITY = (NodeSelectorTerm((Requirement("kubernetes.azure.com/scalesetpriority",
                                          Operator.IN, ("spot",)),)),)


@pytest.mark.parametrize("model", [
    pod("plain"),
    pod("bound", node_name="n1", priority=1000),
    pod("spot", tolerations=(SPOT_TOLERATION,
                             Toleration("", "Exists", "", TaintEffect.NO_EXECUTE))),
    pod("spread", topology_spread=(SPREAD,), anti_affinity=(ANTI,), required_affinity=AFFINITY),
    pod("sidecar", init_containers=(Container("proxy", res(100, 64 << 20), sidecar=True),),
        overhead=res(50), node_selector=labels_of({"disk": "ssd"})),
    pod("gpu", gpu=1, owner="Job/train"),
])
def test_a_model_pod_served_by_the_twin_decodes_back_to_itself(model: Pod) -> None:
    assert KubeDecoder().pod(pod_json(model, padding=True)) == model


def test_a_model_node_served_by_the_twin_decodes_back_to_itself() -> None:
    model = node("n1", taints=(), unschedulable=True)
    assert KubeDecoder().node(node_json(model, padding=True)) == model


def test_replicas_share_their_parsed_parts_and_equal_what_the_snapshot_reader_makes() -> None:
    decoder = KubeDecoder()
    objs = [pod_json(pod(f"web-{i}", tolerations=(SPOT_TOLERATION,)), padding=True)
            for i in range(3)]
    pods = [decoder.pod(obj) for obj in objs]
    assert pods[1].containers is pods[0].containers
    assert pods[2].tolerations is pods[0].tolerations
    assert pods[2].labels is pods[1].labels
    read, _ = PodReader({}).read(pod_entry(objs[2]), "$")
    assert pods[2] == read


def test_the_decoder_forgets_its_memos_past_the_limit() -> None:
    decoder = KubeDecoder(memo_limit=4)
    for i in range(10):
        decoder.pod(pod_json(pod(f"p{i}", cpu_m=100 + i)))
    assert decoder.memo_size <= 4 + 3


@pytest.mark.parametrize("edit, where", [
    (lambda o: o["spec"]["containers"][0]["resources"]["requests"].update(cpu="lots"),
     "$.pod[default/p].containers[0].resources.requests.cpu"),
    (lambda o: o["metadata"]["labels"].update({"bad key!": "x"}), "$.pod[default/p].labels"),
])
def test_an_unreadable_pod_is_a_validation_error_naming_the_field(edit: Any, where: str) -> None:
    decoder = KubeDecoder()
    decoder.pod(pod_json(pod("q")))  # the same spec is known: labels take the fast path
    obj = copy.deepcopy(pod_json(pod("p")))
    edit(obj)
    with pytest.raises(ValidationError) as raised:
        decoder.pod(obj)
    assert raised.value.path.startswith(where)


@pytest.mark.parametrize("failures, retry_after, delay", [
    (1, None, 0.5), (2, None, 1.0), (3, None, 2.0), (10, None, 30.0), (1, 7.0, 7.0),
    (8, 7.0, 30.0),
])
def test_the_cache_backs_off_exponentially_to_a_cap_and_honours_a_longer_retry_after(
    failures: int, retry_after: float | None, delay: float
) -> None:
    assert Backoff().delay(failures, retry_after) == delay
