"""Metric and label names read out of PromQL expressions, and the series the code exports.

Callers: tests/deploy/test_metrics.py. ``exported`` scans autoscaler/ for the metrics it
declares (``Counter``/``Gauge``/``Histogram`` of control/metrics.py, built with a literal name),
so a metric added anywhere, such as ``surge run``'s own gauges, is found without a list here.
``names_in`` is a small tokenizer, not a PromQL parser: it drops strings, label matchers,
ranges, grouping clauses and Grafana variables, and keeps the identifiers that are neither
functions nor keywords.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.support import ROOT

KINDS = {"Counter", "Gauge", "Histogram"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}
# Labels Prometheus attaches to every scraped series (ServiceMonitor targets).
TARGET_LABELS = {"instance", "job", "namespace", "pod", "service", "endpoint", "container"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_IDENT = re.compile(r"(?<![0-9.a-zA-Z_:])[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Series:
    name: str
    labels: frozenset[str]


@functools.cache
def exported(root: Path = ROOT / "autoscaler") -> dict[str, Series]:
    """Every series name the code exposes on /metrics (histograms as _bucket/_sum/_count)."""
    series: dict[str, Series] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            kind = getattr(node.func, "id", getattr(node.func, "attr", None))
            if kind not in KINDS or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            labels: frozenset[str] = frozenset()
            given = None  # a histogram's third argument is its buckets: it has no labels
            if kind != "Histogram":
                given = node.args[2] if len(node.args) > 2 else next(
                    (k.value for k in node.keywords if k.arg == "label_names"), None)
            if isinstance(given, ast.Tuple | ast.List):
                labels = frozenset(str(ast.literal_eval(e)) for e in given.elts)
            name = first.value
            if kind == "Histogram":
                series[f"{name}_bucket"] = Series(f"{name}_bucket", labels | {"le"})
                series[f"{name}_sum"] = Series(f"{name}_sum", labels)
                series[f"{name}_count"] = Series(f"{name}_count", labels)
            else:
                series[name] = Series(name, labels)
    return series


def _plain(expr: str) -> str:
    text = _STRING.sub('""', expr)
    return re.sub(r"\$\{?\w+\}?", "1", text)  # Grafana variables such as $__rate_interval


def names_in(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = _plain(expr)
    text = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or match.group(0).lower() in KEYWORDS:
            continue  # a function or an aggregation operator, or a keyword
        names.add(match.group(0))
    return names


def selector_labels(expr: str) -> set[tuple[str, str]]:
    """(metric, label) for every label matcher written on a metric."""
    found = set()
    for match in _SELECTOR.finditer(_plain(expr)):
        for label in _MATCHER.findall(match.group(2)):
            found.add((match.group(1) or "", label))
    return found


def grouping_labels(expr: str) -> set[str]:
    """Labels named in by/without/on/ignoring/group_* clauses."""
    return {label.strip() for _, labels in _GROUPING.findall(_plain(expr))
            for label in labels.split(",") if label.strip()}
