"""What the kube adapter passes to scale-down: trimmed annotations, grace periods, emptyDirs,
node annotations and PodDisruptionBudgets (kube.objects, control.kubeobjects)."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.control.kubeobjects import KubeDecoder
from autoscaler.control.snapshot_pods import PodReader
from autoscaler.kube.objects import node_entry, pdb_entry, pod_entry
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import LabelSelector, Operator, Requirement, labels_of
from autoscaler.model.pod import MIRROR_ANNOTATION
from simulator.twin.kube_objects import budget_json, node_json, pod_json
from tests.builders import node, pod

SAFE = "cluster-autoscaler.kubernetes.io/safe-to-evict"
OURS = "surge.io/safe-to-evict"
DISABLED = "surge.io/scale-down-disabled"
CA_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
MARK = "surge.io/scale-down-drain-started"  # surge's own cordon
NOISE = {"kubectl.kubernetes.io/restartedAt": "2026-01-05T10:00:00Z",
         "checksum/config": "3f2a9c", "prometheus.io/scrape": "true"}


def annotated(name: str, annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    obj = pod_json(pod(name), padding=True)
    obj["metadata"]["annotations"] = annotations
    obj["spec"].update(spec)
    return obj


@pytest.mark.parametrize("annotations, kept", [
    ({}, None),
    (NOISE, None),
    ({**NOISE, SAFE: "true"}, {SAFE: "true"}),
    ({OURS: "false", SAFE: "true"}, {OURS: "false", SAFE: "true"}),
    ({MIRROR_ANNOTATION: "9c1d", **NOISE}, {MIRROR_ANNOTATION: "9c1d"}),
])
def test_a_pod_entry_keeps_only_the_annotations_scale_down_reads(
    annotations: dict[str, str], kept: dict[str, str] | None
) -> None:
    assert pod_entry(annotated("web-1", annotations)).get("annotations") == kept


def test_replicas_with_different_unread_annotations_still_share_one_parsed_spec() -> None:
    decoder = KubeDecoder()
    first = decoder.pod(annotated("web-1", {**NOISE, SAFE: "true"}))
    second = decoder.pod(annotated("web-2", {"checksum/config": "77e0b1", SAFE: "true"}))
    assert second.containers is first.containers
    assert second.annotations is first.annotations == ((SAFE, "true"),)


def test_replicas_that_differ_in_a_read_annotation_do_not_share_it() -> None:
    decoder = KubeDecoder()
    decoder.pod(annotated("web-1", {SAFE: "true"}))
    other = decoder.pod(annotated("web-2", {SAFE: "false"}))
    assert other.annotations == ((SAFE, "false"),)


@pytest.mark.parametrize("volumes, kept, local", [
    ([{"name": "tmp", "emptyDir": {}}], [{"name": "tmp", "emptyDir": {}}], True),
    ([{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
     [{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}], False),
    ([{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}],
     [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}], True),
    ([{"name": "cfg", "configMap": {"name": "web"}},
      {"name": "tok", "secret": {"secretName": "web"}},
      {"name": "host", "hostPath": {"path": "/var/log"}}], None, False),
    ([{"name": "data", "persistentVolumeClaim": {"claimName": "data-0", "readOnly": True}},
      {"name": "tmp", "emptyDir": {"medium": ""}}],
     [{"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}},
      {"name": "tmp", "emptyDir": {}}], True),
])
def test_claims_and_empty_dirs_pass_and_other_volume_kinds_are_dropped(
    volumes: list[dict[str, Any]], kept: list[dict[str, Any]] | None, local: bool
) -> None:
    obj = pod_json(pod("web-1"))
    obj["spec"]["volumes"] = volumes
    assert pod_entry(obj).get("volumes") == kept
    assert KubeDecoder().pod(obj).local_storage is local


@pytest.mark.parametrize("grace, expected", [(None, None), (0, 0), (30, 30), (3600, 3600)])
def test_the_termination_grace_period_reaches_the_pod(
    grace: int | None, expected: int | None
) -> None:
    obj = pod_json(pod("web-1"))
    if grace is not None:
        obj["spec"]["terminationGracePeriodSeconds"] = grace
    assert KubeDecoder().pod(obj).grace_seconds == expected


@pytest.mark.parametrize("model", [
    pod("safe", annotations=labels_of({SAFE: "true"}), grace_seconds=45),
    pod("scratch", local_storage=True, grace_seconds=0),
    pod("static", owner="Node/n1", annotations=labels_of({MIRROR_ANNOTATION: "ab12"})),
])
def test_a_pod_with_scale_down_fields_served_by_the_twin_decodes_back_to_itself(
    model: Any
) -> None:
    decoded = KubeDecoder().pod(pod_json(model, padding=True))
    assert decoded == model
    read, _ = PodReader({}).read(pod_entry(pod_json(model)), "$")
    assert read == model


@pytest.mark.parametrize("annotations, kept", [
    ({}, ()),
    ({"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-"
      "detach": "true"}, ()),
    ({DISABLED: "true", "node.alpha.kubernetes.io/ttl": "0"}, ((DISABLED, "true"),)),
    ({CA_DISABLED: "true"}, ((CA_DISABLED, "true"),)),
    ({MARK: "2026-11-25T12:00:00Z", **NOISE}, ((MARK, "2026-11-25T12:00:00Z"),)),
])
def test_a_node_keeps_only_the_scale_down_annotations(
    annotations: dict[str, str], kept: tuple[tuple[str, str], ...]
) -> None:
    obj = node_json(node("n1"), padding=True)
    obj["metadata"]["annotations"] = annotations
    assert KubeDecoder().node(obj).annotations == kept
    assert ("annotations" in node_entry(obj)) is bool(kept)


def budget(spec: dict[str, Any], status: dict[str, Any] | None = None,
           generation: int | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                           "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}
    if generation is not None:
        obj["metadata"]["generation"] = generation
    if status is not None:
        obj["status"] = status
    return obj


WEB = {"matchLabels": {"app": "web"}}
WEB_SELECTOR = LabelSelector(labels_of({"app": "web"}))


@pytest.mark.parametrize("obj, expected", [
    (budget({"selector": WEB, "minAvailable": 2}, {"disruptionsAllowed": 1,
                                                    "observedGeneration": 1}, 1),
     PodDisruptionBudget("web", "shop", WEB_SELECTOR, min_available=2, disruptions_allowed=1)),
    (budget({"selector": WEB, "maxUnavailable": "25%"}),
     PodDisruptionBudget("web", "shop", WEB_SELECTOR, max_unavailable="25%")),
    # The controller has not seen generation 3 yet: its count describes an older spec.
    (budget({"selector": WEB, "maxUnavailable": 1}, {"disruptionsAllowed": 4,
                                                      "observedGeneration": 2}, 3),
     PodDisruptionBudget("web", "shop", WEB_SELECTOR, max_unavailable=1)),
    (budget({"selector": {}, "minAvailable": 1}, {"disruptionsAllowed": 0}),
     PodDisruptionBudget("web", "shop", LabelSelector(), min_available=1,
                         disruptions_allowed=0)),
    (budget({"selector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["front", "api"]}]}, "minAvailable": "50%"}),
     PodDisruptionBudget("web", "shop", LabelSelector((), (
         Requirement("tier", Operator.IN, ("front", "api")),)), min_available="50%")),
    # Neither field: the controller allows no disruption; read so even without a status.
    (budget({"selector": WEB}),
     PodDisruptionBudget("web", "shop", WEB_SELECTOR, min_available="100%")),
    # A null selector selects no pod in policy/v1: nothing to respect.
    (budget({"minAvailable": 1}), None),
])
def test_a_budget_decodes_with_its_controllers_count_when_current(
    obj: dict[str, Any], expected: PodDisruptionBudget | None
) -> None:
    assert KubeDecoder().pdb(obj) == expected


def test_a_budget_with_a_malformed_amount_is_a_validation_error_naming_it() -> None:
    with pytest.raises(ValidationError) as raised:
        KubeDecoder().pdb(budget({"selector": WEB, "minAvailable": "half"}))
    assert raised.value.path == "$.pdb[shop/web].minAvailable"


def test_a_model_budget_served_by_the_twin_decodes_back_to_itself() -> None:
    model = PodDisruptionBudget("web", "shop", WEB_SELECTOR, max_unavailable="10%")
    assert KubeDecoder().pdb(budget_json(model)) == model
    assert pdb_entry(budget_json(model)) == {
        "name": "web", "namespace": "shop", "selector": WEB, "maxUnavailable": "10%"}


@pytest.mark.parametrize("odd", [30.0, True, "30"])
def test_a_spec_that_differs_only_in_a_values_json_type_is_never_taken_from_the_memo(
    odd: object
) -> None:
    decoder = KubeDecoder()
    known = pod_json(pod("web-1"))
    known["spec"]["terminationGracePeriodSeconds"] = 30
    assert decoder.pod(known).grace_seconds == 30
    other = pod_json(pod("web-2"))
    other["spec"]["terminationGracePeriodSeconds"] = odd
    with pytest.raises(ValidationError) as raised:
        decoder.pod(other)
    assert raised.value.path == "$.pod[default/web-2].terminationGracePeriodSeconds"
