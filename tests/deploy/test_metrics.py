"""Every series the Grafana dashboard and the alerting rules query is one the code exports, with
labels it sets; the dashboard is a well-formed Grafana model covering what operators watch."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.promql import (
    TARGET_LABELS,
    exported,
    grouping_labels,
    names_in,
    selector_labels,
)
from tests.deploy.support import DEPLOY, KUSTOMIZE

DASHBOARD = DEPLOY / "grafana" / "surge.json"
RULES = KUSTOMIZE / "overlays" / "prometheus-operator" / "prometheusrule.yaml"
# Panels the dashboard has before the code exports their series. Each entry must name the
# issue that adds it; once the series is exported the entry is inert and should be removed.
PENDING: dict[str, str] = {}  # metrics a query may name before the code exports them


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text("utf-8")))


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in model["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows keep their panels inside
    return out


def dashboard_queries() -> list[str]:
    model = dashboard()
    queries = [t["expr"] for p in panels(model) for t in p.get("targets", [])]
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            queries.append(query.get("query", "") if isinstance(query, dict) else str(query))
    return queries


def alert_queries() -> list[str]:
    rule = yaml.safe_load(RULES.read_text("utf-8"))
    return [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]


def queried() -> list[tuple[str, str]]:
    pairs = {(name, source) for source, queries in (("dashboard", dashboard_queries()),
                                                     ("alerts", alert_queries()))
             for expr in queries for name in names_in(expr)}
    return sorted(pairs)


def test_the_scan_finds_the_metrics_the_registry_renders() -> None:
    from autoscaler.control.metrics import Metrics

    rendered = {line.split()[2] for line in Metrics().render().splitlines()
                if line.startswith("# TYPE")}
    names = {name.removesuffix("_bucket") for name in exported()
             if not name.endswith(("_sum", "_count"))}
    assert rendered <= names


@pytest.mark.parametrize(("name", "source"), queried())
def test_every_queried_metric_is_exported(name: str, source: str) -> None:
    if name not in exported() and name in PENDING:
        pytest.xfail(f"not exported yet ({PENDING[name]})")
    assert name in exported(), f"{source} queries {name}, which the code does not export"


@pytest.mark.parametrize("expr", dashboard_queries() + alert_queries())
def test_every_label_a_query_names_is_one_its_metrics_carry(expr: str) -> None:
    series = exported()
    metrics = [series[n] for n in names_in(expr) if n in series]
    if any(n not in series for n in names_in(expr)):
        pytest.skip("uses a metric not exported yet (see the test above)")
    carried = set(TARGET_LABELS).union(*(m.labels for m in metrics))
    for metric, label in selector_labels(expr):
        assert label in series[metric].labels | TARGET_LABELS, (metric, label)
    assert grouping_labels(expr) <= carried


@pytest.mark.parametrize(("expr", "names"), [
    ("sum by (pool) (rate(a_total{x=~\"y|z\"}[5m])) > 0", {"a_total"}),
    ("histogram_quantile(0.9, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
    ("changes((count(b and on(instance) c == 1) or vector(0))[1h:1m]) >= 6", {"b", "c"}),
    ("time() - d > 120", {"d"}),
])
def test_the_tokenizer_finds_exactly_the_metric_names(expr: str, names: set[str]) -> None:
    assert names_in(expr) == names


def test_the_dashboard_is_a_grafana_model_with_unique_panel_ids_and_a_datasource_variable() -> None:
    model = dashboard()
    assert model["uid"] and model["title"] and model["schemaVersion"] >= 36
    ids = [p["id"] for p in panels(model)]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels(model):
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["refId"] and target["expr"].strip()


@pytest.mark.parametrize("topic", [
    "pending pods", "pass duration", "nodes by pool", "nodes by priority", "nodes by zone",
    "scale operations", "scale failures", "backoffs", "cost rate"])
def test_the_dashboard_shows(topic: str) -> None:
    titles = [p["title"].lower() for p in panels(dashboard())]
    assert any(topic in title for title in titles), titles
