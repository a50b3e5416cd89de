"""Leader election over the real ``kubernetes`` client against the Kubernetes twin's Leases, on a
hand-moved clock: one leader of two, takeover only after the lease duration, a leader that
cannot renew stops within the renew deadline, 409 on a stale resourceVersion, release."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.kube.client import api_client
from autoscaler.kube.lease import KubeLeaseApi, LeaderElector, LeaseConfig
from simulator.twin.kube import KubeTwin
from simulator.twin.kube_store import BY_ID
from tests.adapters.kube_support import (
    FakeClock,
)

LEASES = BY_ID["coordination.k8s.io/leases"]


def elector(kubeconfig: str, name: str, clock: FakeClock, api: Any = None) -> LeaderElector:
    return LeaderElector(api or KubeLeaseApi(api_client(kubeconfig)),
                         LeaseConfig(identity=name), clock=clock)


def lease(twin: KubeTwin) -> dict[str, Any]:
    spec: dict[str, Any] = twin.store.get(LEASES, "kube-system", "surge")["spec"]
    return spec


def test_of_two_replicas_one_leads_and_the_other_stands_by(
    twin: KubeTwin, kubeconfig: str
) -> None:
    clock = FakeClock()
    a, b = elector(kubeconfig, "a", clock), elector(kubeconfig, "b", clock)
    assert a.step() and not b.step()
    clock.now += 2
    assert a.step() and not b.step()  # renewed: same term
    assert (a.is_leader(), b.is_leader(), a.term, b.holder) == (True, False, 1, "a")
    assert (lease(twin)["holderIdentity"], lease(twin)["leaseTransitions"]) == ("a", 0)
    assert b.knows_leader()


def test_a_standby_takes_over_only_once_the_lease_went_unrenewed_for_its_duration(
    twin: KubeTwin, kubeconfig: str
) -> None:
    clock = FakeClock()
    a, b = elector(kubeconfig, "a", clock), elector(kubeconfig, "b", clock)
    a.step()
    b.step()  # b sees a's record now, and times it from here
    clock.now += 14.9
    assert not b.step()
    clock.now += 0.2
    assert b.step()
    assert (lease(twin)["holderIdentity"], lease(twin)["leaseTransitions"]) == ("b", 1)
    assert not a.is_leader()
    assert not a.step() and a.holder == "b"


@pytest.mark.parametrize("status", [500, 429, 503])
def test_a_leader_that_cannot_renew_stops_leading_within_the_renew_deadline(
    twin: KubeTwin, kubeconfig: str, status: int
) -> None:
    clock = FakeClock()
    a = elector(kubeconfig, "a", clock)
    assert a.step()
    twin.fail_next(100, status, retry_after=1 if status != 500 else None, match="/leases")
    for _ in range(4):  # renewals every 2 s, all failing
        clock.now += 2.0
        a.step()
    clock.now += 1.9  # 9.9 s after the last renewal
    assert a.is_leader()
    clock.now += 0.1
    assert not a.is_leader()
    assert a.errors >= 4


class RacingApi(KubeLeaseApi):
    """Lets another replica win the race between this replica's read and its write."""

    def __init__(self, kubeconfig: str) -> None:
        super().__init__(api_client(kubeconfig))
        self.rival: LeaderElector | None = None

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = super().get(namespace, name)
        rival, self.rival = self.rival, None
        if rival is not None:
            assert rival.step()
        return found


def test_a_write_with_a_stale_resource_version_loses_the_round(
    twin: KubeTwin, kubeconfig: str
) -> None:
    clock = FakeClock()
    old = elector(kubeconfig, "old", clock)
    old.step()
    racing = RacingApi(kubeconfig)
    a, b = elector(kubeconfig, "a", clock), elector(kubeconfig, "b", clock, racing)
    a.step(), b.step()
    clock.now += 16  # "old" is gone; a and b both see the lease expired
    racing.rival = a
    assert not b.step()  # a wrote between b's read and b's write: 409
    assert a.is_leader() and not b.is_leader()
    assert lease(twin)["holderIdentity"] == "a"
    assert b.errors == 0  # a lost race is not an API error


def test_a_released_lease_is_taken_over_at_once(twin: KubeTwin, kubeconfig: str) -> None:
    clock = FakeClock()
    a, b = elector(kubeconfig, "a", clock), elector(kubeconfig, "b", clock)
    a.step(), b.step()
    assert a.release()
    assert not a.is_leader()
    assert b.step()
    assert lease(twin)["holderIdentity"] == "b"
