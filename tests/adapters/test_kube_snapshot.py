"""``surge snapshot`` captures the twin's cluster into a snapshot that ``surge plan`` loads."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from autoscaler.control.capture import capture
from autoscaler.control.cli import main
from autoscaler.control.snapshot import load_snapshot, parse_snapshot
from autoscaler.model.aks import load_catalog
from autoscaler.model.pool import AgentPool, PoolMode, Priority
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_objects import aks_nodes, node_json, pod_json
from tests.adapters.kube_support import (
    kubeconfig_fixture,  # noqa: F401  (fixture)
    twin_fixture,  # noqa: F401  (fixture)
)
from tests.builders import SPOT_TOLERATION, pod, pool

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
POOLS = (
    pool("spot1", count=2, priority=Priority.SPOT),
    pool("reg2", zones=("2",), count=1),
    replace(pool("system", zones=("1", "2", "3"), count=3), mode=PoolMode.SYSTEM),
)


@pytest.fixture(autouse=True)
def no_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pools are inferred in these tests, whatever the machine's environment says."""
    for name in ("AZURE_SUBSCRIPTION_ID", "SURGE_RESOURCE_GROUP", "SURGE_CLUSTER_NAME"):
        monkeypatch.delenv(name, raising=False)


def aks_cluster(twin: KubeTwin) -> None:
    """Six AKS nodes, four bound pods, six pending, and two pods surge must leave out."""
    nodes = aks_nodes(POOLS, load_catalog(), "eastus")
    pods = [pod(f"web-{i}", 1000, tolerations=(SPOT_TOLERATION,),
                node_name=nodes[i % 2].name if i < 4 else None) for i in range(10)]
    twin.load(pods, nodes, padding=True)
    done = pod_json(pod("job-1", node_name=nodes[0].name, owner="Job/job"))
    done["status"]["phase"] = "Succeeded"
    twin.add_pod(done)
    other = pod_json(pod("batch-1", owner="Job/batch"))
    other["spec"]["schedulerName"] = "volcano"
    twin.add_pod(other)


def test_a_snapshot_of_the_twin_loads_and_plans(
    twin: KubeTwin, kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)
    out = tmp_path / "snapshot.json"
    assert main(["snapshot", "--kubeconfig", kubeconfig, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "agent pools inferred from node labels (reg2, spot1, system)" in err
    assert "captured 3 pools, 6 nodes, 10 pods (6 pending)" in err
    state, warnings = load_snapshot(str(out))
    assert warnings == ()
    assert [(p.name, p.count, p.priority, p.zones) for p in state.pools] == [
        ("reg2", 1, Priority.REGULAR, ("2",)), ("spot1", 2, Priority.SPOT, ("1",)),
        ("system", 3, Priority.REGULAR, ("1", "2", "3"))]
    assert {o.pool for o in state.options} == {"reg2", "spot1"}  # System pools are not managed
    assert sorted(p.name for p in state.pods if p.node_name is None) == [
        f"web-{i}" for i in range(4, 10)]
    assert main(["plan", "--snapshot", str(out), "-o", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert sum(g["placed"] for g in plan["groups"]) == 6


def test_a_snapshot_goes_to_stdout_and_the_region_can_be_given(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)
    assert main(["snapshot", "--kubeconfig", kubeconfig, "--region", "westeurope"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["region"]) == ("ClusterSnapshot", "westeurope")


def test_pods_of_another_scheduler_are_captured_when_asked_for(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)
    args = ["snapshot", "--kubeconfig", kubeconfig, "--scheduler-name", "volcano"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["pods"] if "nodeName" not in p] == ["batch-1"]


def test_a_cluster_that_cannot_be_reached_exits_1(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    twin.stop()
    assert main(["snapshot", "--kubeconfig", kubeconfig]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "surge: error: cannot read the cluster" in captured.err


def test_nodes_without_region_or_zone_need_the_region_flag(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    obj = node_json(aks_nodes(POOLS[:1], load_catalog(), "eastus")[0])
    for label in ("topology.kubernetes.io/region", "topology.kubernetes.io/zone"):
        del obj["metadata"]["labels"][label]
    twin.add_node(obj)
    assert main(["snapshot", "--kubeconfig", kubeconfig]) == 2
    assert "pass --region" in capsys.readouterr().err


def test_pools_from_the_provider_are_the_managed_ones_and_others_are_inferred() -> None:
    nodes: list[dict[str, Any]] = [node_json(n) for n in aks_nodes(POOLS, load_catalog(),
                                                                  "eastus")]
    provider: list[AgentPool] = [replace(POOLS[0], count=4, max_count=20)]  # 2 still coming
    doc, warnings = capture([], nodes, now=NOW, pools=provider)
    assert doc["managedPools"] == ["spot1"]
    assert [(p["name"], p["count"]) for p in doc["pools"]] == [
        ("spot1", 4), ("reg2", 1), ("system", 3)]
    assert warnings == ["pools not managed by the provider, inferred from nodes: reg2, system"]
    state, _ = parse_snapshot(doc)
    assert [o.pool for o in state.options] == ["spot1"]
