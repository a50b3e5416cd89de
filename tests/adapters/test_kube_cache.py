"""The watch-backed cache over the real ``kubernetes`` client, against the Kubernetes twin.

Covers: initial sync, pods becoming pending / bound / ended / deleted, nodes' pool, readiness
and cordon, watch drops and 410s mid-run (re-list, nothing lost or doubled), 500 and 429
answers retried with backoff and Retry-After, NotSynced before the sync, during a re-list and
after a long disconnection, a server restart, and events.
"""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.kube.source import NotSynced
from autoscaler.model.pod import Pod
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_objects import pod_json
from simulator.twin.kube_store import BY_ID, NODES
from tests.adapters.kube_support import (
    BOUND,
    POD_LIST,
    POD_WATCH,
    PODS_PATH,
    CacheFactory,
    FakeClock,
    Gate,
    pod_keys,
    synced,
)
from tests.builders import node, pod


def seed(twin: KubeTwin, pending: int = 2, bound: int = 2) -> None:
    twin.add_node(node("n1"))
    for i in range(bound):
        twin.add_pod(pod(f"run-{i}", node_name="n1"))
    for i in range(pending):
        twin.add_pod(pod(f"wait-{i}"))


def store_keys(twin: KubeTwin) -> list[str]:
    """What the cache should hold: pods that are bound, or pending and unschedulable."""
    items, _ = twin.store.items(BY_ID["pods"])
    keys = []
    for stored in items:
        obj = stored.obj
        if obj["status"]["phase"] in ("Succeeded", "Failed"):
            continue
        keys.append(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")
    return sorted(keys)


def test_the_first_sync_brings_pending_and_bound_pods_and_nodes_to_observe(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    view = cache.observe()
    by_key = {p.key: p for p in view.pods}
    assert sorted(by_key) == ["default/run-0", "default/run-1", "default/wait-0", "default/wait-1"]
    assert by_key["default/run-0"].node_name == "n1"
    assert by_key["default/wait-0"].node_name is None
    assert by_key["default/wait-0"].owner == "ReplicaSet/web"
    assert [(n.name, n.pool, n.ready) for n in view.nodes] == [("n1", "pool1", True)]


def test_observe_is_not_synced_until_the_first_list_succeeds(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    gate = Gate()
    gate.close()
    twin.fail_next(1, 500, match=POD_LIST)
    cache = make_cache(gate=gate)
    assert gate.wait_for_delays(1)
    with pytest.raises(NotSynced, match="pods: first list not complete"):
        cache.observe()
    gate.open()
    assert synced(cache)
    assert len(cache.observe().pods) == 4


@pytest.mark.parametrize("change, expected", [
    (lambda t: t.add_pod(pod("wait-9")), "default/wait-9"),
    (lambda t: t.delete_pod("default/wait-0"), None),
    (lambda t: t.set_phase("default/run-0", "Succeeded"), None),
    (lambda t: t.set_phase("default/run-1", "Failed"), None),
])
def test_pods_that_appear_end_or_go_reach_observe_through_the_watch(
    twin: KubeTwin, make_cache: CacheFactory, change: Any, expected: str | None
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    before = set(pod_keys(cache))
    change(twin)
    assert cache.wait_for(lambda: set(cache.pods.table) != before, BOUND)
    assert pod_keys(cache) == store_keys(twin)
    if expected is not None:
        assert expected in pod_keys(cache)


def test_a_pending_pod_that_gets_bound_shows_its_node(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    twin.bind_pod("default/wait-1", "n1")
    assert cache.wait_for(lambda: cache.pods.table["default/wait-1"].node_name == "n1", BOUND)


def _unscheduled(obj: dict[str, Any]) -> None:
    obj["status"] = {"phase": "Pending"}  # the scheduler has not tried it yet


def _other_scheduler(obj: dict[str, Any]) -> None:
    obj["spec"]["schedulerName"] = "volcano"


def _terminating(obj: dict[str, Any]) -> None:
    obj["metadata"]["deletionTimestamp"] = "2026-01-05T00:00:00Z"


@pytest.mark.parametrize("edit", [_unscheduled, _other_scheduler, _terminating])
def test_a_pod_the_autoscaler_must_not_act_on_is_left_out(
    twin: KubeTwin, make_cache: CacheFactory, edit: Any
) -> None:
    twin.add_node(node("n1"))
    obj = pod_json(pod("odd"))
    edit(obj)
    twin.add_pod(obj)
    twin.add_pod(pod("plain"))
    cache = make_cache()
    assert synced(cache)
    assert pod_keys(cache) == ["default/plain"]


def test_a_pod_of_a_configured_scheduler_is_pending(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    obj = pod_json(pod("batch"))
    _other_scheduler(obj)
    twin.add_pod(obj)
    cache = make_cache(schedulers=("default-scheduler", "volcano"))
    assert synced(cache)
    assert pod_keys(cache) == ["default/batch"]


def test_a_bound_pod_that_is_terminating_still_holds_its_node(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    twin.add_node(node("n1"))
    obj = pod_json(pod("leaving", node_name="n1"))
    _terminating(obj)
    twin.add_pod(obj)
    cache = make_cache()
    assert synced(cache)
    assert [p.node_name for p in cache.observe().pods] == ["n1"]


@pytest.mark.parametrize("patch, field, value", [
    ({"spec": {"unschedulable": True}}, "unschedulable", True),
    ({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, "ready", False),
    ({"metadata": {"labels": {"kubernetes.azure.com/agentpool": "spot2"}}}, "pool", "spot2"),
])
def test_node_changes_reach_observe(
    twin: KubeTwin, make_cache: CacheFactory, patch: dict[str, Any], field: str, value: object
) -> None:
    twin.add_node(node("n1"))
    cache = make_cache()
    assert synced(cache)
    twin.store.patch(NODES, "", "n1", patch)
    assert cache.wait_for(lambda: getattr(cache.nodes.table["n1"], field) == value, BOUND)


@pytest.mark.parametrize("abrupt", [False, True])
def test_a_dropped_watch_resumes_from_its_version_without_losing_a_change(
    twin: KubeTwin, make_cache: CacheFactory, abrupt: bool
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    watches = cache.pods.watches
    twin.drop_watches(abrupt=abrupt)
    twin.add_pod(pod("wait-7"))
    twin.delete_pod("default/run-0")
    assert cache.wait_for(lambda: "default/wait-7" in cache.pods.table
                          and "default/run-0" not in cache.pods.table
                          and cache.pods.watches > watches, BOUND)
    twin.add_pod(pod("wait-6"))  # reaches the cache through the new watch
    assert cache.wait_for(lambda: "default/wait-6" in cache.pods.table, BOUND)
    assert pod_keys(cache) == store_keys(twin)
    assert cache.pods.lists == 1  # resumed, not re-listed


def test_a_410_mid_run_relists_and_observe_refuses_until_the_list_is_back(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    gate = Gate()
    cache = make_cache(gate=gate)
    assert synced(cache)
    # The pods watch breaks and its first retry fails, so the cache is held at the gate while
    # the history it would resume from is compacted away: its next watch gets 410 Expired and
    # it must list again. That list fails once too, holding the cache mid re-list.
    gate.close()
    twin.fail_next(1, 500, match=POD_WATCH)
    twin.fail_next(1, 500, match=POD_LIST)
    twin.drop_watches(abrupt=True, match=PODS_PATH)
    assert gate.wait_for_delays(1)
    twin.add_pod(pod("wait-8"))
    twin.delete_pod("default/wait-0")
    twin.compact()
    gate.release(2)  # past the broken watch and the failed retry, to the 410
    assert gate.wait_for_delays(3)  # held again: the re-list's first attempt failed
    assert cache.pods.relisting
    with pytest.raises(NotSynced, match="pods: listing again after 410"):
        cache.observe()
    gate.open()
    assert synced(cache)
    assert cache.pods.lists == 2
    keys = pod_keys(cache)
    assert keys == store_keys(twin) and len(keys) == len(set(keys))
    assert "default/wait-8" in keys and "default/wait-0" not in keys


@pytest.mark.parametrize("status, retry_after, expected", [
    (500, None, [0.5, 1.0]),
    (503, None, [0.5, 1.0]),
    (429, 7.0, [7.0, 7.0]),
])
def test_error_answers_to_the_list_are_retried_with_backoff(
    twin: KubeTwin, make_cache: CacheFactory, status: int, retry_after: float | None,
    expected: list[float],
) -> None:
    seed(twin)
    gate = Gate()
    twin.fail_next(2, status, retry_after=retry_after, match=POD_LIST)
    cache = make_cache(gate=gate)
    assert synced(cache)
    assert gate.delays == expected
    assert twin.count("GET /api/v1/pods?") >= 3
    assert len(cache.observe().pods) == 4


def test_a_watch_down_longer_than_stale_after_makes_observe_refuse(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    gate, clock = Gate(), FakeClock()
    cache = make_cache(gate=gate, clock=clock, stale_after=60.0)
    assert synced(cache)
    gate.close()
    twin.drop_watches(abrupt=True, match=PODS_PATH)
    assert gate.wait_for_delays(1)
    cache.observe()  # down, but not for long yet
    clock.now += 61
    with pytest.raises(NotSynced, match="pods: watch down for 61s"):
        cache.observe()
    gate.open()
    assert cache.wait_for(lambda: cache.pods.down_since is None, BOUND)
    assert len(cache.observe().pods) == 4


def test_the_cache_recovers_after_the_api_server_restarts(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    twin.restart()
    twin.add_pod(pod("after-restart"))
    assert cache.wait_for(lambda: "default/after-restart" in cache.pods.table, BOUND)
    assert pod_keys(cache) == store_keys(twin)


def test_record_event_creates_a_core_event_on_the_pod(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    target: Pod = next(p for p in cache.observe().pods if p.name == "wait-0")
    cache.record_event(target, "TriggeredScaleUp", "pod triggered scale-up: [spot1 0->2]")
    events = [s.obj for s in twin.store.items(BY_ID["events"])[0]]
    assert len(events) == 1
    event = events[0]
    assert event["involvedObject"].items() >= {
        "kind": "Pod", "name": "wait-0", "namespace": "default", "uid": target.uid}.items()
    assert (event["reason"], event["type"], event["source"]) == (
        "TriggeredScaleUp", "Normal", {"component": "surge"})
    assert event["message"] == "pod triggered scale-up: [spot1 0->2]"


def test_an_event_the_server_refuses_is_counted_not_raised(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    twin.fail_next(1, 500, match="POST /api/v1/namespaces/default/events")
    cache.record_event(cache.observe().pods[0], "NotTriggerScaleUp", "no pool fits")
    assert cache.events_failed == 1
    assert twin.store.items(BY_ID["events"])[0] == []


def test_a_periodic_resync_lists_again_without_interrupting_observe(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    clock = FakeClock()
    cache = make_cache(clock=clock, resync_every=600.0)
    assert synced(cache)
    clock.now += 601
    twin.add_pod(pod("wait-5"))  # the next event finds the resync due
    assert cache.wait_for(lambda: cache.pods.lists == 2, BOUND)
    assert not cache.pods.relisting
    assert cache.wait_for(lambda: cache.pods.watches == 2, BOUND)  # watching again
    assert pod_keys(cache) == store_keys(twin)


def test_a_bookmark_moves_the_resume_point_past_a_compaction(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    seed(twin)
    cache = make_cache()
    assert synced(cache)
    for i in range(3):  # other resources move the cluster's version; pods see nothing
        twin.add_node(node(f"extra-{i}"))
    twin.store.send_bookmarks()
    version = str(twin.store.rv)
    assert cache.wait_for(lambda: cache.pods.resource_version == version, BOUND)
    twin.compact()
    twin.drop_watches(match=PODS_PATH)
    assert cache.wait_for(lambda: cache.pods.watches == 2, BOUND)  # from the bookmark
    twin.add_pod(pod("wait-4"))
    assert cache.wait_for(lambda: "default/wait-4" in cache.pods.table, BOUND)
    assert cache.pods.lists == 1  # resumed from the bookmark: no 410, no re-list
