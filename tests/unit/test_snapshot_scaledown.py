"""The snapshot fields scale-down reads: annotations, emptyDir volumes, grace periods, PDBs."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.control.snapshot import parse_snapshot
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import LabelSelector
from tests.builders import snapshot_doc


def with_fields(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = snapshot_doc()
    bound = doc["pods"][0]
    bound.update(changes.pop("pod", {}))
    doc["nodes"][0].update(changes.pop("node", {}))
    doc.update(changes)
    return doc


def test_pod_and_node_scale_down_fields_are_read() -> None:
    doc = with_fields(
        pod={
            "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "shm", "emptyDir": {"medium": "Memory"}}],
            "terminationGracePeriodSeconds": 45,
        },
        node={"annotations": {"surge.io/scale-down-disabled": "true"}},
    )
    state, _ = parse_snapshot(doc)
    bound = next(p for p in state.pods if p.node_name)
    assert bound.annotations == (("cluster-autoscaler.kubernetes.io/safe-to-evict", "false"),)
    assert bound.local_storage and bound.grace_seconds == 45
    assert state.nodes[0].annotations == (("surge.io/scale-down-disabled", "true"),)


def test_a_memory_backed_empty_dir_is_not_local_storage() -> None:
    doc = with_fields(pod={"volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}]})
    state, _ = parse_snapshot(doc)
    assert not any(p.local_storage for p in state.pods)


def test_pod_disruption_budgets_are_read() -> None:
    doc = with_fields(podDisruptionBudgets=[
        {"name": "web", "selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": "10%"},
        {"name": "dns", "namespace": "kube-system", "minAvailable": 1, "disruptionsAllowed": 0},
    ])
    state, _ = parse_snapshot(doc)
    assert state.pdbs == (
        PodDisruptionBudget("web", "default", LabelSelector((("app", "web"),)),
                            max_unavailable="10%"),
        PodDisruptionBudget("dns", "kube-system", min_available=1, disruptions_allowed=0),
    )


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"podDisruptionBudgets": [{"name": "a"}]}, "$.podDisruptionBudgets[0].minAvailable"),
        ({"podDisruptionBudgets": [{"name": "a", "minAvailable": 1, "maxUnavailable": 1}]},
         "$.podDisruptionBudgets[0].maxUnavailable"),
        ({"podDisruptionBudgets": [{"name": "a", "minAvailable": "150%"}]},
         "$.podDisruptionBudgets[0].minAvailable"),
        ({"podDisruptionBudgets": [{"name": "a", "minAvailable": 1, "spec": {}}]},
         "$.podDisruptionBudgets[0].spec"),
        ({"podDisruptionBudgets": [{"name": "a", "minAvailable": 1},
                                   {"name": "a", "maxUnavailable": 1}]},
         "$.podDisruptionBudgets[1].name"),
        ({"pod": {"volumes": [{"name": "v", "emptyDir": {"medium": "HugePages"}}]}},
         "$.pods[0].volumes[0].emptyDir.medium"),
        ({"pod": {"annotations": {"bad key!": "x"}}}, "$.pods[0].annotations['bad key!']"),
        ({"pod": {"terminationGracePeriodSeconds": -1}},
         "$.pods[0].terminationGracePeriodSeconds"),
        ({"node": {"annotations": {"a": 1}}}, "$.nodes[0].annotations.a"),
    ],
)
def test_bad_scale_down_fields_are_refused_with_their_path(
    changes: dict[str, Any], path: str
) -> None:
    with pytest.raises(ValidationError) as error:
        parse_snapshot(with_fields(**changes))
    assert error.value.path == path
