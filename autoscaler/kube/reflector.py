"""One resource kept in step with the API server: list, watch, re-list on 410, back off on errors.

Callers: ``kube.cache.ClusterCache`` runs one ``Reflector`` per resource (pods, nodes,
PodDisruptionBudgets, PersistentVolumeClaims, PersistentVolumes) on its own thread;
``kube.client.KubeApi`` implements the ``Transport`` it reads (and the cache writes) through
and raises its ``ApiError``. No ``kubernetes`` import here.

What a reflector does is what client-go's does: list in pages (one consistent snapshot), then
watch from the list's resourceVersion and apply ADDED, MODIFIED and DELETED; when a watch ends,
watch again from the last version seen; on 410 Expired, list again; on errors (5xx, 429, a
broken connection, a watch that closes at once) wait with exponential backoff (a longer
Retry-After wins) and retry. Every ``resync_every`` seconds it lists again quietly, in case an
event was ever missed. Waiting goes through an injectable ``wait`` so tests never sleep, and
time through an injectable ``clock``.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from autoscaler.kube.objects import DEFAULT_SCHEDULERS, object_key

log = logging.getLogger(__name__)
Json = dict[str, Any]
T = TypeVar("T")
EXPIRED = 410
PODS, NODES, PDBS = "pods", "nodes", "poddisruptionbudgets"
PVCS, PVS = "persistentvolumeclaims", "persistentvolumes"


class _GcPause:
    """Holders of a pause of the cyclic garbage collector, across threads.

    Parsing a page of pods allocates hundreds of thousands of dicts and lists that all stay
    alive until the page is decoded; each allocation burst triggers collections that walk
    every tracked object, the cache's 150,000 pods included. Measured: json.loads of a page
    is about 5 times slower with the collector on, and collecting between the pages of a
    150,000-pod list adds a third to its time. Nothing parsed here forms cycles, so pausing
    it while a list is read loses nothing; it is restored (if it was on) when the last holder
    leaves."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.holders == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.holders += 1
        try:
            yield
        finally:
            with self.lock:
                self.holders -= 1
                if self.holders == 0 and self.was_enabled:
                    gc.enable()


gc_paused = _GcPause()


class ApiError(Exception):
    """A failed API call; ``status`` 0 means the connection itself failed."""

    def __init__(self, status: int, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message if status == 0 else f"{status} {message}".strip())
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Json]
    resource_version: str
    next: str | None = None  # the ``continue`` token of the following page


class WatchStream(Protocol):
    def __iter__(self) -> Iterator[Json]: ...

    def close(self) -> None:
        """Stop the stream, from any thread; iteration then ends or raises ApiError."""
        ...


class Transport(Protocol):
    """The API calls the cache makes; ``kind`` is a resource's plural (``PODS``, ...). Every
    call raises ``ApiError`` when it fails, and none retries."""

    def list(self, kind: str, *, limit: int, token: str | None,
             field_selector: str | None) -> Page: ...

    def watch(self, kind: str, *, resource_version: str, field_selector: str | None,
              timeout_seconds: int) -> WatchStream: ...

    def create_event(self, namespace: str, body: Json) -> None: ...

    def patch_node(self, name: str, patch: Json) -> None:
        """A JSON merge patch of the node."""
        ...

    def evict(self, namespace: str, name: str, body: Json) -> None:
        """POST ``body`` (a policy/v1 Eviction) to the pod's ``eviction`` subresource."""
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        base = min(self.cap, self.initial * self.factor ** max(0, failures - 1))
        return max(base, retry_after or 0.0)


@dataclass(frozen=True, slots=True)
class CacheOptions:
    schedulers: tuple[str, ...] = DEFAULT_SCHEDULERS
    page_size: int = 2000  # 150,000 pods: as fast as 5000 (~11-13 s), 100 MB less at peak
    watch_timeout: int = 300  # seconds the server keeps one watch open
    # A quiet re-list: observe keeps serving the current table meanwhile. It starts at the
    # first event (or watch end) after the period, so quiet clusters resync a little later.
    resync_every: float | None = 1800.0
    stale_after: float = 60.0
    short_watch: float = 1.0  # a watch that ends this fast with no event counts as a failure
    backoff: Backoff = Backoff()
    # Ended pods hold no capacity and need no node: let the server leave them out.
    pod_field_selector: str | None = "status.phase!=Succeeded,status.phase!=Failed"
    component: str = "surge"  # the events' source
    # Scale-down reads PodDisruptionBudgets (RBAC: list and watch policy/poddisruptionbudgets).
    # Off: ``Observation.pdbs`` is empty, plans count on no budget (kube-system pods then block
    # their nodes) and only the Eviction API's 429s hold budgets; for scale-down disabled.
    watch_pdbs: bool = True
    # Pending pods' PersistentVolume zones (RBAC: list and watch persistentvolumeclaims and
    # persistentvolumes). Off: ``Pod.volume_zones`` stays None, so a pod whose disk lives in
    # one zone may get a node in another, where it can never schedule.
    watch_volumes: bool = True


class Reflector(Generic[T]):
    """Keeps ``table`` (object key -> model value) in step with one resource's objects.

    With ``refers``, ``refs`` holds, for every object in ``table`` that refers to others (a
    pod to its claims), the keys ``refers`` read off its JSON: kept with the table (same list,
    same events, same lock), so it never names an object the table does not hold, and the
    model value need not carry what only the cache uses."""

    def __init__(
        self, kind: str, transport: Transport, admit: Callable[[Json], T | None],
        cond: threading.Condition, options: CacheOptions, *, field_selector: str | None,
        wait: Callable[[float], object] | None, clock: Callable[[], float],
        refers: Callable[[Json], tuple[str, ...]] | None = None,
    ) -> None:
        self.kind = kind
        self.transport = transport
        self.admit = admit
        self.refers = refers
        self.refs: dict[str, tuple[str, ...]] = {}
        self.cond = cond
        self.options = options
        self.field_selector = field_selector
        self.clock = clock
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._stream: WatchStream | None = None
        self.table: dict[str, T] = {}
        self.synced = False  # a complete list has been loaded at least once
        self.relisting = True  # the table is known to be incomplete
        self.resource_version = ""
        self.down_since: float | None = None
        self.last_error = ""
        self.relist_reason = ""
        self.failures = 0
        self.lists = 0
        self.watches = 0
        self.changes = 0
        self._resync_at: float | None = None

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        need_list = True
        while not self.stopped:
            try:
                if need_list:
                    self._list()
                    need_list = False
                need_list = self._watch()
            except ApiError as error:
                if self.stopped:
                    break
                if error.status == EXPIRED:
                    log.info("%s: %s; listing again", self.kind, error)
                    with self.cond:
                        self.relisting = True
                        self.relist_reason = self.last_error = str(error)
                        self.cond.notify_all()
                    need_list = True
                    continue
                self._fail(error)
            except Exception as error:  # a dead thread would freeze the view silently
                log.exception("%s: unexpected error", self.kind)
                self._fail(ApiError(0, repr(error)))

    def _fail(self, error: ApiError) -> None:
        with self.cond:
            self.failures += 1
            self.last_error = str(error)
            if self.down_since is None:
                self.down_since = self.clock()
            self.cond.notify_all()
        delay = self.options.backoff.delay(self.failures, error.retry_after)
        log.warning("%s: %s; retrying in %.1fs", self.kind, error, delay)
        self._wait(delay)

    def _list(self) -> None:
        fresh: dict[str, T] = {}
        refs: dict[str, tuple[str, ...]] = {}
        refers = self.refers
        token: str | None = None
        version = ""
        with gc_paused():  # for the whole list: collecting between pages costs as much
            while not self.stopped:
                page = self.transport.list(self.kind, limit=self.options.page_size,
                                           token=token, field_selector=self.field_selector)
                version = page.resource_version or version
                for obj in page.items:
                    value = self.admit(obj)
                    if value is not None:
                        key = object_key(obj)
                        fresh[key] = value
                        if refers is not None and (referred := refers(obj)):
                            refs[key] = referred
                token = page.next
                if not token:
                    break
        if self.stopped:
            return
        with self.cond:
            self.table = fresh
            self.refs = refs
            self.resource_version = version
            self.synced = True
            self.relisting = False
            self.failures = 0
            self.down_since = None
            self.lists += 1
            self.changes += 1
            every = self.options.resync_every
            self._resync_at = None if every is None else self.clock() + every
            self.cond.notify_all()

    def _resync_due(self) -> bool:
        return self._resync_at is not None and self.clock() >= self._resync_at

    def _watch(self) -> bool:
        """One watch, until it ends; True when a periodic re-list is due."""
        started = self.clock()
        stream = self.transport.watch(
            self.kind, resource_version=self.resource_version,
            field_selector=self.field_selector, timeout_seconds=self.options.watch_timeout,
        )
        with self.cond:
            self._stream = stream
            self.down_since = None
            self.watches += 1
            self.cond.notify_all()
        events = 0
        try:
            if self.stopped:
                return False
            for event in stream:
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    raise ApiError(int(obj.get("code") or 0), str(obj.get("message") or ""))
                self._apply(str(kind), obj)
                events += 1
                if events == 1:  # a watch that delivers is healthy: backoff starts over
                    with self.cond:
                        self.failures = 0
                if self.stopped or self._resync_due():
                    break
        finally:
            self._stream = None
            stream.close()
        if events == 0 and self.clock() - started < self.options.short_watch and not self.stopped:
            raise ApiError(0, "watch closed at once with no event")
        return self._resync_due()

    def _apply(self, kind: str, obj: Json) -> None:
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            with self.cond:
                self.resource_version = version or self.resource_version
            return
        key = object_key(obj)
        value = None if kind == "DELETED" else self.admit(obj)
        referred = () if value is None or self.refers is None else self.refers(obj)
        with self.cond:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value
            if referred:
                self.refs[key] = referred
            else:
                self.refs.pop(key, None)
            if version:
                self.resource_version = version
            self.changes += 1
            self.cond.notify_all()

    def problem(self, now: float) -> str | None:
        """Why this resource's view cannot be trusted now, or None. Call under ``cond``."""
        if not self.synced:
            return f"{self.kind}: first list not complete ({self.last_error or 'in progress'})"
        if self.relisting:
            problem = f"{self.kind}: listing again after {self.relist_reason}"
            if self.last_error != self.relist_reason:
                problem += f" (then: {self.last_error})"
            return problem
        if self.down_since is not None and now - self.down_since > self.options.stale_after:
            down = now - self.down_since
            return f"{self.kind}: watch down for {down:.0f}s ({self.last_error})"
        return None
