"""Scheduling predicates of autoscaler.model.constraints: one table per constraint kind."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.model.constraints import (
    anti_affinity_blocks,
    anti_affinity_term_selects,
    label_selector_matches,
    node_mismatch,
    requirement_matches,
    selects,
    spread_headroom,
    spread_min,
    tolerates,
    untolerated_taint,
)
from autoscaler.model.labels import (
    HOSTNAME_LABEL,
    SPOT_LABEL,
    ZONE_LABEL,
    LabelSelector,
    Operator,
    Requirement,
    labels_of,
)
from autoscaler.model.node import Taint
from autoscaler.model.pod import (
    AntiAffinity,
    NodeSelectorTerm,
    Pod,
    TaintEffect,
    Toleration,
    TopologySpread,
)
from tests.builders import SPOT_TOLERATION, node, pod

IN, NOT_IN, EXISTS, ABSENT = Operator.IN, Operator.NOT_IN, Operator.EXISTS, Operator.DOES_NOT_EXIST
GT, LT = Operator.GT, Operator.LT
NO_SCHED, NO_EXEC, PREFER = (
    TaintEffect.NO_SCHEDULE,
    TaintEffect.NO_EXECUTE,
    TaintEffect.PREFER_NO_SCHEDULE,
)
SSD = {"disktype": "ssd"}
SPOT_TAINT = Taint(SPOT_LABEL, "spot", NO_SCHED)
GPU_TAINT = Taint("sku", "gpu", NO_SCHED)
DRAIN_TAINT = Taint("maintenance", "soon", NO_EXEC)


def _req(key: str, operator: Operator, *values: str) -> Requirement:
    return Requirement(key, operator, values)


def _sel(*expressions: Requirement, **match_labels: str) -> LabelSelector:
    return LabelSelector(labels_of(match_labels), expressions)


def _labels(zone: str | None = "eastus-1", **extra: str) -> dict[str, str]:
    """Labels of a builder node (hostname, agent pool, zone) plus ``extra``."""
    return dict(node(zone=zone, labels=extra).labels)


# --- node-selector requirements ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        pytest.param(IN, ("ssd", "nvme"), SSD, True, id="in-value-listed"),
        pytest.param(IN, ("hdd",), SSD, False, id="in-value-not-listed"),
        pytest.param(IN, ("ssd",), {}, False, id="in-label-absent"),
        pytest.param(IN, (), SSD, False, id="in-no-values"),
        pytest.param(NOT_IN, ("hdd",), SSD, True, id="notin-value-not-listed"),
        pytest.param(NOT_IN, ("ssd",), SSD, False, id="notin-value-listed"),
        pytest.param(NOT_IN, ("ssd",), {}, True, id="notin-label-absent-is-true"),
        pytest.param(EXISTS, (), SSD, True, id="exists-present"),
        pytest.param(EXISTS, (), {"disktype": ""}, True, id="exists-present-empty-value"),
        pytest.param(EXISTS, (), {}, False, id="exists-absent"),
        pytest.param(ABSENT, (), {}, True, id="doesnotexist-absent"),
        pytest.param(ABSENT, (), SSD, False, id="doesnotexist-present"),
    ],
)
def test_set_operators_compare_the_node_label_with_the_listed_values(
    operator: Operator, values: tuple[str, ...], labels: dict[str, str], expected: bool
) -> None:
    assert requirement_matches(Requirement("disktype", operator, values), labels) is expected


@pytest.mark.parametrize(
    ("operator", "values", "label", "expected"),
    [
        pytest.param(GT, ("4",), "8", True, id="gt-greater"),
        pytest.param(GT, ("8",), "8", False, id="gt-equal"),
        pytest.param(GT, ("9",), "8", False, id="gt-smaller"),
        pytest.param(GT, ("10",), "9", False, id="gt-numeric-not-lexical"),
        pytest.param(GT, ("-3",), "-2", True, id="gt-negative"),
        pytest.param(GT, ("+1",), "2", True, id="gt-explicit-plus-sign"),
        pytest.param(LT, ("9",), "8", True, id="lt-smaller"),
        pytest.param(LT, ("8",), "8", False, id="lt-equal"),
        pytest.param(LT, ("2",), "10", False, id="lt-numeric-not-lexical"),
        pytest.param(GT, ("4",), None, False, id="gt-label-absent"),
        pytest.param(LT, ("4",), None, False, id="lt-label-absent"),
        pytest.param(GT, ("4",), "eight", False, id="gt-label-not-integer"),
        pytest.param(LT, ("4",), "1.5", False, id="lt-label-decimal"),
        pytest.param(GT, ("4",), " 8", False, id="gt-label-with-space"),
        pytest.param(GT, ("4",), "1_0", False, id="gt-label-with-underscore"),
        pytest.param(GT, ("4",), "٨", False, id="gt-label-non-ascii-digit"),
        pytest.param(GT, ("1",), str(2**63), False, id="gt-label-beyond-int64"),
        pytest.param(LT, ("1",), str(-(2**63)), True, id="lt-label-at-int64-min"),
        pytest.param(GT, ("four",), "8", False, id="gt-value-not-integer"),
        pytest.param(GT, ("1", "2"), "8", False, id="gt-two-values"),
        pytest.param(LT, (), "8", False, id="lt-no-value"),
    ],
)
def test_gt_and_lt_compare_one_integer_and_fail_on_anything_else(
    operator: Operator, values: tuple[str, ...], label: str | None, expected: bool
) -> None:
    labels = {} if label is None else {"cores": label}
    assert requirement_matches(Requirement("cores", operator, values), labels) is expected


# --- label selectors --------------------------------------------------------------------------

WEB_LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param(_sel(), {}, True, id="empty-selector-matches-no-labels"),
        pytest.param(_sel(), WEB_LABELS, True, id="empty-selector-matches-all"),
        pytest.param(_sel(app="web"), WEB_LABELS, True, id="match-labels"),
        pytest.param(_sel(app="db"), WEB_LABELS, False, id="label-differs"),
        pytest.param(_sel(zone="a"), WEB_LABELS, False, id="label-missing"),
        pytest.param(_sel(app="web", tier="back"), WEB_LABELS, False, id="every-label-required"),
        pytest.param(_sel(_req("app", IN, "web", "api")), WEB_LABELS, True, id="in"),
        pytest.param(_sel(_req("app", NOT_IN, "web")), WEB_LABELS, False, id="notin-listed"),
        pytest.param(_sel(_req("team", NOT_IN, "x")), WEB_LABELS, True, id="notin-absent-key"),
        pytest.param(_sel(_req("tier", EXISTS)), WEB_LABELS, True, id="exists"),
        pytest.param(_sel(_req("tier", ABSENT)), WEB_LABELS, False, id="doesnotexist"),
        pytest.param(
            _sel(_req("tier", EXISTS), _req("app", NOT_IN, "web")), WEB_LABELS, False,
            id="expressions-are-anded",
        ),
        pytest.param(
            _sel(_req("tier", IN, "back"), app="web"), WEB_LABELS, False,
            id="labels-and-expressions-are-anded",
        ),
        pytest.param(_sel(_req("n", GT, "1")), {"n": "5"}, False, id="gt-invalid-in-selector"),
    ],
)  # fmt: skip
def test_label_selector_ands_match_labels_and_expressions(
    selector: LabelSelector, labels: dict[str, str], expected: bool
) -> None:
    assert label_selector_matches(selector, labels) is expected


# --- taints and tolerations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        pytest.param(SPOT_TOLERATION, SPOT_TAINT, True, id="equal-key-and-value"),
        pytest.param(Toleration(SPOT_LABEL, "Equal", "x"), SPOT_TAINT, False, id="other-value"),
        pytest.param(Toleration("other", "Equal", "spot"), SPOT_TAINT, False, id="other-key"),
        pytest.param(Toleration(SPOT_LABEL, "", "spot"), SPOT_TAINT, True, id="empty-op-is-equal"),
        pytest.param(Toleration(SPOT_LABEL, "Exists"), SPOT_TAINT, True, id="exists-any-value"),
        pytest.param(Toleration("", "Exists"), SPOT_TAINT, True, id="exists-empty-key-all"),
        pytest.param(Toleration("", "Exists"), DRAIN_TAINT, True, id="exists-all-noexecute"),
        pytest.param(
            Toleration("", "Exists", effect=NO_EXEC), SPOT_TAINT, False,
            id="exists-empty-key-other-effect",
        ),
        pytest.param(
            Toleration(SPOT_LABEL, "Equal", "spot", NO_SCHED), SPOT_TAINT, True,
            id="same-effect",
        ),
        pytest.param(
            Toleration("maintenance", "Equal", "soon", NO_SCHED), DRAIN_TAINT, False,
            id="noschedule-does-not-tolerate-noexecute",
        ),
        pytest.param(
            Toleration("maintenance", "Equal", "soon"), DRAIN_TAINT, True,
            id="unset-effect-matches-every-effect",
        ),
        pytest.param(Toleration(SPOT_LABEL, "Gt", "spot"), SPOT_TAINT, False, id="unknown-op"),
    ],
)  # fmt: skip
def test_a_toleration_matches_a_taint_by_key_operator_value_and_effect(
    toleration: Toleration, taint: Taint, expected: bool
) -> None:
    assert tolerates(toleration, taint) is expected


@pytest.mark.parametrize(
    ("tolerations", "taints", "expected"),
    [
        pytest.param((), (), None, id="no-taints"),
        pytest.param((), (SPOT_TAINT,), SPOT_TAINT, id="spot-without-toleration"),
        pytest.param((SPOT_TOLERATION,), (SPOT_TAINT,), None, id="spot-tolerated"),
        pytest.param((), (DRAIN_TAINT,), DRAIN_TAINT, id="noexecute-blocks"),
        pytest.param((), (Taint("soft", "", PREFER),), None, id="prefernoschedule-never-blocks"),
        pytest.param((SPOT_TOLERATION,), (SPOT_TAINT, GPU_TAINT), GPU_TAINT, id="second-taint"),
        pytest.param((), (GPU_TAINT, SPOT_TAINT), GPU_TAINT, id="first-untolerated-in-order"),
        pytest.param(
            (Toleration("", "Exists"),), (GPU_TAINT, SPOT_TAINT, DRAIN_TAINT), None,
            id="tolerate-everything",
        ),
    ],
)  # fmt: skip
def test_the_first_blocking_taint_no_toleration_covers_is_reported(
    tolerations: tuple[Toleration, ...], taints: tuple[Taint, ...], expected: Taint | None
) -> None:
    assert untolerated_taint(tolerations, taints) == expected


# --- node_mismatch ----------------------------------------------------------------------------


def _affinity(*terms: tuple[Requirement, ...]) -> dict[str, Any]:
    return {"required_affinity": tuple(NodeSelectorTerm(term) for term in terms)}


ZONE_SPREAD = {"topology_spread": (TopologySpread(1, ZONE_LABEL),)}
SOFT_SPREAD = {"topology_spread": (TopologySpread(1, ZONE_LABEL, "ScheduleAnyway"),)}
ON_SSD = {"node_selector": labels_of(SSD)}
PLAIN, SSD_NODE, ZONELESS = _labels(), _labels(disktype="ssd"), _labels(zone=None)
EAST_2 = _labels(zone="eastus-2")
DISK_SSD, DISK_NVME = _req("disktype", IN, "ssd"), _req("disktype", IN, "nvme")


@pytest.mark.parametrize(
    ("fields", "node_labels", "taints", "expected"),
    [
        pytest.param({}, PLAIN, (), None, id="unconstrained-pod-fits"),
        pytest.param(ON_SSD, SSD_NODE, (), None, id="node-selector-matched"),
        pytest.param(
            ON_SSD, _labels(disktype="hdd"), (), "node selector disktype=ssd not matched",
            id="node-selector-other-value",
        ),
        pytest.param(
            {"node_selector": labels_of({**SSD, "gpu": "a100"})}, SSD_NODE, (),
            "node selector gpu=a100 not matched", id="node-selector-every-pair-required",
        ),
        pytest.param(_affinity((DISK_SSD,)), SSD_NODE, (), None, id="affinity-term-matched"),
        pytest.param(
            _affinity((DISK_SSD,)), PLAIN, (), "required node affinity not matched",
            id="affinity-not-matched",
        ),
        pytest.param(
            _affinity((DISK_NVME,), (DISK_SSD,)), SSD_NODE, (), None,
            id="affinity-terms-are-ored",
        ),
        pytest.param(
            _affinity((DISK_SSD, _req("cores", GT, "16"))), _labels(disktype="ssd", cores="8"),
            (), "required node affinity not matched", id="affinity-expressions-are-anded",
        ),
        pytest.param(
            _affinity(()), PLAIN, (), "required node affinity not matched",
            id="affinity-empty-term-matches-nothing",
        ),
        pytest.param({"volume_zones": ("eastus-1",)}, PLAIN, (), None, id="volume-zone-matched"),
        pytest.param(
            {"volume_zones": ("eastus-1",)}, EAST_2, (), "volume zone eastus-2 not in [eastus-1]",
            id="volume-zone-other-zone",
        ),
        pytest.param(
            {"volume_zones": ("eastus-1", "eastus-3")}, EAST_2, (),
            "volume zone eastus-2 not in [eastus-1, eastus-3]", id="volume-zones-listed",
        ),
        pytest.param(
            {"volume_zones": ("eastus-1",)}, ZONELESS, (),
            "node has no zone label for bound volume", id="volume-zone-node-zone-unknown",
        ),
        pytest.param({"volume_zones": None}, ZONELESS, (), None, id="no-bound-volume-any-zone"),
        pytest.param(ZONE_SPREAD, PLAIN, (), None, id="spread-key-present"),
        pytest.param(
            ZONE_SPREAD, ZONELESS, (), f"node lacks topology key {ZONE_LABEL}",
            id="spread-key-missing",
        ),
        pytest.param(SOFT_SPREAD, ZONELESS, (), None, id="spread-schedule-anyway-ignored"),
        pytest.param(
            {}, PLAIN, (SPOT_TAINT,),
            "untolerated taint kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
            id="spot-taint-untolerated",
        ),
        pytest.param(
            {"tolerations": (SPOT_TOLERATION,)}, PLAIN, (SPOT_TAINT,), None,
            id="spot-taint-tolerated",
        ),
        pytest.param(
            {}, PLAIN, (Taint("dedicated", "", NO_EXEC),), "untolerated taint dedicated:NoExecute",
            id="taint-without-value",
        ),
    ],
)  # fmt: skip
def test_node_mismatch_names_the_static_predicate_that_refuses_the_node(
    fields: dict[str, Any],
    node_labels: dict[str, str],
    taints: tuple[Taint, ...],
    expected: str | None,
) -> None:
    assert node_mismatch(pod(**fields), node_labels, taints) == expected


RACK_SPREAD = {"topology_spread": (TopologySpread(1, "rack"),)}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {**ON_SSD, **_affinity((_req("x", EXISTS),))},
            "node selector disktype=ssd not matched", id="selector-before-affinity",
        ),
        pytest.param(
            {**_affinity((_req("x", EXISTS),)), "volume_zones": ()},
            "required node affinity not matched", id="affinity-before-volume-zone",
        ),
        pytest.param(
            {"volume_zones": (), **RACK_SPREAD}, "volume zone eastus-1 not in []",
            id="volume-zone-before-spread",
        ),
        pytest.param(RACK_SPREAD, "node lacks topology key rack", id="spread-before-taint"),
    ],
)  # fmt: skip
def test_node_mismatch_reports_the_first_failing_check_in_order(
    fields: dict[str, Any], expected: str
) -> None:
    assert node_mismatch(pod(**fields), PLAIN, (SPOT_TAINT,)) == expected


# --- topology spread --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "eligible", "min_domains", "expected"),
    [
        pytest.param({"a": 2, "b": 2, "c": 1}, ("a", "b", "c"), 1, 1, id="minimum-over-domains"),
        pytest.param({"a": 2, "b": 3}, ("a", "b", "c"), 1, 0, id="absent-domain-counts-zero"),
        pytest.param({"a": 2, "b": 3, "x": 0}, ("a", "b"), 1, 2, id="ineligible-ignored"),
        pytest.param({"a": 2, "b": 3}, ("a", "b"), 2, 2, id="enough-domains-for-min-domains"),
        pytest.param({"a": 2, "b": 3}, ("a", "b"), 3, 0, id="too-few-domains-minimum-zero"),
        pytest.param({}, (), 1, 0, id="no-eligible-domains"),
    ],
)
def test_the_global_spread_minimum_follows_min_domains(
    counts: dict[str, int], eligible: tuple[str, ...], min_domains: int, expected: int
) -> None:
    assert spread_min(counts, eligible, min_domains) == expected


@pytest.mark.parametrize(
    ("max_skew", "domain_count", "min_count", "expected"),
    [
        pytest.param(1, 1, 1, 1, id="balanced-domain-takes-one"),
        pytest.param(1, 2, 1, 0, id="domain-above-minimum-is-full"),
        pytest.param(1, 0, 0, 1, id="empty-domain-takes-one"),
        pytest.param(3, 1, 1, 3, id="larger-skew-more-room"),
        pytest.param(1, 5, 1, 0, id="over-skewed-domain-never-negative"),
        pytest.param(2, 1, 3, 4, id="domain-below-minimum-catches-up"),
    ],
)
def test_spread_headroom_is_min_plus_skew_minus_count(
    max_skew: int, domain_count: int, min_count: int, expected: int
) -> None:
    assert spread_headroom(max_skew, domain_count, min_count) == expected


def test_spread_headroom_admits_exactly_the_pods_the_skew_rule_allows() -> None:
    # Pods added one at a time while the minimum stays put: each must keep count - min <= skew.
    for max_skew in range(1, 4):
        for min_count in range(3):
            for count in range(min_count, min_count + 6):
                room = spread_headroom(max_skew, count, min_count)
                assert all(count + k + 1 - min_count <= max_skew for k in range(room))
                assert count + room + 1 - min_count > max_skew


WEB_SELECTOR = _sel(app="web")


@pytest.mark.parametrize(
    ("candidate", "namespace", "expected"),
    [
        pytest.param(pod("w", labels={"app": "web"}), "default", True, id="same-ns-matching"),
        pytest.param(pod("d", labels={"app": "db"}), "default", False, id="labels-differ"),
        pytest.param(
            pod("w", labels={"app": "web"}, namespace="other"), "default", False,
            id="other-namespace-not-counted",
        ),
    ],
)  # fmt: skip
def test_a_spread_selector_counts_matching_pods_of_its_own_namespace(
    candidate: Pod, namespace: str, expected: bool
) -> None:
    assert selects(candidate, WEB_SELECTOR, namespace) is expected


# --- anti-affinity ----------------------------------------------------------------------------

AWAY = AntiAffinity(HOSTNAME_LABEL, WEB_SELECTOR)
AWAY_IN_PROD = AntiAffinity(HOSTNAME_LABEL, WEB_SELECTOR, ("prod", "staging"))
ZONE_AWAY = AntiAffinity(ZONE_LABEL, WEB_SELECTOR)


def _web(name: str = "web-2", *terms: AntiAffinity, namespace: str = "default") -> Pod:
    return pod(name, labels={"app": "web"}, namespace=namespace, anti_affinity=terms)


def _guard(*terms: AntiAffinity) -> Pod:
    return pod("guard", owner="ReplicaSet/guard", labels={"app": "guard"}, anti_affinity=terms)


WEB_1, DB = _web("web-1"), pod("db-1", owner="StatefulSet/db", labels={"app": "db"})


@pytest.mark.parametrize(
    ("term", "owner_namespace", "candidate", "expected"),
    [
        pytest.param(AWAY, "default", WEB_1, True, id="own-namespace-by-default"),
        pytest.param(AWAY, "prod", WEB_1, False, id="other-namespace-by-default"),
        pytest.param(AWAY_IN_PROD, "default", WEB_1, False, id="listed-namespaces-only"),
        pytest.param(AWAY_IN_PROD, "default", _web(namespace="staging"), True, id="listed"),
        pytest.param(AWAY, "default", DB, False, id="labels-differ"),
    ],
)
def test_an_anti_affinity_term_selects_pods_of_its_namespaces(
    term: AntiAffinity, owner_namespace: str, candidate: Pod, expected: bool
) -> None:
    assert anti_affinity_term_selects(term, owner_namespace, candidate) is expected


@pytest.mark.parametrize(
    ("incoming", "on_node", "expected"),
    [
        pytest.param(_web(), (WEB_1,), False, id="no-terms"),
        pytest.param(_web("web-2", AWAY), (), False, id="empty-node"),
        pytest.param(_web("web-2", AWAY), (DB, WEB_1), True, id="own-term-selects-a-node-pod"),
        pytest.param(_web("web-2", AWAY), (DB,), False, id="own-term-selects-nothing"),
        pytest.param(_web(), (_guard(AWAY),), True, id="symmetric-term-of-a-node-pod"),
        pytest.param(
            _web(namespace="other"), (_guard(AWAY),), False, id="symmetric-term-other-namespace"
        ),
        pytest.param(_web("web-2", ZONE_AWAY), (WEB_1,), False, id="zone-term-ignored"),
        pytest.param(_web(), (_guard(ZONE_AWAY),), False, id="symmetric-zone-term-ignored"),
        pytest.param(
            _web("web-2", AWAY), (_web("web-1", namespace="prod"),), False,
            id="term-defaults-to-own-namespace",
        ),
        pytest.param(
            _web("web-2", AWAY_IN_PROD), (_web("web-1", namespace="prod"),), True,
            id="term-namespaces-used-when-set",
        ),
        pytest.param(
            _web("web-2", AWAY_IN_PROD), (WEB_1,), False,
            id="term-namespaces-exclude-own-namespace",
        ),
        pytest.param(
            _web("web-0", AWAY), (_web("web-0", AWAY),), True,
            id="identical-replica-is-another-pod",
        ),
    ],
)  # fmt: skip
def test_hostname_anti_affinity_blocks_in_both_directions(
    incoming: Pod, on_node: tuple[Pod, ...], expected: bool
) -> None:
    assert anti_affinity_blocks(incoming, on_node) is expected
