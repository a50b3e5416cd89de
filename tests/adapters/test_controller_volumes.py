"""Volume zones end to end: the controller, over the real clients, against the Kubernetes twin
(pods, PersistentVolumeClaims, PersistentVolumes) and the ARM twin (one spot pool per zone).

A pending StatefulSet pod whose disk is in zone 2 gets its node from the zone-2 pool (with the
switch off, from the pool the policy picks first: the bug this closes); when no pool serves
the disk's zone, or its claims allow no zone at all, nothing is put and the plan says why.
``surge run --once`` reads the switch from its configuration file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoscaler.control.cli import main
from autoscaler.control.clock import FixedClock
from autoscaler.control.controller import Controller
from autoscaler.control.loop import LoopConfig
from simulator.twin import ArmTwin
from simulator.twin.kube import KubeTwin
from tests.adapters.kube_support import (
    CacheFactory,
    claiming_pod,
    synced,
)
from tests.adapters.support import twin_provider
from tests.adapters.test_controller_twin import (
    puts,
    run_env,  # noqa: F401  (fixture)
    write_config,
)
from tests.builders import SPOT_TOLERATION, GiB

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TAGS = {"surge.io/managed": "true", "surge.io/max-count": "20"}


def zonal_pools(arm_twin: ArmTwin, zones: tuple[str, ...] = ("1", "2", "3")) -> None:
    """One spot pool per zone, same size and price: only the zone tells them apart."""
    for zone in zones:
        arm_twin.model.add_pool(f"spot{zone}", "Standard_D4s_v5", 0, zones=(zone,), spot=True,
                                tags=TAGS)


def disk(twin: KubeTwin, claim: str, zone: str) -> None:
    """A claim ``default/<claim>`` bound to an Azure disk in ``zone``."""
    twin.add_volume(f"pv-{claim}", (zone,), claim=f"default/{claim}",
                    key="topology.disk.csi.azure.com/zone")
    twin.add_claim(f"default/{claim}", f"pv-{claim}")


def database(twin: KubeTwin, claims: list[str]) -> None:
    twin.add_pod(claiming_pod("db-0", claims, cpu_m=1000, mem=GiB, owner="StatefulSet/db",
                              tolerations=(SPOT_TOLERATION,)))


def controller(make_cache: CacheFactory, arm_twin: ArmTwin, **options: object) -> Controller:
    cache = make_cache(**options)
    assert synced(cache)
    return Controller(cache, twin_provider(arm_twin), FixedClock(NOW), LoopConfig())


@pytest.mark.parametrize("watch_volumes, pool", [
    pytest.param(True, "spot2", id="watched-the-disks-zone"),
    pytest.param(False, "spot1", id="not-watched-the-policys-first-pool"),
])
def test_a_pending_pod_whose_disk_is_in_zone_2_gets_its_node_from_the_zone_2_pool(
    twin: KubeTwin, make_cache: CacheFactory, arm_twin: ArmTwin, watch_volumes: bool,
    pool: str,
) -> None:
    zonal_pools(arm_twin)
    disk(twin, "data-db-0", "eastus-2")
    database(twin, ["data-db-0"])
    report = controller(make_cache, arm_twin, watch_volumes=watch_volumes).step()
    assert report is not None and report.plan is not None
    assert puts(arm_twin) == [pool]
    (group,) = report.plan.groups
    assert (group.on_new, group.unplaced) == (((pool, 1),), 0)


@pytest.mark.parametrize("pools, disks, reason", [
    pytest.param(("1", "3"), {"data-db-0": "eastus-2"}, "volume zone eastus-1 not in [eastus-2]",
                 id="no-pool-in-the-disks-zone"),
    pytest.param(("1", "2", "3"), {"data-db-0": "eastus-1", "logs-db-0": "eastus-2"},
                 "volume zone eastus-1 not in []", id="disks-in-two-zones"),
])
def test_a_pod_whose_disks_allow_no_pool_gets_no_node_and_the_plan_says_why(
    twin: KubeTwin, make_cache: CacheFactory, arm_twin: ArmTwin, pools: tuple[str, ...],
    disks: dict[str, str], reason: str,
) -> None:
    zonal_pools(arm_twin, pools)
    for claim, zone in disks.items():
        disk(twin, claim, zone)
    database(twin, list(disks))
    report = controller(make_cache, arm_twin).step()
    assert report is not None and report.plan is not None
    assert puts(arm_twin) == []
    (group,) = report.plan.groups
    assert group.unplaced == 1
    assert group.reason is not None and reason in group.reason


@pytest.mark.parametrize("watch, pool", [(True, "spot2"), (False, "spot1")])
def test_surge_run_once_takes_the_volume_switch_from_its_configuration(
    twin: KubeTwin, kubeconfig: str, arm_twin: ArmTwin, run_env: None,  # noqa: F811
    tmp_path: Path, capsys: pytest.CaptureFixture[str], watch: bool, pool: str,
) -> None:
    zonal_pools(arm_twin)
    disk(twin, "data-db-0", "eastus-2")
    database(twin, ["data-db-0"])
    path = write_config(tmp_path / "surge.yaml", arm_twin, {"kind": "configmap"})
    doc = json.loads(Path(path).read_text())
    doc["pools"] = [{"name": f"spot{zone}", "maxCount": 20} for zone in "123"]
    doc["kubernetes"]["watchVolumes"] = watch
    Path(path).write_text(json.dumps(doc))
    assert main(["run", "--config", path, "--kubeconfig", kubeconfig, "--once"]) == 0
    out, _ = capsys.readouterr()
    assert puts(arm_twin) == [pool]
    assert f"{pool} 0->1 started" in out
    assert (twin.count("GET /api/v1/persistentvolumes?") > 0) is watch
