"""The in-cluster controller against both twins (Kubernetes and ARM) through the real clients:
two replicas with one leader, failover mid-scale-up resuming from the ConfigMap store, the
status ConfigMap, and ``surge run --once`` end to end, restarted mid-scale-up."""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from autoscaler.control.cli import main
from autoscaler.control.clock import FixedClock
from autoscaler.control.config import load_config
from autoscaler.control.controller import Controller
from autoscaler.control.loop import LoopConfig
from autoscaler.control.serve import Service
from autoscaler.kube.client import api_client
from autoscaler.kube.lease import KubeLeaseApi, LeaderElector, LeaseConfig
from autoscaler.kube.status import ConfigMapStore, KubeConfigMapApi, StatusConfigMap
from simulator.twin import ArmTwin
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_store import BY_ID
from tests.adapters.kube_support import (
    BOUND,
    CacheFactory,
    FakeClock,
    synced,
)
from tests.adapters.support import CLIENT_ID, SECRET, twin_provider
from tests.builders import SPOT_TOLERATION, GiB, pod

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NAMESPACE = "kube-system"


def scene(arm_twin: ArmTwin, twin: KubeTwin, pending: int = 6) -> None:
    tags = {"surge.io/managed": "true", "surge.io/max-count": "20"}
    arm_twin.model.add_pool("spot1", "Standard_D4s_v5", 0, zones=("1",), spot=True, tags=tags)
    arm_twin.model.add_pool("reg1", "Standard_D4s_v5", 0, zones=("1",), tags=tags)
    for i in range(pending):
        twin.add_pod(pod(f"web-{i}", 1000, GiB, tolerations=(SPOT_TOLERATION,)))


def puts(arm_twin: ArmTwin) -> list[str | None]:
    return [pool for _, route, pool in arm_twin.arrivals if route == "PUT agentPool"]


class Replica:
    """One controller process: its own cache, ARM client, lease elector and stores."""

    def __init__(self, name: str, kubeconfig: str, make_cache: CacheFactory, arm_twin: ArmTwin,
                 clock: FakeClock) -> None:
        api = api_client(kubeconfig)
        self.cache = make_cache()
        assert synced(self.cache)
        self.elector = LeaderElector(KubeLeaseApi(api), LeaseConfig(identity=name), clock=clock)
        maps = KubeConfigMapApi(api)
        self.controller = Controller(
            self.cache, twin_provider(arm_twin), FixedClock(NOW), LoopConfig(),
            leadership=self.elector, store=ConfigMapStore(maps, NAMESPACE),
            status=StatusConfigMap(maps, NAMESPACE), monotonic=clock)


def status_data(kubeconfig: str) -> dict[str, str]:
    core = k8s.CoreV1Api(api_client(kubeconfig))
    data: dict[str, str] = core.read_namespaced_config_map("surge-status", NAMESPACE).data
    return data


def test_of_two_replicas_only_the_leader_scales_and_writes_the_status(
    twin: KubeTwin, kubeconfig: str, make_cache: CacheFactory, arm_twin: ArmTwin
) -> None:
    scene(arm_twin, twin)
    clock = FakeClock()
    a, b = (Replica(n, kubeconfig, make_cache, arm_twin, clock) for n in ("a", "b"))
    assert a.elector.step() and not b.elector.step()
    assert a.controller.step() is not None
    assert b.controller.step() is None
    assert puts(arm_twin) == ["spot1"]
    data = status_data(kubeconfig)
    doc = json.loads(data["status.json"])
    assert doc["leader"] == "a" and doc["health"] == "Healthy"
    spot1 = next(p for p in doc["pools"] if p["name"] == "spot1")
    assert (spot1["target"], spot1["upcoming"], spot1["ready"]) == (2, 2, 0)
    assert spot1["operation"].startswith("scale to 2 since ")
    assert "Leader:  a" in data["status"] and "spot1 0->2 started" in data["status"]
    assert json.loads(data["operations.json"])["operations"][0]["pool"] == "spot1"


def test_when_the_leader_is_lost_mid_scale_up_the_next_leader_resumes_without_a_second_put(
    twin: KubeTwin, kubeconfig: str, make_cache: CacheFactory, arm_twin: ArmTwin
) -> None:
    scene(arm_twin, twin)
    clock = FakeClock()
    a, b = (Replica(n, kubeconfig, make_cache, arm_twin, clock) for n in ("a", "b"))
    a.elector.step(), b.elector.step()
    a.controller.step()
    assert arm_twin.model.in_progress()  # the scale-up runs; a stops renewing (partitioned)
    before = sum(arm_twin.arm_requests().values())
    clock.now += 10.0
    assert a.controller.step() is None  # past the renew deadline: a acts no more
    assert sum(arm_twin.arm_requests().values()) == before
    clock.now += 5.1
    assert b.elector.step()
    report = b.controller.step()
    assert report is not None and report.actions == ()
    assert report.plan is not None and report.plan.groups[0].on_upcoming == 6
    assert puts(arm_twin) == ["spot1"]
    assert arm_twin.requests["GET operation"] == 1
    arm_twin.model.complete_operations()
    b.elector.step()
    b.controller.step()
    assert json.loads(status_data(kubeconfig)["operations.json"]) == {"operations": []}
    assert puts(arm_twin) == ["spot1"]


@pytest.fixture
def run_env(monkeypatch: pytest.MonkeyPatch, arm_twin: ArmTwin) -> Iterator[None]:
    """The environment of the controller's pod: credentials for the ARM twin's token endpoint
    (DefaultAzureCredential reads them) and its name. Logging set up by ``surge run`` is
    undone afterwards."""
    for key, value in (("AZURE_TENANT_ID", arm_twin.model.tenant),
                       ("AZURE_CLIENT_ID", CLIENT_ID), ("AZURE_CLIENT_SECRET", SECRET),
                       ("POD_NAME", "surge-0")):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == "surge"]:
        root.removeHandler(handler)
    root.setLevel(level)


def write_config(path: Path, arm_twin: ArmTwin, store: dict[str, Any]) -> str:
    model = arm_twin.model
    doc = {
        "region": "eastus",
        "azure": {"subscriptionId": model.subscription, "resourceGroup": model.resource_group,
                  "clusterName": model.cluster, "armEndpoint": arm_twin.url,
                  "authorityHost": arm_twin.url, "caBundle": arm_twin.ca_file},
        "pools": [{"name": "spot1", "maxCount": 20}, {"name": "reg1", "maxCount": 20}],
        "kubernetes": {"namespace": NAMESPACE, "syncTimeout": "10s"},
        "operationStore": store,
        "logging": {"format": "json"},
    }
    path.write_text(json.dumps(doc))  # JSON is YAML
    return str(path)


@pytest.mark.parametrize("store", ["configmap", "file"])
def test_surge_run_once_scales_up_from_pending_pods_and_a_restart_does_not_put_again(
    twin: KubeTwin, kubeconfig: str, arm_twin: ArmTwin, run_env: None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], store: str,
) -> None:
    scene(arm_twin, twin)
    kind = {"kind": "file", "path": str(tmp_path / "ops.json")} if store == "file" \
        else {"kind": "configmap"}
    config = write_config(tmp_path / "surge.yaml", arm_twin, kind)
    argv = ["run", "--config", config, "--kubeconfig", kubeconfig, "--once"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert puts(arm_twin) == ["spot1"]
    assert "spot1 0->2 started" in out
    assert any(json.loads(line).get("message", "").startswith("pass: spot1 0->2 started")
               for line in err.splitlines() if line.startswith("{"))
    assert status_data(kubeconfig)["status"] == out

    assert main(argv) == 0  # the process restarts while the scale-up runs
    out, _ = capsys.readouterr()
    assert puts(arm_twin) == ["spot1"]
    assert arm_twin.requests["GET operation"] == 1
    assert "scale to 2 since" in out
    lease = twin.store.get(BY_ID["coordination.k8s.io/leases"], NAMESPACE, "surge")
    assert lease["spec"].get("holderIdentity") is None  # released at exit


def test_surge_run_once_in_dry_run_plans_but_does_not_put(
    twin: KubeTwin, kubeconfig: str, arm_twin: ArmTwin, run_env: None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scene(arm_twin, twin)
    config = write_config(tmp_path / "surge.yaml", arm_twin, {"kind": "configmap"})
    assert main(["run", "--config", config, "--kubeconfig", kubeconfig, "--once",
                 "--dry-run", "--log-format", "text"]) == 0
    out, err = capsys.readouterr()
    assert puts(arm_twin) == []
    assert "spot1 0->2 dry-run" in out
    assert "(dry run)" in err and not err.lstrip().startswith("{")


def test_surge_run_scales_on_a_batch_of_new_pods_and_serves_metrics_and_probes(
    twin: KubeTwin, kubeconfig: str, arm_twin: ArmTwin, run_env: None, tmp_path: Path,
) -> None:
    scene(arm_twin, twin, pending=0)
    path = write_config(tmp_path / "surge.yaml", arm_twin, {"kind": "configmap"})
    doc = json.loads(Path(path).read_text())
    doc.update(batching={"idle": "50ms", "max": "1s"}, metrics={"address": "127.0.0.1", "port": 0})
    Path(path).write_text(json.dumps(doc))
    service = Service(load_config(path, os.environ), kubeconfig=kubeconfig)
    service.runner.batcher.wait_slice = 0.05  # stop promptly at the end of the test
    passes = threading.Condition()
    step = service.controller.step

    def counted(trigger: str) -> object:
        report = step(trigger)
        with passes:
            passes.notify_all()
        return report

    service.runner.step = counted
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        with passes:  # the start pass: the sole replica leads, nothing is pending
            assert passes.wait_for(lambda: service.controller.last_report is not None, BOUND)
        for i in range(3):  # a burst of pods: one batch
            twin.add_pod(pod(f"web-{i}", 1000, GiB, tolerations=(SPOT_TOLERATION,)))
        with passes:
            assert passes.wait_for(lambda: bool(puts(arm_twin)), BOUND)
        assert puts(arm_twin) == ["spot1"]
        assert service.server is not None
        base = f"http://127.0.0.1:{service.server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        assert 'surge_scale_operations_total{pool="spot1",result="started"} 1' in text
        assert "surge_leader 1" in text and "surge_cache_synced 1" in text
        assert 'surge_loop_passes_total{trigger="batch",outcome="acted"} 1' in text
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:
            assert answer.read() == b"leader\n"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
            assert answer.status == 200
    finally:
        service.stop()
        thread.join(BOUND)
        service.close()
    assert not thread.is_alive()
    lease = twin.store.get(BY_ID["coordination.k8s.io/leases"], NAMESPACE, "surge")
    assert lease["spec"].get("holderIdentity") is None
