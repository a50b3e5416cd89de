"""Watch-backed caches of pods, nodes, PodDisruptionBudgets, PersistentVolumeClaims and
PersistentVolumes: the ClusterSource the control loop reads and acts through in-cluster.

Callers: ``kube.client.connect`` builds a ``ClusterCache`` over the real API (``KubeApi``);
``surge run`` uses it through that; adapter tests drive it against the twin. No ``kubernetes``
import here: the API is a ``Transport`` (``kube.reflector``), and model values come from an
injected ``Decoder`` (``control.kubeobjects``). One ``Reflector`` thread per resource keeps its
table current (list, watch, re-list on 410, backoff: see ``kube.reflector``).

``observe`` raises ``NotSynced`` until every first list has completed, while a re-list after a
410 is in progress (events were missed, so the old view is known to be incomplete) and when a
watch has been down for longer than ``stale_after`` seconds: the loop never acts on a view it
cannot trust. Budgets count as much as pods here: a plan that misreads them evicts what it
must not. Pods are kept when bound (they hold node capacity) or pending (unschedulable for
one of the configured schedulers); ``kube.objects.pod_role`` decides.

Volume zones (``watch_volumes``): the pods thread records which claims each pod mounts
(``Reflector.refs``); claims (-> their volume) and volumes (-> their zones) are tables of their
own, changing independently of the pods. ``observe`` joins them (``kube.volumes``) into each
claiming pod's ``volume_zones``, on a copy: the pods table keeps the decoder's values. The view
is rebuilt only when one of the tables changed since the last ``observe``; then only the pods
that mount claims are looked at (the zones of each claim memoised until the claims or volumes
change, each pod's copy kept while its pod and zones stay), the rest is a C-level copy of the
table. So an ``observe`` with no change since the last costs nothing, and one after a change
costs the copy plus a few dictionary look-ups per claiming pod, whatever changed.

Writes (scale-down): ``cordon`` is a merge patch of ``spec.unschedulable`` and of surge's mark
annotation (``now`` stamps it: the loop's clock in ``surge run``); ``evict`` posts a
policy/v1 Eviction and turns the answer into an ``EvictionResult``. Neither updates the tables:
the watch brings the change, so the tables never hold a state the API server did not send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from autoscaler.kube.objects import IGNORED, object_key, pod_role
from autoscaler.kube.reflector import (
    NODES,
    PDBS,
    PODS,
    PVCS,
    PVS,
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
from autoscaler.kube.source import ClusterSource, EvictionResult, NotSynced, Observation
from autoscaler.kube.volumes import ZoneIndex, Zones, claim_volume, pod_claims, volume_zones
from autoscaler.model.disruption import SCALE_DOWN_MARK, PodDisruptionBudget
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
    ``pod`` is only ever called from the pods thread, ``node`` from the nodes thread, ``pdb``
    from the budgets thread."""

    def pod(self, obj: Mapping[str, Any]) -> Pod: ...

    def node(self, obj: Mapping[str, Any]) -> Node: ...

    def pdb(self, obj: Mapping[str, Any]) -> PodDisruptionBudget | None:
        """None: a budget that selects no pod, left out of the view."""
        ...


class ClusterCache:
    """A ``ClusterSource`` kept current by watching pods, nodes, (``watch_pdbs``) budgets and
    (``watch_volumes``) claims and volumes."""

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
        self.evictions_failed = 0
        volumes = self.options.watch_volumes
        self.pods: Reflector[Pod] = Reflector(
            PODS, transport, self._admit_pod, self.cond, self.options,
            field_selector=self.options.pod_field_selector, wait=wait, clock=clock,
            refers=self._claims_of if volumes else None)
        self.nodes: Reflector[Node] = Reflector(
            NODES, transport, self._admit_node, self.cond, self.options,
            field_selector=None, wait=wait, clock=clock)
        self.pdbs: Reflector[PodDisruptionBudget] = Reflector(
            PDBS, transport, self._admit_pdb, self.cond, self.options,
            field_selector=None, wait=wait, clock=clock)
        # Claim key -> bound volume's name; volume name -> its zones. Unbound claims and
        # volumes without a zone restriction are left out: they restrict nothing.
        self.claims: Reflector[str] = Reflector(
            PVCS, transport, claim_volume, self.cond, self.options,
            field_selector=None, wait=wait, clock=clock)
        self.volumes: Reflector[Zones] = Reflector(
            PVS, transport, volume_zones, self.cond, self.options,
            field_selector=None, wait=wait, clock=clock)
        self.reflectors: tuple[Reflector[Any], ...] = (
            (self.pods, self.nodes)
            + ((self.pdbs,) if self.options.watch_pdbs else ())
            + ((self.claims, self.volumes) if volumes else ()))
        self._zones = ZoneIndex()
        self._view_version: tuple[int, ...] = ()
        self._view_pods: tuple[Pod, ...] = ()
        # Pod key -> (the table's pod, its copy with zones) of the last view: copies are
        # remade only for pods or zones that changed.
        self._zoned: dict[str, tuple[Pod, Pod]] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> ClusterCache:
        for reflector in self.reflectors:
            thread = threading.Thread(target=reflector.run, name=f"surge-{reflector.kind}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self, timeout: float = 5.0) -> None:
        for reflector in self.reflectors:
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

    def _admit_pdb(self, obj: Json) -> PodDisruptionBudget | None:
        return self._decoded(obj, self.decoder.pdb)

    def _claims_of(self, obj: Json) -> tuple[str, ...]:
        claims = self._decoded(obj, pod_claims)  # a malformed pod must not stop the thread
        return claims or ()

    # -- ClusterSource -------------------------------------------------------------------

    def observe(self) -> Observation:
        with self.cond:
            now = self.clock()
            for reflector in self.reflectors:
                problem = reflector.problem(now)
                if problem is not None:
                    raise NotSynced(problem)
            return Observation(self._pods_view(), tuple(self.nodes.table.values()),
                               tuple(self.pdbs.table.values()))

    def _pods_view(self) -> tuple[Pod, ...]:
        """The pods; those mounting bound claims carry their volumes' zones. Under ``cond``."""
        volumes = (self.claims.changes, self.volumes.changes)
        version = (self.pods.changes, *volumes)
        if version == self._view_version:
            return self._view_pods  # nothing changed: the same (immutable) view
        table = self.pods.table
        zoned: dict[str, Pod] = {}
        if self.options.watch_volumes:
            claims, zones_of = self.claims.table, self.volumes.table
            last, kept = self._zoned, {}
            for key, claim_keys in self.pods.refs.items():
                zones = self._zones.zones_of(claim_keys, claims, zones_of, volumes)
                pod = table.get(key)
                if pod is None or zones == pod.volume_zones:
                    continue
                done = last.get(key)  # the copy made last time, if pod and zones are the same
                if done is None or done[0] is not pod or done[1].volume_zones != zones:
                    done = (pod, replace(pod, volume_zones=zones))
                zoned[key] = done[1]
                kept[key] = done
            self._zoned = kept
        if zoned:
            view = dict(table)  # a C-level copy; the table keeps the decoder's values
            view.update(zoned)
            pods = tuple(view.values())
        else:
            pods = tuple(table.values())
        self._view_version, self._view_pods = version, pods
        return pods

    def cordon(self, node: str, unschedulable: bool) -> None:
        """Cordon (True) or uncordon (False) ``node``: a merge patch, so repeating it changes
        nothing. Cordoning marks the node as surge's (``SCALE_DOWN_MARK``: ``now``, RFC 3339)
        in the same patch, so a node is never cordoned by surge without the mark; uncordoning
        removes the field, as ``kubectl uncordon`` leaves it, and the mark (null deletes a key
        in a merge patch). Raises ``ApiError`` when the patch was not applied (no answer, or an
        error answer such as 404 for a node that is gone)."""
        mark: str | None = None
        if unschedulable:
            mark = self.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.transport.patch_node(node, {
            "metadata": {"annotations": {SCALE_DOWN_MARK: mark}},
            "spec": {"unschedulable": True if unschedulable else None},
        })

    def evict(self, pod: Pod, grace_seconds: int | None) -> EvictionResult:
        """Ask the Eviction API to evict ``pod``. The pod's uid is a precondition, so a pod
        re-created under the same name (a StatefulSet's) is never evicted in its place: that
        conflict reads as GONE, as the pod meant is. Never raises: 429 (a budget allows no
        disruption now, or the server sheds load: both mean later) is BLOCKED_BY_PDB, 404 is
        GONE, and any other answer or no answer at all is ERROR, logged and counted."""
        body: Json = {"apiVersion": "policy/v1", "kind": "Eviction",
                      "metadata": {"name": pod.name, "namespace": pod.namespace}}
        options: Json = {}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if pod.uid:
            options["preconditions"] = {"uid": pod.uid}
        if options:
            body["deleteOptions"] = options
        try:
            self.transport.evict(pod.namespace, pod.name, body)
        except ApiError as error:
            if error.status == 429:
                return EvictionResult.BLOCKED_BY_PDB
            if error.status == 404:
                return EvictionResult.GONE
            if error.status == 409 and "precondition" in error.message.lower():
                return EvictionResult.GONE
            self.evictions_failed += 1
            log.warning("eviction of %s failed: %s", pod.key, error)
            return EvictionResult.ERROR
        return EvictionResult.EVICTED

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

    def _changes(self) -> int:
        return sum(reflector.changes for reflector in self.reflectors)

    @property
    def version(self) -> int:
        """Grows with every applied change; see ``wait_changed``."""
        with self.cond:
            return self._changes()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` (checked under the cache's lock after each change)."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def wait_changed(self, since: int, timeout: float) -> int:
        """Block until something changed after ``version`` ``since``; returns the version."""
        self.wait_for(lambda: self._changes() > since, timeout)
        return self.version


if TYPE_CHECKING:  # mypy proves here that the cache is what the loop and scale-down call
    _SOURCE: type[ClusterSource] = ClusterCache
