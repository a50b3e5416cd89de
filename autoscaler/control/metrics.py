"""Prometheus metrics (text exposition format 0.0.4, written by hand), liveness and readiness,
and the small HTTP server that serves them on ``/metrics``, ``/healthz`` and ``/readyz``.

Callers: ``control.controller`` updates a ``Metrics`` after every pass and marks ``Health``;
``control.serve`` starts ``MetricsServer`` on its own thread; tests read ``Registry.render()``
or the server over loopback. No dependency: the format is a few lines of text per series.

``/healthz`` fails when the loop is stuck: no completed pass (leader or standby) for
``stuck_after`` tick intervals, so the kubelet restarts a hung process. ``/readyz`` asks the
injected check (in ``surge run``: the cluster cache is synced and this replica knows who leads).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Labels = tuple[tuple[str, str], ...]
LOOP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self.lock = threading.Lock()

    def key(self, labels: Mapping[str, str]) -> Labels:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {sorted(labels)}")
        return tuple((name, str(labels[name])) for name in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self.values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self.key(labels)
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        with self.lock:
            return self.values.get(self.key(labels), 0.0)

    def lines(self) -> list[str]:
        with self.lock:
            return [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self.values.items())]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = (),
                 read: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text, label_names)
        self.values: dict[Labels, float] = {}
        self.read = read  # an unlabelled gauge read at scrape time

    def set(self, value: float, **labels: str) -> None:
        key = self.key(labels)
        with self.lock:
            self.values[key] = value

    def replace(self, series: Iterable[tuple[Mapping[str, str], float]]) -> None:
        """The whole labelled set at once: series not given disappear (a pool no longer
        planned, a backoff that ended)."""
        fresh = {self.key(labels): value for labels, value in series}
        with self.lock:
            self.values = fresh

    def get(self, **labels: str) -> float:
        with self.lock:
            return self.values.get(self.key(labels), 0.0)

    def lines(self) -> list[str]:
        if self.read is not None:
            return [f"{self.name} {_number(self.read())}"]
        with self.lock:
            return [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self.values.items())]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = LOOP_BUCKETS) -> None:
        super().__init__(name, help_text)
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * len(self.bounds)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        with self.lock:
            for i, bound in enumerate(self.bounds):
                if value <= bound:
                    self.counts[i] += 1
            self.total += 1
            self.sum += value

    def lines(self) -> list[str]:
        with self.lock:
            out = [f"{self.name}_bucket{_labels((), (('le', _number(b)),))} {c}"
                   for b, c in zip(self.bounds, self.counts, strict=True)]
            out.append(f'{self.name}_bucket{{le="+Inf"}} {self.total}')
            out.append(f"{self.name}_sum {_number(self.sum)}")
            out.append(f"{self.name}_count {self.total}")
            return out


class Registry:
    def __init__(self) -> None:
        self.metrics: list[_Metric] = []

    def add(self, metric: Any) -> Any:
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        out: list[str] = []
        for metric in self.metrics:
            out += metric.header()
            out += metric.lines()
        return "\n".join(out) + "\n"


class Metrics:
    """Every series ``surge run`` exports (names in docs/configuration.md)."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.loop_duration: Histogram = r.add(Histogram(
            "surge_loop_duration_seconds", "Wall time of one reconcile pass (observe, plan, "
            "act, record)."))
        self.decision_duration: Histogram = r.add(Histogram(
            "surge_decision_duration_seconds", "Wall time of encode + plan within a pass."))
        self.passes: Counter = r.add(Counter(
            "surge_loop_passes_total", "Reconcile passes by trigger (tick, batch, once) and "
            "outcome (acted, idle, skipped, standby, error).", ("trigger", "outcome")))
        self.last_pass: Gauge = r.add(Gauge(
            "surge_last_pass_timestamp_seconds", "Unix time the last pass completed."))
        self.pending_pods: Gauge = r.add(Gauge(
            "surge_pending_pods", "Unschedulable pods seen by the last pass."))
        self.planned_nodes: Gauge = r.add(Gauge(
            "surge_planned_nodes", "New nodes the last plan asked of each pool.", ("pool",)))
        self.unplaced_pods: Gauge = r.add(Gauge(
            "surge_unplaced_pods", "Pending pods the last plan could place nowhere."))
        self.scale_operations: Counter = r.add(Counter(
            "surge_scale_operations_total", "Scale operations by pool and result: started, "
            "dry-run, conflict, throttled, error, scale-back (when asked), succeeded, failed "
            "(when they ended).", ("pool", "result")))
        self.inflight: Gauge = r.add(Gauge(
            "surge_operations_in_flight", "Cloud operations started and not yet ended."))
        self.backoffs: Gauge = r.add(Gauge(
            "surge_backoffs", "Options in backoff (1 per VM size, zone and priority).",
            ("vm_size", "zone", "priority", "reason")))
        self.api_errors: Counter = r.add(Counter(
            "surge_api_errors_total", "Failed calls to the Kubernetes API and ARM.",
            ("api", "operation")))
        self.events: Counter = r.add(Counter(
            "surge_events_total", "Events on pods by reason and outcome (sent, deduplicated, "
            "rate-limited).", ("reason", "outcome")))
        self.recovered: Counter = r.add(Counter(
            "surge_scale_down_recovered_nodes_total", "Nodes an earlier leader left cordoned "
            "for scale-down (surge's mark, no deletion in flight) that a new leader uncordoned, "
            "or only unmarked when already uncordoned.", ("action",)))
        self.leader: Gauge = r.add(Gauge(
            "surge_leader", "1 while this replica holds the lease and acts, else 0."))
        self.nodes: Gauge = r.add(Gauge(
            "surge_nodes", "Registered nodes of the agent pools, by pool, VM size, priority and "
            "zone.", ("pool", "vm_size", "priority", "zone")))
        self.cost: Gauge = r.add(Gauge(
            "surge_cost_per_hour", "Price per hour of the registered nodes of the agent pools "
            "(USD, shipped or refreshed price table), by pool, priority and zone.",
            ("pool", "priority", "zone")))

    def render(self) -> str:
        return self.registry.render()


class Health:
    """Liveness from pass completions; the clock is injectable (tests never sleep)."""

    def __init__(self, interval: float, stuck_after: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.stuck_after = stuck_after
        self.clock = clock
        self.started = clock()
        self.last_pass: float | None = None

    def passed(self) -> None:
        self.last_pass = self.clock()

    def live(self) -> tuple[bool, str]:
        since = self.clock() - (self.last_pass if self.last_pass is not None else self.started)
        limit = self.interval * self.stuck_after
        if since > limit:
            return False, f"stuck: no pass completed in {since:.0f}s (limit {limit:.0f}s)"
        return True, "ok"


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every few seconds would drown the controller's own log

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.metrics.render(), CONTENT_TYPE)
        elif path in ("/healthz", "/livez"):
            ok, why = self.server.health.live()
            self._send(200 if ok else 500, why + "\n")
        elif path == "/readyz":
            ok, why = self.server.ready()
            self._send(200 if ok else 503, why + "\n")
        else:
            self._send(404, "not found\n")

    def _send(self, status: int, text: str, kind: str = "text/plain; charset=utf-8") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class MetricsServer(ThreadingHTTPServer):
    """``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread."""

    daemon_threads = True

    def __init__(self, address: str, port: int, metrics: Metrics, health: Health,
                 ready: Callable[[], tuple[bool, str]]) -> None:
        super().__init__((address, port), _Handler)
        self.metrics = metrics
        self.health = health
        self.ready = ready
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="surge-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)
