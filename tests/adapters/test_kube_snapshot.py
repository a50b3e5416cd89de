"""``surge snapshot`` captures the twin's cluster into a snapshot that ``surge plan`` loads:
pools, nodes, pods, the zones of pods' bound volumes and PodDisruptionBudgets, and what happens
when claims, volumes or budgets cannot be listed."""

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
from autoscaler.kube.reflector import PDBS, PVCS, PVS
from autoscaler.kube.volumes import ZONE_KEYS
from autoscaler.model.aks import load_catalog
from autoscaler.model.labels import ZONE_LABEL
from autoscaler.model.pool import AgentPool, PoolMode, Priority
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_objects import aks_nodes, node_json, pdb_json, pod_json
from tests.adapters.kube_support import (
    claiming_pod,
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


# -- persistent volume zones and PodDisruptionBudgets ----------------------------------------

DB_CLAIMS = {"claim": "data-db-0", "ephemeral": "db-0-scratch"}  # how db-0 mounts, its claim


def db_pod(twin: KubeTwin, mount: str, zones: tuple[str, ...], key: str = ZONE_LABEL) -> None:
    """A pending StatefulSet pod that tolerates Spot, whose claim (mounted as ``mount`` says)
    is bound to a volume in ``zones``. Every node but the Spot ones (zone 1) is full, so
    without the volume it would go to a Spot node; with it, where its zone allows."""
    for i, full in enumerate(aks_nodes(POOLS, load_catalog(), "eastus")[2:]):
        twin.add_pod(pod(f"filler-{i}", 3800, node_name=full.name, owner="Job/filler"))
    claim = DB_CLAIMS[mount]
    twin.add_volume("pv-db-0", zones, claim=f"default/{claim}", key=key)
    twin.add_claim(f"default/{claim}", "pv-db-0")
    volumes = {"claims": [claim]} if mount == "claim" else {"ephemeral": ["scratch"]}
    twin.add_pod(claiming_pod("db-0", owner="StatefulSet/db", tolerations=(SPOT_TOLERATION,),
                              **volumes))  # type: ignore[arg-type]


def snapshot_and_plan(kubeconfig: str, out: Path, capsys: pytest.CaptureFixture[str],
                      ) -> dict[str, Any]:
    assert main(["snapshot", "--kubeconfig", kubeconfig, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["plan", "--snapshot", str(out), "-o", "json"]) == 0
    plan: dict[str, Any] = json.loads(capsys.readouterr().out)
    return plan


@pytest.mark.parametrize("mount", sorted(DB_CLAIMS))
@pytest.mark.parametrize("key", sorted(ZONE_KEYS))
def test_a_captured_pending_pod_keeps_its_bound_volume_zone_and_is_planned_there(
    twin: KubeTwin, kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    mount: str, key: str,
) -> None:
    aks_cluster(twin)
    db_pod(twin, mount, ("eastus-2",), key)
    out = tmp_path / "snapshot.json"
    plan = snapshot_and_plan(kubeconfig, out, capsys)
    doc = json.loads(out.read_text())
    assert doc["persistentVolumeClaims"] == [
        {"namespace": "default", "name": DB_CLAIMS[mount], "zones": ["eastus-2"]}]
    state, _ = load_snapshot(str(out))
    assert next(p.volume_zones for p in state.pods if p.name == "db-0") == ("eastus-2",)
    group = next(g for g in plan["groups"] if g["group"] == "default/StatefulSet/db")
    assert (group["placed"], group["onNew"]) == (1, [{"pool": "reg2", "pods": 1}])


def test_a_pod_whose_volume_is_in_a_zone_no_pool_serves_is_unplaced_for_that_reason(
    twin: KubeTwin, kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)
    db_pod(twin, "claim", ("eastus-3",))
    plan = snapshot_and_plan(kubeconfig, tmp_path / "snapshot.json", capsys)
    group = next(g for g in plan["groups"] if g["group"] == "default/StatefulSet/db")
    assert group["unplaced"] == 1
    assert "volume zone" in group["reason"]


def test_only_bound_zonal_claims_that_captured_pods_mount_are_written_in_order(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)
    node_name = aks_nodes(POOLS, load_catalog(), "eastus")[0].name
    twin.add_volume("pv-z1", ("eastus-1",))
    twin.add_volume("pv-z12", ("eastus-1", "eastus-2"))
    twin.add_volume("pv-redundant")  # zone-redundant: no node affinity
    for claim, volume in (("shop/cart", "pv-z1"), ("default/shared", "pv-z12"),
                          ("default/nobody", "pv-z1"), ("default/redundant", "pv-redundant"),
                          ("default/done", "pv-z1")):
        twin.add_claim(claim, volume)
    twin.add_claim("default/unbound")  # WaitForFirstConsumer
    twin.add_claim("default/lost", "pv-deleted")  # bound to a volume no longer listed
    twin.add_pod(claiming_pod("a", ["shared", "redundant", "unbound", "lost"], owner="Job/a"))
    twin.add_pod(claiming_pod("b", ["shared"], owner="Job/b"))  # the same claim, written once
    twin.add_pod(claiming_pod("cart-0", ["cart"], namespace="shop", node_name=node_name,
                              owner="StatefulSet/cart"))
    done = claiming_pod("old", ["done"], node_name=node_name, owner="Job/old")
    done["status"]["phase"] = "Succeeded"  # not captured, so neither is its claim
    twin.add_pod(done)
    assert main(["snapshot", "--kubeconfig", kubeconfig]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["persistentVolumeClaims"] == [
        {"namespace": "default", "name": "shared", "zones": ["eastus-1", "eastus-2"]},
        {"namespace": "shop", "name": "cart", "zones": ["eastus-1"]},
    ]
    state, _ = parse_snapshot(doc)
    zones = {p.name: p.volume_zones for p in state.pods if p.name in ("a", "cart-0")}
    assert zones == {"a": ("eastus-1", "eastus-2"), "cart-0": ("eastus-1",)}


def test_a_claim_in_another_region_than_the_snapshot_is_left_out_with_a_warning(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)
    db_pod(twin, "claim", ("eastus-2",))
    assert main(["snapshot", "--kubeconfig", kubeconfig, "--region", "westeurope"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["persistentVolumeClaims"] == []
    assert "warning: claim default/data-db-0 left out" in captured.err
    assert "expected a zone of westeurope" in captured.err


def test_budgets_are_captured_with_the_disruptions_their_status_allows(
    twin: KubeTwin, kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)  # ten web pods, four of them running
    twin.add_pdb(pdb_json("web-min", "default", {"app": "web"}, min_available=2))
    twin.add_pdb(pdb_json("web-max", "default", {"app": "web"}, max_unavailable="50%"))
    twin.add_pdb(pdb_json("cart", "shop", {"app": "cart"}, min_available="100%"))
    selects_nothing = pdb_json("none", "default", {})
    selects_nothing["spec"]["selector"] = None
    twin.add_pdb(selects_nothing)
    out = tmp_path / "snapshot.json"
    assert main(["snapshot", "--kubeconfig", kubeconfig, "--out", str(out)]) == 0
    assert "captured 3 pools, 6 nodes, 10 pods (6 pending), 0 zonal claims, 3 budgets" in (
        capsys.readouterr().err)
    doc = json.loads(out.read_text())
    assert doc["podDisruptionBudgets"] == [
        {"name": "web-max", "namespace": "default", "selector": {"matchLabels": {"app": "web"}},
         "maxUnavailable": "50%", "disruptionsAllowed": 0},
        {"name": "web-min", "namespace": "default", "selector": {"matchLabels": {"app": "web"}},
         "minAvailable": 2, "disruptionsAllowed": 2},
        {"name": "cart", "namespace": "shop", "selector": {"matchLabels": {"app": "cart"}},
         "minAvailable": "100%", "disruptionsAllowed": 0},
    ]
    state, _ = load_snapshot(str(out))
    assert [(b.key, b.disruptions_allowed) for b in state.pdbs] == [
        ("default/web-max", 0), ("default/web-min", 2), ("shop/cart", 0)]


LISTS = {
    PVCS: ("GET /api/v1/persistentvolumeclaims?", "persistentVolumeClaims"),
    PVS: ("GET /api/v1/persistentvolumes?", "persistentVolumeClaims"),
    PDBS: ("GET /apis/policy/v1/poddisruptionbudgets?", "podDisruptionBudgets"),
}


@pytest.mark.parametrize("kind", sorted(LISTS))
@pytest.mark.parametrize("status", [403, 404])
def test_a_list_the_user_may_not_make_leaves_its_section_out_with_a_warning(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str], kind: str,
    status: int,
) -> None:
    aks_cluster(twin)
    db_pod(twin, "claim", ("eastus-2",))
    request, section = LISTS[kind]
    twin.fail_next(1, status, match=request)
    assert main(["snapshot", "--kubeconfig", kubeconfig]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert section not in doc
    assert {"persistentVolumeClaims", "podDisruptionBudgets"} - {section} <= set(doc)
    assert f"surge: warning: cannot list {kind} ({status} " in captured.err
    assert f"the snapshot has no {section}" in captured.err
    state, _ = parse_snapshot(doc)
    zones = next(p.volume_zones for p in state.pods if p.name == "db-0")
    assert zones == (None if section == "persistentVolumeClaims" else ("eastus-2",))


def test_a_server_error_listing_budgets_fails_the_capture(
    twin: KubeTwin, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aks_cluster(twin)
    twin.fail_next(1, 500, match=LISTS[PDBS][0])
    assert main(["snapshot", "--kubeconfig", kubeconfig]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "surge: error: cannot read the cluster: 500" in captured.err
