"""Shared pieces of the Kubernetes adapter tests: a running twin, a kubeconfig, a cache over the
real ``kubernetes`` client, a gate that stands in for the cache's backoff waits, and builders of
pods that mount claims.

Callers: tests/adapters/test_kube_*.py import the fixtures by name. Nothing here sleeps: tests
wait on the cache's condition variable (``ClusterCache.wait_for``) with a bound, and the cache's
retry waits go through ``Gate``, which records each delay and returns at once unless closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from autoscaler.control.kubeobjects import KubeDecoder
from autoscaler.kube.cache import CacheOptions, ClusterCache
from autoscaler.kube.client import KubeApi, api_client
from autoscaler.kube.source import NotSynced
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_objects import pod_json, with_claims
from tests.builders import pod

BOUND = 10.0  # seconds: the longest any test waits for a condition before failing
POD_LIST = ("GET /api/v1/pods?", "limit=")
POD_WATCH = ("GET /api/v1/pods?", "watch=true")
PODS_PATH = "/api/v1/pods"


class Gate:
    """The cache's ``wait``: records the delay asked for and returns at once while open. Once
    closed, each wait blocks until the test lets it pass (``release``) or opens the gate;
    nothing blocks longer than ``BOUND``."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._cond = threading.Condition()
        self._passes: int | None = None  # None: open

    def close(self) -> None:
        with self._cond:
            self._passes = 0

    def open(self) -> None:
        with self._cond:
            self._passes = None
            self._cond.notify_all()

    def release(self, count: int) -> None:
        with self._cond:
            self._passes = (self._passes or 0) + count
            self._cond.notify_all()

    def __call__(self, delay: float) -> None:
        with self._cond:
            self.delays.append(delay)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._passes is None or self._passes > 0, BOUND)
            if self._passes:
                self._passes -= 1

    def wait_for_delays(self, count: int) -> bool:
        """Until at least ``count`` waits have begun."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.delays) >= count, BOUND)


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Fixtures are named apart from these functions so that test modules can import the functions
# (pytest finds fixtures by the names in a module) without parameters shadowing imports.

@pytest.fixture(name="twin")
def twin_fixture() -> Iterator[KubeTwin]:
    server = KubeTwin().start()
    yield server
    server.stop()


@pytest.fixture(name="kubeconfig")
def kubeconfig_fixture(twin: KubeTwin, tmp_path: Path) -> str:
    return twin.write_kubeconfig(str(tmp_path / "kubeconfig"))


CacheFactory = Callable[..., ClusterCache]


@pytest.fixture(name="make_cache")
def make_cache_fixture(kubeconfig: str) -> Iterator[CacheFactory]:
    """Builds started caches over the real client; each is closed after the test."""
    made: list[ClusterCache] = []

    def make(*, gate: Gate | None = None, clock: Callable[[], float] | None = None,
             now: Callable[[], datetime] | None = None, start: bool = True,
             **options: object) -> ClusterCache:
        extra: dict[str, object] = {"clock": clock} if clock is not None else {}
        if now is not None:
            extra["now"] = now  # what the cache stamps events and its cordon mark with
        cache = ClusterCache(
            KubeApi(api_client(kubeconfig)), KubeDecoder(),
            CacheOptions(**options),  # type: ignore[arg-type]
            wait=gate if gate is not None else Gate(), **extra,  # type: ignore[arg-type]
        )
        made.append(cache)
        return cache.start() if start else cache

    yield make
    for cache in made:
        cache.close()


def synced(cache: ClusterCache) -> bool:
    """Until every resource is listed and watched (so that a fault the test injects next
    reaches a watch, not a request still on its way)."""
    return cache.wait_for(
        lambda: all(r.synced and not r.relisting and r.watches >= 1 and r.down_since is None
                    for r in cache.reflectors), BOUND)


def pod_keys(cache: ClusterCache) -> list[str]:
    return sorted(p.key for p in cache.observe().pods)


def claiming_pod(name: str, claims: Sequence[str] = (), *, ephemeral: Sequence[str] = (),
                 **fields: Any) -> dict[str, Any]:
    """A pod's JSON (``tests.builders.pod`` with ``fields``; pending unless ``node_name``)
    mounting the claims ``claims`` and generic ephemeral volumes ``ephemeral``."""
    return with_claims(pod_json(pod(name, **fields)), claims, ephemeral)


NOT_SYNCED, MISSING = ("<not synced>",), ("<no such pod>",)


def observed_zones(cache: ClusterCache, key: str) -> tuple[str, ...] | None:
    """The ``volume_zones`` ``observe`` gives pod ``key``; ``NOT_SYNCED`` while it cannot
    observe and ``MISSING`` while the pod is not in view, so that a test waiting for a value
    keeps waiting."""
    try:
        view = cache.observe()
    except NotSynced:
        return NOT_SYNCED
    return next((p.volume_zones for p in view.pods if p.key == key), MISSING)
