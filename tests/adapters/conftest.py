"""Fixtures for adapter tests: one ARM twin per test session, a fresh model per test; the
Kubernetes twin, its kubeconfig and started caches (``kube_support``) for every test here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.twin import ArmTwin
from tests.adapters.kube_support import (  # noqa: F401  (fixtures, registered by the import)
    kubeconfig_fixture,
    make_cache_fixture,
    twin_fixture,
)
from tests.adapters.support import fresh_model


@pytest.fixture(scope="session")
def running_arm_twin() -> Iterator[ArmTwin]:
    with ArmTwin() as arm_twin:
        yield arm_twin


@pytest.fixture
def arm_twin(running_arm_twin: ArmTwin) -> ArmTwin:
    running_arm_twin.model = fresh_model()
    running_arm_twin.reset_counts()
    return running_arm_twin
