"""Scale-down through the real cache and client, against the Kubernetes twin.

Covers: cordon and uncordon (merge patches, repeated safely, visible in ``observe``), the
Eviction API's answers as ``EvictionResult`` (evicted, blocked by a budget, gone, errors, the
uid precondition and the grace period sent), PodDisruptionBudgets in ``observe`` (listed,
watched, spent by evictions, gating the sync), and a node drained and deleted by the
``Reconciler`` with scale-down on, evicting through the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from autoscaler.cloud.fake import FakeCloud
from autoscaler.control.clock import FixedClock
from autoscaler.control.loop import LoopConfig, Reconciler
from autoscaler.control.scaledown import ScaleDownConfig
from autoscaler.kube.cache import ApiError, ClusterCache
from autoscaler.kube.source import ClusterSource, EvictionResult, NotSynced
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.labels import LabelSelector, labels_of
from autoscaler.model.pod import Pod
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_store import BY_ID, NODES, PDBS
from tests.adapters.kube_support import (
    BOUND,
    CacheFactory,
    Gate,
    pod_keys,
    synced,
)
from tests.builders import GiB, node, pod, pool

WEB = LabelSelector(labels_of({"app": "web"}))
PDB_LIST = ("GET /apis/policy/v1/poddisruptionbudgets?", "limit=")


def web(name: str, node_name: str | None = "n1", **fields: Any) -> Pod:
    return pod(name, 200, GiB, labels={"app": "web"}, node_name=node_name, **fields)


def budget(**fields: Any) -> PodDisruptionBudget:
    return PodDisruptionBudget("web", "default", WEB, **fields)


def allowed(cache: ClusterCache) -> int | None:
    (only,) = cache.observe().pdbs
    return only.disruptions_allowed


def stored_node(twin: KubeTwin, name: str) -> dict[str, Any]:
    return twin.store.get(NODES, "", name)


def test_the_cache_is_a_cluster_source(make_cache: CacheFactory) -> None:
    source: ClusterSource = make_cache(start=False)  # mypy checks the protocol here
    assert callable(source.cordon) and callable(source.evict)


# -- cordon ----------------------------------------------------------------------------------


def test_cordon_and_uncordon_reach_observe_and_repeating_them_changes_nothing(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    twin.add_node(node("n1"))
    cache = make_cache()
    assert synced(cache)
    for _ in range(2):
        cache.cordon("n1", True)
        assert cache.wait_for(lambda: cache.nodes.table["n1"].unschedulable, BOUND)
        assert stored_node(twin, "n1")["spec"]["unschedulable"] is True
    for _ in range(2):
        cache.cordon("n1", False)
        assert cache.wait_for(lambda: not cache.nodes.table["n1"].unschedulable, BOUND)
        assert "unschedulable" not in stored_node(twin, "n1")["spec"]  # as kubectl leaves it
    assert [n.unschedulable for n in cache.observe().nodes] == [False]
    assert twin.count("PATCH /api/v1/nodes/n1") == 4


def test_writes_in_a_row_on_one_connection_all_land(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    # Each answer is read before its connection is reused: an unread body would be taken for
    # the next answer's status line, and that request would fail. (Whether the leftover body
    # has arrived when the connection is taken again is a race, hence many writes.)
    _three_web_pods(twin)
    cache = make_cache(start=False)
    target = web("web-0")
    for _ in range(25):
        cache.record_event(target, "ScaleDown", "evicted to remove node n1 (scale-down)")
        cache.cordon("n1", True)
    assert cache.evict(target, 30) is EvictionResult.EVICTED
    assert cache.events_failed == 0
    assert len(twin.store.items(BY_ID["events"])[0]) == 25


@pytest.mark.parametrize("fault, status", [(None, 404), (500, 500), (403, 403)])
def test_a_cordon_the_server_does_not_apply_raises(
    twin: KubeTwin, make_cache: CacheFactory, fault: int | None, status: int
) -> None:
    if fault is not None:
        twin.add_node(node("n1"))
        twin.fail_next(1, fault, match="PATCH /api/v1/nodes/n1")
    cache = make_cache(start=False)
    with pytest.raises(ApiError) as raised:
        cache.cordon("n1", True)
    assert raised.value.status == status


# -- eviction --------------------------------------------------------------------------------


def _three_web_pods(twin: KubeTwin) -> None:
    twin.add_node(node("n1"))
    for i in range(3):
        twin.add_pod(web(f"web-{i}"))


def _budget_with_room(twin: KubeTwin) -> None:
    _three_web_pods(twin)
    twin.add_pdb(budget(max_unavailable=1))


def _budget_spent(twin: KubeTwin) -> None:
    _three_web_pods(twin)
    twin.add_pdb(budget(min_available=3))


def _two_budgets(twin: KubeTwin) -> None:
    _budget_with_room(twin)
    twin.add_pdb(PodDisruptionBudget("all", "default", LabelSelector(), max_unavailable=3))


def _recreated(twin: KubeTwin) -> None:
    """web-0 was replaced by a pod of the same name (a StatefulSet's): another uid."""
    _three_web_pods(twin)
    twin.delete_pod("default/web-0")
    twin.add_pod(replace(web("web-0"), uid="uid-new-web-0"))


def _gone(twin: KubeTwin) -> None:
    _three_web_pods(twin)
    twin.delete_pod("default/web-0")


def _forbidden(twin: KubeTwin) -> None:
    _three_web_pods(twin)
    twin.fail_next(1, 403, match="/pods/web-0/eviction")


def _shed(twin: KubeTwin) -> None:
    """API Priority and Fairness sheds the request: a 429 like a budget's, and also 'later'."""
    _three_web_pods(twin)
    twin.fail_next(1, 429, retry_after=1.0, match="/pods/web-0/eviction")


@pytest.mark.parametrize("setup, answer, web0_left", [
    (_three_web_pods, EvictionResult.EVICTED, False),
    (_budget_with_room, EvictionResult.EVICTED, False),
    (_budget_spent, EvictionResult.BLOCKED_BY_PDB, True),
    (_two_budgets, EvictionResult.ERROR, True),
    (_recreated, EvictionResult.GONE, True),
    (_gone, EvictionResult.GONE, False),
    (_forbidden, EvictionResult.ERROR, True),
    (_shed, EvictionResult.BLOCKED_BY_PDB, True),
])
def test_the_eviction_api_answer_becomes_an_eviction_result(
    twin: KubeTwin, make_cache: CacheFactory, setup: Callable[[KubeTwin], None],
    answer: EvictionResult, web0_left: bool,
) -> None:
    setup(twin)
    cache = make_cache(start=False)
    target = web("web-0")  # what the cache saw before: the original uid
    assert cache.evict(target, 30) is answer
    left = "default/web-0" in {f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                               for o in (s.obj for s in twin.store.items(BY_ID["pods"])[0])}
    assert left is web0_left
    assert cache.evictions_failed == (answer is EvictionResult.ERROR)


def test_an_eviction_with_no_answer_is_an_error_not_an_exception(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    cache = make_cache(start=False)
    twin.stop()
    assert cache.evict(web("web-0"), None) is EvictionResult.ERROR


@pytest.mark.parametrize("grace", [None, 0, 600])
def test_the_grace_period_and_the_pods_uid_are_sent_with_the_eviction(
    twin: KubeTwin, make_cache: CacheFactory, grace: int | None
) -> None:
    _three_web_pods(twin)
    cache = make_cache(start=False)
    assert cache.evict(web("web-1"), grace) is EvictionResult.EVICTED
    assert twin.store.evictions == [("default/web-1", grace)]


def test_an_eviction_reaches_observe_through_the_pods_watch(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _three_web_pods(twin)
    cache = make_cache()
    assert synced(cache)
    assert cache.evict(cache.pods.table["default/web-2"], 30) is EvictionResult.EVICTED
    assert cache.wait_for(lambda: "default/web-2" not in cache.pods.table, BOUND)
    assert pod_keys(cache) == ["default/web-0", "default/web-1"]


# -- budgets ---------------------------------------------------------------------------------


def test_budgets_reach_observe_with_the_controllers_count(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _three_web_pods(twin)
    twin.add_pdb(budget(max_unavailable="50%"))
    twin.add_pdb(PodDisruptionBudget("db", "data", LabelSelector(labels_of({"app": "db"})),
                                     min_available=1))
    cache = make_cache()
    assert synced(cache)
    by_key = {p.key: p for p in cache.observe().pdbs}
    assert by_key == {
        "default/web": budget(max_unavailable="50%", disruptions_allowed=2),
        "data/db": PodDisruptionBudget("db", "data", LabelSelector(labels_of({"app": "db"})),
                                       min_available=1, disruptions_allowed=0),
    }


def test_a_budget_follows_its_pods_and_evictions_through_the_watch(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _three_web_pods(twin)
    twin.add_pod(web("web-3", node_name=None))
    twin.add_pdb(budget(min_available=2))
    cache = make_cache()
    assert synced(cache)
    assert allowed(cache) == 1
    twin.bind_pod("default/web-3", "n1")  # the scheduler places the pending replica
    assert cache.wait_for(lambda: allowed(cache) == 2, BOUND)
    assert cache.evict(cache.pods.table["default/web-0"], 30) is EvictionResult.EVICTED
    assert cache.wait_for(lambda: allowed(cache) == 1, BOUND)
    assert cache.evict(cache.pods.table["default/web-1"], 30) is EvictionResult.EVICTED
    assert cache.wait_for(lambda: allowed(cache) == 0, BOUND)
    assert cache.evict(cache.pods.table["default/web-2"], 30) is EvictionResult.BLOCKED_BY_PDB
    twin.store.delete(PDBS, "default", "web")
    assert cache.wait_for(lambda: not cache.pdbs.table, BOUND)


def test_observe_is_not_synced_until_the_budgets_are_listed(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _budget_with_room(twin)
    gate = Gate()
    gate.close()
    twin.fail_next(1, 500, match=PDB_LIST)
    cache = make_cache(gate=gate)
    assert gate.wait_for_delays(1)
    assert cache.wait_for(lambda: cache.pods.synced and cache.nodes.synced, BOUND)
    with pytest.raises(NotSynced, match="poddisruptionbudgets: first list not complete"):
        cache.observe()
    gate.open()
    assert synced(cache)
    assert allowed(cache) == 1


def test_without_budgets_watched_none_is_asked_for_and_observe_has_none(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _budget_with_room(twin)
    cache = make_cache(watch_pdbs=False)
    assert synced(cache)
    assert cache.observe().pdbs == ()
    assert len(cache.observe().pods) == 3
    assert twin.count("poddisruptionbudgets") == 0


def test_a_budget_the_decoder_cannot_read_is_left_out(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _budget_with_room(twin)
    odd = {"metadata": {"name": "odd", "namespace": "default"},
           "spec": {"selector": {}, "minAvailable": 1, "maxUnavailable": 1}}
    twin.store.create(PDBS, odd)
    cache = make_cache()
    assert synced(cache)
    assert [p.key for p in cache.observe().pdbs] == ["default/web"]


# -- the reconcile loop, draining through the cache ------------------------------------------

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_the_loop_cordons_drains_through_the_eviction_api_and_deletes_the_node(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    twin.add_node(node("n1", pool="reg1"))
    twin.add_node(node("n2", pool="reg1"))
    twin.add_pod(pod("busy", 2500, GiB, owner="ReplicaSet/busy", node_name="n2"))
    for name, where in (("w1", "n1"), ("w2", "n1"), ("w3", "n2")):
        twin.add_pod(web(name, node_name=where, grace_seconds=900))
    twin.add_pdb(budget(max_unavailable=2))
    cache = make_cache()
    assert synced(cache)
    clock = FixedClock(NOW)
    cloud = FakeCloud([pool("reg1", "Standard_D4s_v5", count=2, max_count=10)], NOW)
    loop = Reconciler(cache, cloud, clock, LoopConfig(scale_down=ScaleDownConfig()))

    def settled() -> bool:  # the cache shows what the twin holds, before each pass
        want = {f"{s.obj['metadata']['namespace']}/{s.obj['metadata']['name']}"
                for s in twin.store.items(BY_ID["pods"])[0]}
        return set(cache.pods.table) == want and cache.nodes.table["n1"].unschedulable is \
            bool(stored_node(twin, "n1")["spec"].get("unschedulable"))

    report = loop.run_once()
    assert report.scale_down is not None and report.scale_down.unneeded == ("n1",)
    # The API server sheds w2's first eviction: retried on the next pass, as a budget's 429.
    twin.fail_next(1, 429, match="/pods/w2/eviction")
    clock.current += timedelta(minutes=10)
    report = loop.run_once()
    assert report.scale_down is not None
    assert (report.scale_down.cordoned, report.scale_down.evicted,
            report.scale_down.blocked) == (("n1",), 1, 1)
    assert stored_node(twin, "n1")["spec"]["unschedulable"] is True
    assert twin.store.evictions == [("default/w1", 600)]  # grace capped at 10 minutes
    assert cache.wait_for(settled, BOUND)
    clock.current += timedelta(seconds=30)
    report = loop.run_once()
    assert report.scale_down is not None and report.scale_down.evicted == 1
    assert [key for key, _ in twin.store.evictions] == ["default/w1", "default/w2"]
    assert [name for name, _ in cloud.calls if name == "delete_machines"] == []
    assert cache.wait_for(settled, BOUND)
    clock.current += timedelta(seconds=30)
    report = loop.run_once()
    assert [args for name, args in cloud.calls if name == "delete_machines"] == [
        ("reg1", ("n1",))]
    events = [s.obj for s in twin.store.items(BY_ID["events"])[0] if s.obj["reason"] ==
              "ScaleDown"]
    assert sorted(e["involvedObject"]["name"] for e in events) == ["w1", "w2"]
    assert pod_keys(cache) == ["default/busy", "default/w3"]
