"""Surge's cordon mark through the real cache and client, against the Kubernetes twin.

Covers: a cordon marks the node in the same merge patch (the annotation holds the cache's
``now``, RFC 3339) and ``observe`` carries it; an uncordon removes it and leaves every other
annotation; a new leader's first pass (a ``Reconciler`` over the cache) uncordons a node an
earlier process left cordoned and marked, and leaves a person's cordon and a node whose stored
deletion is still running.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from autoscaler.cloud.fake import FakeCloud
from autoscaler.cloud.provider import Operation
from autoscaler.cloud.store import MemoryStore
from autoscaler.control.clock import FixedClock
from autoscaler.control.loop import LoopConfig, Reconciler
from autoscaler.model.disruption import SCALE_DOWN_MARK
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_store import NODES
from tests.adapters.kube_support import (
    BOUND,
    CacheFactory,
    synced,
)
from tests.builders import GiB, node, pod, pool

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEFT = "2026-11-25T11:40:00Z"  # when the earlier process started its drains
OTHER = {"node.alpha.kubernetes.io/ttl": "0"}  # an annotation surge does not own


def stored(twin: KubeTwin, name: str) -> tuple[bool, dict[str, Any]]:
    """(cordoned, annotations) as the API server holds them."""
    obj = twin.store.get(NODES, "", name)
    return bool(obj["spec"].get("unschedulable")), obj["metadata"].get("annotations") or {}


def test_a_cordon_marks_the_node_in_the_same_patch_and_an_uncordon_unmarks_it(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    twin.add_node(node("n1", annotations=OTHER))
    cache = make_cache(now=lambda: NOW + timedelta(seconds=30, microseconds=5))
    assert synced(cache)
    cache.cordon("n1", True)
    assert stored(twin, "n1") == (True, {**OTHER, SCALE_DOWN_MARK: "2026-11-25T12:00:30Z"})
    assert cache.wait_for(lambda: cache.nodes.table["n1"].unschedulable, BOUND)
    (seen,) = cache.observe().nodes
    assert dict(seen.annotations) == {SCALE_DOWN_MARK: "2026-11-25T12:00:30Z"}  # trimmed
    cache.cordon("n1", False)
    assert stored(twin, "n1") == (False, OTHER)
    assert cache.wait_for(lambda: not cache.nodes.table["n1"].annotations, BOUND)
    assert twin.count("PATCH /api/v1/nodes/n1") == 2  # one patch each: never a mark alone


def test_a_new_leader_uncordons_only_what_an_earlier_process_left_and_nothing_deletes(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    mark = {SCALE_DOWN_MARK: LEFT}
    twin.add_node(node("left", pool="reg1", unschedulable=True, annotations=mark))
    twin.add_node(node("person", pool="reg1", unschedulable=True))
    twin.add_node(node("deleting", pool="reg1", unschedulable=True, annotations=mark))
    twin.add_node(node("uncordoned", pool="reg1", annotations={**mark, **OTHER}))
    for name in ("left", "person", "deleting", "uncordoned"):  # busy: no new scale-down
        twin.add_pod(pod(f"busy-{name}", 2500, GiB, owner="ReplicaSet/busy", node_name=name))
    cache = make_cache()
    assert synced(cache)
    store = MemoryStore()
    store.save(Operation("reg1", "delete-machines", 3, "op-old", NOW, ("deleting",)))
    cloud = FakeCloud([pool("reg1", "Standard_D4s_v5", count=4, max_count=10)], NOW)
    cloud.pending.add("op-old")
    loop = Reconciler(cache, cloud, FixedClock(NOW), LoopConfig(), store=store)

    report = loop.run_once().scale_down
    assert report is not None
    assert (report.uncordoned, report.unmarked) == (("left",), ("uncordoned",))
    assert {name: stored(twin, name) for name in ("left", "person", "deleting", "uncordoned")} \
        == {"left": (False, {}), "person": (True, {}), "deleting": (True, mark),
            "uncordoned": (False, OTHER)}
    assert [twin.count(f"PATCH /api/v1/nodes/{name}") for name in
            ("left", "person", "deleting", "uncordoned")] == [1, 0, 0, 1]
