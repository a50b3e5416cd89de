"""SimCloud, the simulated AKS in simulator.cloud and simulator.cloud_pools: operations, limits,
latency, evictions, and the real control loop driving it.

The cluster is a stand-in (``StandInCluster``) that records ``add_node`` / ``remove_node`` calls
and doubles as the loop's ClusterSource; engine and recorder are the real ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from autoscaler.cloud.provider import (
    CloudError,
    CloudProvider,
    Conflict,
    Operation,
    OperationState,
)
from autoscaler.control.loop import LoopConfig, LoopReport, Reconciler
from autoscaler.kube.fake import FakeSource
from autoscaler.model.aks import SPOT_TAINT, load_catalog, node_allocatable
from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import AGENTPOOL_LABEL, HOSTNAME_LABEL, ZONE_LABEL
from autoscaler.model.node import Node
from autoscaler.model.pool import AgentPool, Priority
from autoscaler.planner.options import template_ephemeral_storage
from simulator.cloud import SimCloud
from simulator.cloud_pools import CloudModel
from simulator.engine import LOOP, Engine
from simulator.metrics import Recorder
from tests.builders import SPOT_TOLERATION, pod, pool

CATALOG = load_catalog()
START = datetime(2026, 1, 1, tzinfo=UTC)
D4 = "standard_d4s_v5"  # 4 vCPUs, family standardDSv5Family
NAME = re.compile(r"^aks-(?P<pool>[a-z0-9]+)-[0-9]{8}-vmss[0-9a-z]{6}$")


class StandInCluster(FakeSource):
    """SimCluster's node interface, recording calls; its nodes are also the loop's view."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.calls: list[tuple[str, str, float, object]] = []  # (verb, node, time, extra)
        self.notices: list[tuple[str, float]] = []  # Spot eviction notices (node, time)

    def add_node(self, node: Node, *, ready_after: float) -> None:
        self.calls.append(("add", node.name, self.engine.now, ready_after))
        self.nodes.append(node)
        self.engine.after(ready_after, lambda: self._ready(node.name))

    def _ready(self, name: str) -> None:
        self.nodes = [replace(n, ready=True) if n.name == name else n for n in self.nodes]

    def remove_node(self, name: str, reason: str) -> None:
        self.calls.append(("remove", name, self.engine.now, reason))
        self.nodes = [n for n in self.nodes if n.name != name]

    def eviction_notice(self, name: str) -> None:
        self.notices.append((name, self.engine.now))

    def node_names(self, pool: str) -> list[str]:
        return sorted(n.name for n in self.nodes if n.pool == pool)

    def verbs(self, verb: str) -> list[str]:
        return [name for v, name, _, _ in self.calls if v == verb]


class World:
    """One engine, recorder, stand-in cluster and SimCloud."""

    def __init__(self, pools: list[AgentPool], seed: int = 7, **model: Any) -> None:
        self.engine = Engine(START)
        self.recorder = Recorder()
        self.cluster = StandInCluster(self.engine)
        self.model = CloudModel(**model)
        self.cloud = SimCloud(self.engine, self.cluster, self.recorder, pools, CATALOG, "eastus",
                              self.model, np.random.default_rng(seed))

    def run(self, until: float) -> None:
        self.engine.run(until)

    def count(self, name: str) -> int:
        return {p.name: p.count for p in self.cloud.list_pools()}[name]

    def settle(self, op: Operation) -> tuple[str, str | None, str]:
        """Run to the end of ``op`` (and no further); its state, error code and message."""
        self.run(self.engine.now + self.model.operation_seconds)
        status = self.cloud.operation(op)
        return status.state.value, status.error_code, status.message


def spot_pool(name: str = "spot1", **fields: Any) -> AgentPool:
    return pool(name, priority=Priority.SPOT, **fields)


# -- the protocol ---------------------------------------------------------------------------


def test_simcloud_is_a_cloud_provider_and_records_every_api_call() -> None:
    world = World([pool(count=1)])
    provider: CloudProvider = world.cloud  # checked by mypy: SimCloud satisfies the protocol
    op = provider.scale("pool1", 2)
    provider.operation(op)
    provider.list_pools()
    provider.list_pools()
    with pytest.raises(Conflict):
        provider.delete_machines("pool1", ["x"])
    assert world.recorder.api_calls == {
        "scale": 1, "operation": 1, "list_pools": 2, "delete_machines": 1}


def test_an_unknown_operation_token_is_not_found() -> None:
    world = World([pool()])
    with pytest.raises(CloudError) as caught:
        world.cloud.operation(Operation("pool1", "scale", 1, "nope", START))
    assert caught.value.code == "NotFound"


# -- nodes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "zone", "spot"),
    [
        pytest.param(pool("pool1", zones=("2",)), "eastus-2", False, id="regular-zonal"),
        pytest.param(spot_pool("spot1", zones=("3",)), "eastus-3", True, id="spot-zonal"),
        pytest.param(pool("multi", zones=()), None, False, id="zone-less"),
    ],
)
def test_initial_nodes_are_aks_named_labelled_and_ready_at_the_start(
    spec: AgentPool, zone: str | None, spot: bool
) -> None:
    world = World([replace(spec, count=2)])
    world.run(0.0)
    nodes = world.cluster.nodes
    assert [n.name[-6:] for n in nodes] == ["000000", "000001"]
    assert [c[3] for c in world.cluster.calls] == [0.0, 0.0]
    vm = CATALOG.get(spec.vm_size)
    assert vm is not None
    expected = node_allocatable(vm, spec.max_pods, spec.kubernetes_version,
                                ephemeral_storage_bytes=template_ephemeral_storage(128))
    for n in nodes:
        match = NAME.match(n.name)
        assert match is not None and match["pool"] == spec.name
        labels = dict(n.labels)
        assert labels[AGENTPOOL_LABEL] == spec.name
        assert labels[HOSTNAME_LABEL] == n.name
        assert labels.get(ZONE_LABEL) == zone
        assert (SPOT_TAINT in n.taints) is spot
        assert n.allocatable == expected
        assert n.ready
        assert world.recorder.nodes[n.name].ready == 0.0


@pytest.mark.parametrize(
    ("spec", "price"),
    [
        pytest.param(pool("reg", zones=("1",)), 0.192, id="regular-pays-pay-as-you-go"),
        pytest.param(spot_pool("spot", zones=("1",)), 0.0384, id="spot-pays-the-spot-price"),
    ],
)
def test_node_lifetimes_are_recorded_with_the_catalog_price(spec: AgentPool, price: float) -> None:
    world = World([spec], provision_seconds=(100.0, 100.0))
    world.run(5.0)
    world.cloud.scale(spec.name, 1)
    world.run(1000.0)
    (record,) = world.recorder.nodes.values()
    assert (record.pool, record.zone, record.priority, record.vm_size) == (
        spec.name, "eastus-1", spec.priority.value, "Standard_D4s_v5")
    assert record.price_per_hour == pytest.approx(price)
    # Asked for when the operation started; Ready 100 s later; registered 15 s before that.
    assert (record.requested, record.registered, record.ready) == (5.0, 90.0, 105.0)
    assert record.removed is None


# -- operations -----------------------------------------------------------------------------


def test_a_scale_up_is_in_progress_until_its_end_and_the_count_shows_the_target_meanwhile() -> None:
    world = World([pool(count=1)])
    op = world.cloud.scale("pool1", 4)
    assert (op.pool, op.kind, op.target, op.started) == ("pool1", "scale", 4, START)
    world.run(29.0)
    assert world.cloud.operation(op).state is OperationState.IN_PROGRESS
    assert world.count("pool1") == 4
    assert world.cluster.verbs("add") == [world.cluster.nodes[0].name]  # the initial node only
    world.run(30.0)
    assert world.cloud.operation(op).state is OperationState.SUCCEEDED
    assert world.count("pool1") == 4
    assert world.recorder.operations == {"scale:Succeeded": 1}
    world.run(300.0)
    assert len(world.cluster.node_names("pool1")) == 4


@pytest.mark.parametrize(
    ("pools", "model", "scale_to", "expected"),
    [
        pytest.param(
            [pool(zones=("1",))], {"capacity": {(D4, "eastus-1", "Regular"): 3}}, 5,
            ("Failed", "ZonalAllocationFailed", "Standard_D4s_v5", 3), id="zonal-capacity"),
        pytest.param(
            [pool(zones=())], {"capacity": {(D4, None, "Regular"): 2}}, 5,
            ("Failed", "AllocationFailed", "Standard_D4s_v5", 2), id="regional-capacity"),
        pytest.param(
            [spot_pool("pool1")], {"capacity": {(D4, "eastus-1", "Spot"): 1}}, 3,
            ("Failed", "ZonalAllocationFailed", "Spot", 1), id="spot-capacity"),
        pytest.param(
            [spot_pool("pool1")], {"capacity": {(D4, "eastus-1", "Regular"): 0}}, 3,
            ("Succeeded", None, "", 3), id="regular-capacity-does-not-limit-spot"),
        pytest.param(
            [pool()], {"capacity": {("Standard_D4S_v5", "eastus-1", Priority.REGULAR): 1}}, 2,
            ("Failed", "ZonalAllocationFailed", "", 1), id="capacity-keys-ignore-case"),
        pytest.param(
            [pool()], {"regional_cores": 10}, 5,
            ("Failed", "QuotaExceeded", "Total Regional Cores", 2), id="regional-quota"),
        pytest.param(
            [pool()], {"family_cores": {"STANDARDDSV5FAMILY": 12}}, 5,
            ("Failed", "QuotaExceeded", "standardDSv5Family Cores", 3), id="family-quota"),
        pytest.param(
            [pool(vm_size="Standard_E4s_v5")], {"family_cores": {"standardDSv5Family": 0}}, 2,
            ("Succeeded", None, "", 2), id="other-family-quota-does-not-apply"),
        pytest.param(
            [spot_pool("pool1")], {"spot_cores": 8}, 3,
            ("Failed", "QuotaExceeded", "LowPriorityCores", 2), id="spot-quota"),
        pytest.param(
            [spot_pool("pool1")], {"regional_cores": 0, "family_cores": {"standardDSv5Family": 0}},
            3, ("Succeeded", None, "", 3), id="spot-is-outside-the-standard-quotas"),
        pytest.param(
            [pool()], {"spot_cores": 0}, 3, ("Succeeded", None, "", 3),
            id="regular-is-outside-the-spot-quota"),
        pytest.param(
            [spot_pool("pool1", vm_size="Standard_B2s_v2")], {}, 1,
            ("Failed", "SkuNotAvailable", "not available as Spot", 0), id="size-without-spot"),
        pytest.param(
            [pool("reg", count=2), spot_pool("pool1")], {"spot_cores": 8}, 2,
            ("Succeeded", None, "", 2), id="regular-nodes-do-not-use-spot-quota"),
        pytest.param(
            [spot_pool("spot", count=2), pool()], {"regional_cores": 8}, 2,
            ("Succeeded", None, "", 2), id="spot-nodes-do-not-use-regional-quota"),
        pytest.param(
            [pool(count=2)], {"regional_cores": 8}, 3,
            ("Failed", "QuotaExceeded", "Current Usage: 8", 2), id="existing-nodes-use-quota"),
    ],
)
def test_a_scale_up_fails_at_its_end_on_the_first_limit_keeping_what_fit(
    pools: list[AgentPool], model: dict[str, Any], scale_to: int,
    expected: tuple[str, str | None, str, int],
) -> None:
    state, code, fragment, count = expected
    world = World(pools, **model)
    op = world.cloud.scale("pool1", scale_to)
    got_state, got_code, message = world.settle(op)
    assert (got_state, got_code) == (state, code)
    assert fragment in message
    assert world.count("pool1") == count
    result = "Succeeded" if code is None else "Failed"
    assert world.recorder.operations == {f"scale:{result}": 1}
    assert world.recorder.failures == ({} if code is None else {code: 1})
    world.run(1000.0)
    assert len(world.cluster.node_names("pool1")) == count


def test_quotas_count_nodes_that_are_still_booting_in_other_pools() -> None:
    world = World([pool("a"), pool("b")], regional_cores=12)
    world.settle(world.cloud.scale("a", 2))
    assert world.cluster.nodes == []  # a's nodes are booting, not registered
    assert world.settle(world.cloud.scale("b", 2))[1] == "QuotaExceeded"
    assert (world.count("a"), world.count("b")) == (2, 1)


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [
        pytest.param({}, ({"eastus-1": 2, "eastus-2": 2, "eastus-3": 2}, None), id="balanced"),
        pytest.param({(D4, "eastus-1", "Regular"): 0}, ({"eastus-2": 3, "eastus-3": 3}, None),
                     id="full-zone-skipped"),
        pytest.param(
            {(D4, z, "Regular"): 1 for z in ("eastus-1", "eastus-2", "eastus-3")},
            ({"eastus-1": 1, "eastus-2": 1, "eastus-3": 1}, "ZonalAllocationFailed"),
            id="all-zones-full"),
    ],
)
def test_a_multi_zone_pool_spreads_its_nodes_over_zones_with_capacity(
    capacity: Mapping[tuple[str, str | None, str], int],
    expected: tuple[dict[str, int], str | None],
) -> None:
    world = World([pool(zones=("1", "2", "3"))], capacity=capacity)
    code = world.settle(world.cloud.scale("pool1", 6))[1]
    world.run(1000.0)
    zones: dict[str, int] = {}
    for n in world.cluster.nodes:
        zones[n.zone or ""] = zones.get(n.zone or "", 0) + 1
    assert (zones, code) == expected


# -- one operation at a time ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("scale", "scale", id="scale-during-scale"),
        pytest.param("scale", "delete", id="delete-during-scale"),
        pytest.param("delete", "scale", id="scale-during-delete"),
        pytest.param("delete", "delete", id="delete-during-delete"),
    ],
)
def test_a_second_operation_on_a_busy_pool_is_refused_with_operation_not_allowed(
    first: str, second: str
) -> None:
    world = World([pool(count=3), pool("other", count=1)])
    world.run(0.0)
    names = world.cluster.node_names("pool1")

    def start(kind: str, machine: str) -> Operation:
        if kind == "scale":
            return world.cloud.scale("pool1", 5)
        return world.cloud.delete_machines("pool1", [machine])

    start(first, names[0])
    world.run(29.0)
    with pytest.raises(Conflict) as caught:
        start(second, names[1])
    assert caught.value.code == "OperationNotAllowed"
    assert world.recorder.failures == {"OperationNotAllowed": 1}
    world.cloud.scale("other", 2)  # other pools are not blocked
    world.run(30.0)
    start(second, names[1])  # the pool is free again once the first operation ended


@pytest.mark.parametrize(
    ("call", "code"),
    [
        pytest.param(lambda c: c.scale("ghost", 1), "NotFound", id="scale-unknown-pool"),
        pytest.param(lambda c: c.delete_machines("ghost", ["x"]), "NotFound",
                     id="delete-unknown-pool"),
        pytest.param(lambda c: c.scale("pool1", -1), "InvalidParameter", id="negative-count"),
        pytest.param(lambda c: c.scale("pool1", 1001), "InvalidParameter", id="over-aks-max"),
        pytest.param(lambda c: c.scale("auto", 3), "InvalidParameter", id="autoscaling-pool"),
        pytest.param(lambda c: c.delete_machines("pool1", []), "InvalidParameter",
                     id="delete-nothing"),
        pytest.param(lambda c: c.delete_machines("pool1", ["aks-other-0"]), "InvalidParameter",
                     id="delete-unknown-machine"),
        pytest.param(lambda c: c.delete_machines("auto", ["x"]), "InvalidParameter",
                     id="delete-another-pools-machine"),
    ],
)
def test_bad_calls_are_refused_at_once_and_start_nothing(call: Any, code: str) -> None:
    world = World([pool(count=1), replace(pool("auto", count=1), enable_autoscaling=True)])
    with pytest.raises(CloudError) as caught:
        call(world.cloud)
    assert caught.value.code == code
    assert not isinstance(caught.value, Conflict)
    assert world.recorder.failures == {code: 1}
    world.cloud.scale("pool1", 2)  # nothing is in progress


def test_deleting_repeated_names_is_refused() -> None:
    world = World([pool(count=2)])
    world.run(0.0)
    name = world.cluster.node_names("pool1")[0]
    with pytest.raises(CloudError) as caught:
        world.cloud.delete_machines("pool1", [name, name])
    assert caught.value.code == "InvalidParameter"


# -- scale down and delete ------------------------------------------------------------------


def test_pool_counts_and_nodes_follow_each_operation() -> None:
    world = World([pool(count=2)], provision_seconds=(60.0, 60.0))
    world.run(0.0)
    first = world.cluster.node_names("pool1")
    steps: list[tuple[str, int]] = []

    def done(op: Operation) -> None:
        assert world.settle(op)[0] == "Succeeded"
        world.run(world.engine.now + 60.0)  # new nodes register
        steps.append((op.kind, world.count("pool1")))
        assert len(world.cluster.node_names("pool1")) == world.count("pool1")

    done(world.cloud.scale("pool1", 5))
    grown = world.cluster.node_names("pool1")
    done(world.cloud.scale("pool1", 3))
    # Scale down removes the newest nodes: the first three are left.
    assert world.cluster.node_names("pool1") == grown[:3]
    done(world.cloud.delete_machines("pool1", [first[0]]))
    assert world.cluster.node_names("pool1") == grown[1:3]
    done(world.cloud.scale("pool1", 4))
    done(world.cloud.scale("pool1", 0))
    assert steps == [("scale", 5), ("scale", 3), ("delete-machines", 2), ("scale", 4),
                     ("scale", 0)]
    reasons = {n: r.removal_reason for n, r in world.recorder.nodes.items()}
    assert [reasons[n] for n in grown] == ["delete-machines"] + ["scale-down"] * 4
    assert list(reasons.values()).count("scale-down") == 6
    # Instance ids are never reused: 2 initial + 3 + 2 new machines.
    assert len(world.recorder.nodes) == 7
    assert world.recorder.operations == {"scale:Succeeded": 4, "delete-machines:Succeeded": 1}


def test_scaling_down_while_nodes_boot_cancels_the_newest_before_they_register() -> None:
    world = World([pool(count=1)], provision_seconds=(200.0, 200.0))
    world.settle(world.cloud.scale("pool1", 4))
    world.settle(world.cloud.scale("pool1", 2))
    world.run(1000.0)
    assert len(world.cluster.verbs("add")) == 2
    assert world.cluster.verbs("remove") == []  # the cancelled ones never registered
    reasons = sorted(str(r.removal_reason) for r in world.recorder.nodes.values() if r.removed)
    assert reasons == ["scale-down", "scale-down"]
    assert world.count("pool1") == 2


# -- latency and determinism ----------------------------------------------------------------


def _ready_times(seed: int, low: float = 90.0, high: float = 240.0) -> list[float]:
    world = World([pool(max_count=50)], seed=seed, provision_seconds=(low, high))
    world.run(10.0)
    world.cloud.scale("pool1", 30)
    world.run(1000.0)
    times = []
    for record in world.recorder.nodes.values():
        assert record.ready is not None and record.registered is not None
        assert record.ready - record.registered == pytest.approx(15.0)
        times.append(record.ready - record.requested)
    adds = [c for c in world.cluster.calls if c[0] == "add"]
    assert [c[3] for c in adds] == pytest.approx([15.0] * 30)
    return times


@pytest.mark.parametrize(("low", "high"), [(90.0, 240.0), (120.0, 130.0), (60.0, 60.0)])
def test_nodes_become_ready_within_the_provisioning_range_after_the_operation_starts(
    low: float, high: float
) -> None:
    times = _ready_times(3, low, high)
    assert all(low <= t <= high for t in times)
    assert len(set(times)) == (1 if low == high else 30)


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    assert _ready_times(11) == _ready_times(11)
    assert _ready_times(11) != _ready_times(12)


# -- spot evictions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "evicted"),
    [
        pytest.param(spot_pool("pool1", count=6), 6, id="spot-nodes-are-evicted"),
        pytest.param(pool(count=6), 0, id="regular-nodes-are-not"),
    ],
)
def test_spot_nodes_are_evicted_after_a_notice_and_the_pool_shrinks(
    spec: AgentPool, evicted: int
) -> None:
    # 60 evictions per node-hour: each node is expected to last a minute.
    world = World([spec], spot_evictions_per_node_hour=60.0, eviction_notice_seconds=30.0)
    world.run(3600.0)
    removals = [c for c in world.cluster.calls if c[0] == "remove"]
    assert len(removals) == evicted
    assert all(reason == "spot-eviction" for *_, reason in removals)
    assert all(when >= 30.0 for _, _, when, _ in removals)  # never before the notice ran out
    assert world.recorder.spot_evictions == evicted
    assert world.count("pool1") == 6 - evicted
    assert all(r.removal_reason == "spot-eviction" for r in world.recorder.nodes.values()
               if r.removed is not None)


def test_a_spot_node_evicted_while_booting_never_reaches_the_cluster() -> None:
    world = World([spot_pool("pool1")], spot_evictions_per_node_hour=3600.0 * 100,
                  eviction_notice_seconds=1.0)
    world.settle(world.cloud.scale("pool1", 3))
    world.run(1000.0)
    assert world.cluster.calls == []
    assert world.recorder.spot_evictions == 3
    assert world.count("pool1") == 0


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [
        pytest.param({"provision_seconds": (240.0, 90.0)}, "cloud.provision_seconds",
                     id="range-reversed"),
        pytest.param({"operation_seconds": -1.0}, "cloud.operation_seconds", id="negative-time"),
        pytest.param({"spot_evictions_per_node_hour": -0.1},
                     "cloud.spot_evictions_per_node_hour", id="negative-rate"),
        pytest.param({"regional_cores": -4}, "cloud.regional_cores", id="negative-quota"),
    ],
)
def test_a_bad_cloud_model_is_a_validation_error_naming_the_field(
    model: dict[str, Any], path: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CloudModel(**model)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("pools", "path"),
    [
        pytest.param([pool(vm_size="Standard_Nope_v9")], "pools[0].vmSize", id="unknown-size"),
        pytest.param([pool("a"), pool("a")], "pools[1].name", id="duplicate-pool"),
    ],
)
def test_pools_simcloud_cannot_model_are_validation_errors(
    pools: list[AgentPool], path: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        World(pools)
    assert caught.value.path == path


# -- the real control loop ------------------------------------------------------------------


def test_the_control_loop_turns_pending_pods_into_an_operation_and_then_nodes() -> None:
    world = World([spot_pool("spot1", max_count=10)], provision_seconds=(100.0, 100.0))
    world.cluster.pods = [pod(f"web-{i}", 1500, tolerations=(SPOT_TOLERATION,))
                          for i in range(6)]
    loop = Reconciler(world.cluster, world.cloud, world.engine.clock,
                      LoopConfig(region="eastus"), CATALOG)
    reports: list[LoopReport] = []

    def tick() -> None:
        reports.append(loop.run_once())
        world.engine.after(10.0, tick, LOOP)

    world.engine.at(0.0, tick, LOOP)
    world.run(300.0)
    started = [(r.at, a.pool, a.current, a.target, a.result)
               for r in reports for a in r.actions]
    # Two 1.5-core pods per 4-vCPU node: one operation for three nodes, in the first pass.
    assert started == [(START, "spot1", 0, 3, "started")]
    assert world.recorder.operations == {"scale:Succeeded": 1}
    assert all(not r.failures and r.skipped is None for r in reports)
    assert len(world.cluster.node_names("spot1")) == 3
    assert all(n.ready for n in world.cluster.nodes)
    assert world.count("spot1") == 3
    assert world.cluster.events[0][1] == "TriggeredScaleUp"
