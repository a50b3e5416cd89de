"""Watch-backed caches of pods and nodes: the ClusterSource the control loop reads in-cluster.

Callers: ``kube.client.connect`` builds a ``ClusterCache`` over the real API (``KubeApi``);
``surge run`` uses it through that; adapter tests drive it against the twin. No ``kubernetes``
import here: the API is a ``Transport`` (``kube.reflector``), and model values come from an
injected ``Decoder`` (``control.kubeobjects``). One ``Reflector`` thread per resource keeps its
table current (list, watch, re-list on 410, backoff: see ``kube.reflector``).

``observe`` raises ``NotSynced`` until both first lists have completed, while a re-list after a
410 is in progress (events were missed, so the old view is known to be incomplete) and when a
watch has been down for longer than ``stale_after`` seconds: the loop never acts on a view it
cannot trust. Pods are kept when bound (they hold node capacity) or pending (unschedulable for
one of the configured schedulers); ``kube.objects.pod_role`` decides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from autoscaler.kube.objects import IGNORED, object_key, pod_role
from autoscaler.kube.reflector import (
    ApiError,
    Backoff,
    CacheOptions,
    Json,
    Page,
    Reflector,
    Transport,
    WatchStream,
    gc_paused,
)
from autoscaler.kube.source import NotSynced, Observation
from autoscaler.model.errors import ValidationError
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod

__all__ = [
    "ApiError", "Backoff", "CacheOptions", "ClusterCache", "Decoder", "Json", "Page",
    "Transport", "WatchStream", "gc_paused",
]
log = logging.getLogger(__name__)
T = TypeVar("T")


class Decoder(Protocol):
    """Kubernetes JSON -> model values; raises ``ValidationError`` on what it cannot read.
    ``pod`` is only ever called from the pods thread, ``node`` from the nodes thread."""

    def pod(self, obj: Mapping[str, Any]) -> Pod: ...

    def node(self, obj: Mapping[str, Any]) -> Node: ...


class ClusterCache:
    """A ``ClusterSource`` kept current by watching pods and nodes."""

    def __init__(
        self, transport: Transport, decoder: Decoder, options: CacheOptions | None = None, *,
        wait: Callable[[float], object] | None = None, clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC), instance: str = "",
    ) -> None:
        self.transport = transport
        self.decoder = decoder
        self.options = options or CacheOptions()
        self.clock = clock
        self.now = now
        self.instance = instance
        self.cond = threading.Condition()
        self.events_failed = 0
        self._events = 0
        self._warned: set[str] = set()
        self.pods: Reflector[Pod] = Reflector(
            "pods", transport, self._admit_pod, self.cond, self.options,
            field_selector=self.options.pod_field_selector, wait=wait, clock=clock)
        self.nodes: Reflector[Node] = Reflector(
            "nodes", transport, self._admit_node, self.cond, self.options,
            field_selector=None, wait=wait, clock=clock)
        self._threads: list[threading.Thread] = []

    def start(self) -> ClusterCache:
        for reflector in (self.pods, self.nodes):
            thread = threading.Thread(target=reflector.run, name=f"surge-{reflector.kind}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self, timeout: float = 5.0) -> None:
        for reflector in (self.pods, self.nodes):
            reflector.stop()
        for thread in self._threads:
            thread.join(timeout)

    def _decoded(self, obj: Json, decode: Callable[[Json], T]) -> T | None:
        try:
            return decode(obj)
        except (ValidationError, AttributeError, TypeError, KeyError, ValueError) as error:
            # An object the API server took but we cannot read (a field of a newer
            # Kubernetes, a malformed value): planning without it beats stopping.
            key = object_key(obj)
            if key not in self._warned:  # once per object: a bad pod must not flood the log
                self._warned.add(key)
                log.warning("ignoring %s: %s", key, error)
            return None

    def _admit_pod(self, obj: Json) -> Pod | None:
        if pod_role(obj, self.options.schedulers) == IGNORED:
            return None
        return self._decoded(obj, self.decoder.pod)

    def _admit_node(self, obj: Json) -> Node | None:
        return self._decoded(obj, self.decoder.node)

    # -- ClusterSource -------------------------------------------------------------------

    def observe(self) -> Observation:
        with self.cond:
            now = self.clock()
            for reflector in (self.pods, self.nodes):
                problem = reflector.problem(now)
                if problem is not None:
                    raise NotSynced(problem)
            return Observation(tuple(self.pods.table.values()), tuple(self.nodes.table.values()))

    def record_event(self, pod: Pod, reason: str, message: str) -> None:
        """A core/v1 Event on the pod. A failure is logged and counted, never raised: an
        event is worth less than the loop pass that wants to send it."""
        try:
            self.transport.create_event(pod.namespace, self.event_body(pod, reason, message))
        except ApiError as error:
            self.events_failed += 1
            log.warning("event %s on %s not recorded: %s", reason, pod.key, error)

    def event_body(self, pod: Pod, reason: str, message: str) -> Json:
        now = self.now()
        self._events += 1
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        component = self.options.component
        return {
            "apiVersion": "v1", "kind": "Event",
            # The name pattern of client-go's recorder: object name, then a unique hex suffix.
            "metadata": {"name": f"{pod.name}.{time.time_ns():x}{self._events:x}",
                         "namespace": pod.namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod.name,
                               "namespace": pod.namespace,
                               **({"uid": pod.uid} if pod.uid else {})},
            "reason": reason, "message": message[:1024], "type": "Normal",
            "source": {"component": component}, "reportingComponent": component,
            "reportingInstance": self.instance or component,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }

    # -- change notification (event-triggered loops, tests) --------------------------------

    @property
    def version(self) -> int:
        """Grows with every applied change; see ``wait_changed``."""
        with self.cond:
            return self.pods.changes + self.nodes.changes

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` (checked under the cache's lock after each change)."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def wait_changed(self, since: int, timeout: float) -> int:
        """Block until something changed after ``version`` ``since``; returns the version."""
        self.wait_for(lambda: self.pods.changes + self.nodes.changes > since, timeout)
        return self.version
