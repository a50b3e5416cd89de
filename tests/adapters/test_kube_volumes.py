"""Volume zones through the watch-backed cache, over the real ``kubernetes`` client against the
Kubernetes twin: pods' claims, PersistentVolumeClaims and PersistentVolumes watched apart and
joined at ``observe`` into ``Pod.volume_zones``.

Covers: a claim bound to a zonal volume (each zone key), volumes and bindings that arrive after
the pod, unbound, missing and zone-redundant claims, claims in disjoint zones, generic
ephemeral volumes, how a volume's node affinity reads as zones, claims of another namespace, a
rebound claim and a deleted volume, NotSynced until claims and volumes are listed, a 410 on
their watch, the switch off, and the view reused while nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autoscaler.kube.source import NotSynced
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_objects import volume_json
from simulator.twin.kube_store import PVS
from tests.adapters.kube_support import (
    BOUND,
    CacheFactory,
    Gate,
    claiming_pod,
    observed_zones,
    synced,
)
from tests.builders import node, pod

DB = "default/db-0"
CLAIMS = ("GET /api/v1/persistentvolumeclaims?", "limit=")
VOLUMES = ("GET /api/v1/persistentvolumes?", "limit=")


@pytest.mark.parametrize("key", [
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.disk.csi.azure.com/zone",
])
def test_a_pending_pod_whose_claim_is_bound_to_a_zonal_volume_gets_that_zone(
    twin: KubeTwin, make_cache: CacheFactory, key: str
) -> None:
    twin.add_volume("pv-db-0", ("eastus-2",), claim="default/data-db-0", key=key)
    twin.add_claim("default/data-db-0", "pv-db-0")
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    cache = make_cache()
    assert synced(cache)
    assert observed_zones(cache, DB) == ("eastus-2",)


def claim_bound_later(twin: KubeTwin) -> None:
    twin.add_volume("pv-db-0", ("eastus-3",))
    twin.bind_claim("default/data-db-0", "pv-db-0")


def volume_created_later(twin: KubeTwin) -> None:
    twin.bind_claim("default/data-db-0", "pv-db-0")  # bound to a volume not in view yet
    twin.add_volume("pv-db-0", ("eastus-3",))


@pytest.mark.parametrize("arrives", [claim_bound_later, volume_created_later])
def test_a_volume_provisioned_after_the_pod_gives_it_the_zone_through_the_watch(
    twin: KubeTwin, make_cache: CacheFactory, arrives: Callable[[KubeTwin], object]
) -> None:
    twin.add_claim("default/data-db-0")  # WaitForFirstConsumer: not bound yet
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    cache = make_cache()
    assert synced(cache)
    assert observed_zones(cache, DB) is None
    arrives(twin)
    assert cache.wait_for(lambda: observed_zones(cache, DB) == ("eastus-3",), BOUND)


Setup = Callable[[KubeTwin], object]


def _claim(name: str, zones: tuple[str, ...] | None) -> Setup:
    """A claim ``default/<name>``; bound to a volume with ``zones`` unless None (unbound)."""
    def setup(twin: KubeTwin) -> None:
        if zones is None:
            twin.add_claim(f"default/{name}")
            return
        twin.add_volume(f"pv-{name}", zones, claim=f"default/{name}")
        twin.add_claim(f"default/{name}", f"pv-{name}")
    return setup


@pytest.mark.parametrize("claims, ephemeral, setups, zones", [
    pytest.param(["a"], [], [_claim("a", None)], None, id="unbound-claim-restricts-nothing"),
    pytest.param(["a"], [], [], None, id="claim-not-in-view-restricts-nothing"),
    pytest.param(["a"], [], [_claim("a", ())], None, id="zone-redundant-volume-any-zone"),
    pytest.param(["a", "b"], [], [_claim("a", ("eastus-1",)), _claim("b", ("eastus-2",))], (),
                 id="claims-in-different-zones-allow-none"),
    pytest.param(["a", "b"], [], [_claim("a", ("eastus-1", "eastus-2")),
                                  _claim("b", ("eastus-2", "eastus-3"))], ("eastus-2",),
                 id="multi-zone-volumes-intersect"),
    pytest.param(["a", "b"], [], [_claim("a", ("eastus-1",)), _claim("b", None)],
                 ("eastus-1",), id="an-unbound-claim-beside-a-bound-one-adds-nothing"),
    pytest.param([], ["scratch"], [_claim("db-0-scratch", ("eastus-3",))], ("eastus-3",),
                 id="ephemeral-volume-claim-is-pod-dash-volume"),
])
def test_a_pods_zones_are_the_intersection_over_its_bound_claims(
    twin: KubeTwin, make_cache: CacheFactory, claims: list[str], ephemeral: list[str],
    setups: list[Setup], zones: tuple[str, ...] | None,
) -> None:
    for setup in setups:
        setup(twin)
    twin.add_pod(claiming_pod("db-0", claims, ephemeral=ephemeral, owner="StatefulSet/db"))
    cache = make_cache()
    assert synced(cache)
    assert observed_zones(cache, DB) == zones


ZONE, LEGACY, DISK = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone",
                      "topology.disk.csi.azure.com/zone")


def _term(*requirements: tuple[str, str, list[str]]) -> dict[str, object]:
    return {"matchExpressions": [{"key": k, "operator": op, "values": v}
                                 for k, op, v in requirements]}


@pytest.mark.parametrize("terms, zones", [
    pytest.param([_term((ZONE, "In", ["eastus-1"])), _term((ZONE, "In", ["eastus-2"]))],
                 ("eastus-1", "eastus-2"), id="terms-are-ored-into-a-union"),
    pytest.param([_term((ZONE, "In", ["eastus-1", "eastus-2"]), (LEGACY, "In", ["eastus-2"]))],
                 ("eastus-2",), id="requirements-of-a-term-are-anded"),
    pytest.param([_term((ZONE, "In", ["eastus-1"])),
                  _term(("kubernetes.io/hostname", "In", ["aks-reg1-0"]))],
                 None, id="a-term-without-a-zone-admits-every-zone"),
    pytest.param([_term((ZONE, "NotIn", ["eastus-1"]))], None, id="not-in-restricts-nothing"),
    pytest.param([_term((DISK, "In", [""]))], None, id="non-zonal-azure-disk-any-zone"),
    pytest.param([], None, id="no-terms-no-restriction"),
])
def test_a_volumes_zones_are_read_off_its_required_node_affinity(
    twin: KubeTwin, make_cache: CacheFactory, terms: list[dict[str, object]],
    zones: tuple[str, ...] | None,
) -> None:
    volume = volume_json("pv-db-0", claim="default/data-db-0")
    volume["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": terms}}
    twin.store.create(PVS, volume)
    twin.add_claim("default/data-db-0", "pv-db-0")
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    cache = make_cache()
    assert synced(cache)
    assert observed_zones(cache, DB) == zones


def test_claims_are_read_in_the_pods_namespace(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    twin.add_volume("pv-other", ("eastus-1",))
    twin.add_claim("other/data", "pv-other")  # same claim name, another namespace
    twin.add_pod(claiming_pod("db-0", ["data"], owner="StatefulSet/db"))
    cache = make_cache()
    assert synced(cache)
    assert observed_zones(cache, DB) is None


def test_a_deleted_volume_and_a_rebound_claim_change_the_zone(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _claim("data-db-0", ("eastus-1",))(twin)
    twin.add_volume("pv-new", ("eastus-2",))
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    cache = make_cache()
    assert synced(cache)
    assert observed_zones(cache, DB) == ("eastus-1",)
    twin.bind_claim("default/data-db-0", "pv-new")
    assert cache.wait_for(lambda: observed_zones(cache, DB) == ("eastus-2",), BOUND)
    twin.store.delete(PVS, "", "pv-new")
    assert cache.wait_for(lambda: observed_zones(cache, DB) is None, BOUND)


@pytest.mark.parametrize("listing, kind", [(CLAIMS, "persistentvolumeclaims"),
                                           (VOLUMES, "persistentvolumes")])
def test_observe_is_not_synced_until_claims_and_volumes_are_listed(
    twin: KubeTwin, make_cache: CacheFactory, listing: tuple[str, ...], kind: str
) -> None:
    _claim("data-db-0", ("eastus-2",))(twin)
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    gate = Gate()
    gate.close()
    twin.fail_next(1, 500, match=listing)
    cache = make_cache(gate=gate)
    assert gate.wait_for_delays(1)
    others = [r for r in cache.reflectors if r.kind != kind]
    assert cache.wait_for(lambda: all(r.synced for r in others), BOUND)
    with pytest.raises(NotSynced, match=f"{kind}: first list not complete"):
        cache.observe()
    gate.open()
    assert synced(cache)
    assert observed_zones(cache, DB) == ("eastus-2",)


def test_a_volume_watch_that_expires_lists_again_and_misses_nothing(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    twin.add_claim("default/data-db-0", "pv-db-0")
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    cache = make_cache()
    assert synced(cache)
    lists = cache.volumes.lists
    twin.add_volume("pv-db-0", ("eastus-1",))
    twin.compact()  # the volume's ADDED is gone from the history: the watch gets 410
    twin.drop_watches(match="persistentvolumes")
    assert cache.wait_for(lambda: observed_zones(cache, DB) == ("eastus-1",), BOUND)
    assert cache.volumes.lists > lists


def test_with_volumes_not_watched_no_claim_or_volume_is_asked_for_and_zones_stay_unknown(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    _claim("data-db-0", ("eastus-2",))(twin)
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    cache = make_cache(watch_volumes=False)
    assert synced(cache)
    assert observed_zones(cache, DB) is None
    assert twin.count("/api/v1/persistentvolume") == 0


def test_observe_serves_the_same_view_until_something_changes(
    twin: KubeTwin, make_cache: CacheFactory
) -> None:
    twin.add_node(node("n1"))
    _claim("data-db-0", ("eastus-2",))(twin)
    twin.add_pod(claiming_pod("db-0", ["data-db-0"], owner="StatefulSet/db"))
    twin.add_pod(pod("web-0", node_name="n1"))
    cache = make_cache()
    assert synced(cache)
    first = cache.observe().pods
    assert cache.observe().pods is first
    web = next(p for p in first if p.key == "default/web-0")
    assert web is cache.pods.table["default/web-0"]  # a pod without claims is not copied
    version = cache.version
    twin.add_pod(pod("web-1"))
    assert cache.wait_changed(version, BOUND) > version
    second = cache.observe().pods
    assert second is not first
    assert {p.key: p.volume_zones for p in second} == {
        DB: ("eastus-2",), "default/web-0": None, "default/web-1": None}
