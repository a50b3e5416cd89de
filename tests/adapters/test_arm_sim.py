"""The ARM twin backed by SimCloud: the real SDK and AksProvider over simulated AKS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from autoscaler.cloud.provider import Conflict, OperationState
from autoscaler.model.aks import load_catalog
from autoscaler.model.node import Node
from autoscaler.model.pool import AgentPool, Priority
from simulator.cloud import SimCloud
from simulator.cloud_pools import CloudModel
from simulator.engine import Engine
from simulator.metrics import Recorder
from simulator.twin import ArmTwin
from simulator.twin.arm_sim import SimCloudArm
from tests.adapters.support import CLIENT_ID, SECRET, twin_provider
from tests.builders import pool

START = datetime(2026, 1, 1, tzinfo=UTC)


class Nodes:
    """SimCloud's view of the cluster: records the nodes it adds and removes."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add_node(self, node: Node, *, ready_after: float) -> None:
        self.names.append(node.name)

    def remove_node(self, name: str, reason: str) -> None:
        self.names.remove(name)


@pytest.fixture
def sim_twin(running_arm_twin: ArmTwin) -> Iterator[tuple[ArmTwin, Engine]]:
    engine = Engine(START)
    pools: list[AgentPool] = [
        pool("spot1", "Standard_D4s_v5", zones=("1",), priority=Priority.SPOT, max_count=20),
        pool("reg1", "Standard_D4s_v5", count=1, zones=("1",), max_count=20),
    ]
    cloud = SimCloud(
        engine, Nodes(), Recorder(), pools, load_catalog(), "eastus",
        CloudModel(operation_seconds=30.0, spot_cores=4), np.random.default_rng(1),
    )
    model = SimCloudArm(cloud=cloud, advance_by=lambda s: engine.run(engine.now + s))
    model.secrets[CLIENT_ID] = SECRET
    previous = running_arm_twin.model
    running_arm_twin.model = model
    running_arm_twin.reset_counts()
    yield running_arm_twin, engine
    running_arm_twin.model = previous


def test_simcloud_pools_round_trip_through_arm_json(
    sim_twin: tuple[ArmTwin, Engine],
) -> None:
    arm_twin, _ = sim_twin
    pools = {p.name: p for p in twin_provider(arm_twin).list_pools()}
    assert (pools["reg1"].count, pools["reg1"].max_count) == (1, 20)
    assert (pools["spot1"].priority, pools["spot1"].zones) == (Priority.SPOT, ("1",))


def test_a_scale_runs_on_simulated_time_and_succeeds_when_the_engine_reaches_its_end(
    sim_twin: tuple[ArmTwin, Engine],
) -> None:
    arm_twin, _ = sim_twin
    provider = twin_provider(arm_twin)
    op = provider.scale("reg1", 3)
    assert provider.operation(op).state is OperationState.IN_PROGRESS
    with pytest.raises(Conflict):
        provider.scale("reg1", 4)
    assert isinstance(arm_twin.model, SimCloudArm)
    arm_twin.model.advance(30.0)
    assert provider.operation(op).state is OperationState.SUCCEEDED
    assert {p.name: p.count for p in provider.list_pools()}["reg1"] == 3


def test_simcloud_spot_quota_surfaces_as_an_arm_failure_with_partial_success(
    sim_twin: tuple[ArmTwin, Engine],
) -> None:
    arm_twin, _ = sim_twin
    provider = twin_provider(arm_twin)
    op = provider.scale("spot1", 3)  # 12 spot vCPUs asked, 4 allowed
    assert isinstance(arm_twin.model, SimCloudArm)
    arm_twin.model.advance(30.0)
    status = provider.operation(op)
    assert (status.state, status.error_code) == (OperationState.FAILED, "QuotaExceeded")
    assert "LowPriorityCores" in status.message
    assert {p.name: p.count for p in provider.list_pools()}["spot1"] == 1
