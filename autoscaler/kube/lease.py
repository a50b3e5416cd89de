"""Leader election on a ``coordination.k8s.io/v1`` Lease: only the leader acts.

Callers: ``control.serve`` builds a ``LeaderElector`` over ``KubeLeaseApi`` (the official
client) and runs it on its own thread; ``control.controller`` asks ``is_leader()`` before every
pass and before every write to the cloud; adapter tests drive ``step()`` by hand against the
Kubernetes twin with an injected clock.

The protocol is client-go's: read the Lease; if nobody holds it, or its holder has not renewed
it for ``lease_duration`` seconds as measured on *our* clock (from when we first saw its
current record, so clocks of different machines never compare), write ourselves in as holder
with the resourceVersion we read; a concurrent writer makes that write fail with 409 and the
round is lost. The leader renews every ``retry_period``. A leader counts as leader only until
``renew_deadline`` seconds after its last successful renewal: if it cannot renew in that time
(API down, partitioned, a stuck thread) it stops acting, before anyone else may take the Lease
over (``lease_duration`` > ``renew_deadline``). Releasing on shutdown empties the holder so a
standby takes over at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client as k8s

from autoscaler.kube.client import json_call, json_or_none
from autoscaler.kube.reflector import ApiError, Json

log = logging.getLogger(__name__)
CONFLICT = 409


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period."""

    name: str = "surge"
    namespace: str = "kube-system"
    identity: str = ""  # empty: the caller supplies one (the pod name)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


class LeaseApi(Protocol):
    """Lease reads and writes as JSON; errors are ``ApiError`` (404, 409, ...)."""

    def get(self, namespace: str, name: str) -> Json | None:
        """The Lease, or None when there is none."""
        ...

    def create(self, namespace: str, body: Json) -> Json: ...

    def replace(self, namespace: str, name: str, body: Json) -> Json:
        """PUT; 409 when ``body``'s resourceVersion is not the current one."""
        ...


class KubeLeaseApi:
    """``LeaseApi`` over the official client (raw JSON both ways: MicroTime fields are sent
    exactly as the API server writes them)."""

    def __init__(self, api: k8s.ApiClient, request_timeout: float = 10.0) -> None:
        self.leases = k8s.CoordinationV1Api(api)
        self.timeout = request_timeout

    def get(self, namespace: str, name: str) -> Json | None:
        return json_or_none(lambda: self.leases.read_namespaced_lease(
            name, namespace, _preload_content=False, _request_timeout=self.timeout))

    def create(self, namespace: str, body: Json) -> Json:
        raw: Any = body  # the client sends a dict as it is
        return json_call(lambda: self.leases.create_namespaced_lease(
            namespace, raw, _preload_content=False, _request_timeout=self.timeout))

    def replace(self, namespace: str, name: str, body: Json) -> Json:
        raw: Any = body
        return json_call(lambda: self.leases.replace_namespaced_lease(
            name, namespace, raw, _preload_content=False, _request_timeout=self.timeout))


def micro_time(at: datetime) -> str:
    """A ``MicroTime`` as the API server writes it: RFC 3339, six fraction digits, UTC."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires and renews one Lease; ``is_leader`` is the only question callers ask."""

    def __init__(
        self, api: LeaseApi, config: LeaseConfig, *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        wait: Callable[[float], object] | None = None,
        on_error: Callable[[ApiError], None] | None = None,
    ) -> None:
        if not config.identity:
            raise ValueError("leader election needs an identity (the pod name)")
        self.api = api
        self.config = config
        self.clock = clock
        self.now = now
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.observed: Json | None = None  # the Lease as last read or written
        self.observed_at = 0.0  # our clock when its record last changed
        self.renewed_at: float | None = None  # our clock at our last successful write
        self.term = 0  # bumped each time we become leader
        self.holder: str | None = None  # who holds it, as last seen
        self.contact_at: float | None = None  # our clock at the last answer of the API
        self.errors = 0  # failed API calls (other than a lost race)
        self.on_error = on_error

    @property
    def identity(self) -> str:
        return self.config.identity

    def is_leader(self) -> bool:
        with self._lock:
            return self.holder == self.identity and self._fresh()

    def knows_leader(self) -> bool:
        """Whether this replica knows who leads (itself or another) as of a recent answer."""
        with self._lock:
            return (self.contact_at is not None
                    and self.clock() - self.contact_at < self.config.lease_duration)

    # -- one round ------------------------------------------------------------------------

    def step(self) -> bool:
        """One try to acquire or renew; returns whether we lead afterwards. Never raises for
        an answer of the API: a failed round is logged and counted."""
        leading_before = self.is_leader()
        try:
            self._round()
        except ApiError as error:
            if error.status != CONFLICT:
                self.errors += 1
                log.warning("lease %s/%s: %s", self.config.namespace, self.config.name, error)
                if self.on_error is not None:
                    self.on_error(error)
            else:
                log.info("lease %s: another replica wrote it first", self.config.name)
        leading = self.is_leader()
        if leading and not leading_before:
            log.info("became leader (lease %s/%s, term %d)", self.config.namespace,
                     self.config.name, self.term)
        elif leading_before and not leading:
            log.warning("stopped leading (lease held by %s)", self.holder or "nobody")
        return leading

    def _round(self) -> None:
        cfg = self.config
        started = self.clock()
        lease = self.api.get(cfg.namespace, cfg.name)
        if lease is None:
            self._write(self.api.create(cfg.namespace, self._body(None)), started, True)
            return
        spec = lease.get("spec") or {}
        with self._lock:
            self.contact_at = started
            self.holder = spec.get("holderIdentity") or None
            if self._record(lease) != self._record(self.observed):
                self.observed, self.observed_at = lease, started
        holder = self.holder
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder not in (None, self.identity) and started < self.observed_at + duration:
            return  # held, and renewed recently enough by our clock
        mine = holder == self.identity
        written = self.api.replace(cfg.namespace, cfg.name, self._body(lease))
        self._write(written, started, not mine or not self._fresh())

    def _fresh(self) -> bool:
        """Whether our last renewal is within the renew deadline."""
        renewed = self.renewed_at
        return renewed is not None and self.clock() - renewed < self.config.renew_deadline

    def _write(self, lease: Json, started: float, new_term: bool) -> None:
        with self._lock:
            # A renewal counts from when the round began: the write may have taken long.
            if new_term:
                self.term += 1
            self.observed, self.observed_at = lease, started
            self.renewed_at = self.contact_at = started
            self.holder = self.identity

    @staticmethod
    def _record(lease: Json | None) -> tuple[object, ...]:
        if lease is None:
            return ()
        spec = lease.get("spec") or {}
        return (spec.get("holderIdentity"), spec.get("renewTime"),
                spec.get("leaseTransitions"), (lease.get("metadata") or {}).get("resourceVersion"))

    def _body(self, current: Json | None) -> Json:
        cfg = self.config
        stamp = micro_time(self.now())
        spec: dict[str, Any] = dict((current or {}).get("spec") or {})
        meta: dict[str, Any] = {"name": cfg.name, "namespace": cfg.namespace}
        if current is not None:
            meta = dict(current.get("metadata") or meta)  # keeps resourceVersion: 409 if stale
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = stamp
            if current is not None:
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.setdefault("leaseTransitions", 0)
        spec.update(holderIdentity=self.identity, renewTime=stamp,
                    leaseDurationSeconds=max(1, round(cfg.lease_duration)))
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": spec}

    def release(self) -> bool:
        """Give the Lease up (holder emptied) if we hold it, so a standby need not wait for it
        to expire. Returns whether it was released."""
        with self._lock:
            leading = self._fresh() and self.holder == self.identity
            self.renewed_at = None
        if not leading:
            return False
        cfg = self.config
        try:
            lease = self.api.get(cfg.namespace, cfg.name)
            spec = dict((lease or {}).get("spec") or {})
            if lease is None or spec.get("holderIdentity") != self.identity:
                return False
            spec.update(holderIdentity=None, leaseDurationSeconds=1,
                        renewTime=micro_time(self.now()))
            self.api.replace(cfg.namespace, cfg.name, {**lease, "spec": spec})
        except ApiError as error:
            log.warning("lease %s not released: %s", cfg.name, error)
            return False
        with self._lock:
            self.holder = None
        log.info("released lease %s/%s", cfg.namespace, cfg.name)
        return True

    # -- the renewal thread ---------------------------------------------------------------

    def run(self) -> None:
        """Rounds every ``retry_period`` until ``stop``."""
        while not self._stop.is_set():
            self.step()
            self._wait(self.config.retry_period)

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self.run, name="surge-lease", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
