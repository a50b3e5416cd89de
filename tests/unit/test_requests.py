"""Effective pod requests and the resource-fit check of autoscaler.model.constraints."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.model.constraints import effective_requests, insufficient
from autoscaler.model.pod import Container
from autoscaler.model.resources import Resources
from tests.builders import GiB, MiB, pod, res


def _c(cpu_m: int = 0, mem: int = 0, *, sidecar: bool = False, **extra: int) -> Container:
    return Container("c", res(cpu_m, mem, **extra), sidecar=sidecar)


def _with_pods(requests: Resources) -> Resources:
    return requests + res(pods=1)


@pytest.mark.parametrize(
    ("containers", "init_containers", "overhead", "expected"),
    [
        pytest.param((), (), Resources(), res(), id="no-containers-still-one-pod"),
        pytest.param((_c(100, MiB),), (), Resources(), res(100, MiB), id="one-container"),
        pytest.param(
            (_c(100, MiB), _c(250, 3 * MiB), _c(gpu=1)),
            (),
            Resources(),
            res(350, 4 * MiB, gpu=1),
            id="containers-are-summed-per-resource",
        ),
        pytest.param(
            (_c(100, MiB),),
            (_c(500, 0), _c(0, 2 * MiB)),
            Resources(),
            res(500, 2 * MiB),
            id="init-containers-take-the-max-per-resource",
        ),
        pytest.param(
            (_c(800, 4 * MiB),),
            (_c(500, 2 * MiB), _c(700, MiB)),
            Resources(),
            res(800, 4 * MiB),
            id="init-smaller-than-containers",
        ),
        pytest.param(
            (_c(100, MiB),),
            (_c(50, MiB, sidecar=True),),
            Resources(),
            res(150, 2 * MiB),
            id="sidecar-adds-to-steady-state",
        ),
        pytest.param(
            (_c(100, MiB),),
            (_c(50, 0, sidecar=True), _c(500, 0)),
            Resources(),
            res(550, MiB),
            id="init-after-sidecar-runs-beside-it",
        ),
        pytest.param(
            (_c(100, MiB),),
            (_c(500, 0), _c(50, 0, sidecar=True)),
            Resources(),
            res(500, MiB),
            id="init-before-sidecar-runs-alone",
        ),
        pytest.param(
            (_c(100, 0),),
            (_c(10, 0, sidecar=True), _c(300, 0), _c(20, 0, sidecar=True), _c(290, 0)),
            Resources(),
            res(320, 0),
            id="each-init-counts-only-the-sidecars-before-it",
        ),
        pytest.param(
            (_c(1000, GiB),),
            (_c(200, 0, sidecar=True), _c(900, 0)),
            Resources(),
            res(1200, GiB),
            id="steady-state-with-sidecars-wins",
        ),
        pytest.param(
            (_c(100, MiB),),
            (_c(500, 0),),
            res(250, 64 * MiB),
            res(750, 65 * MiB),
            id="overhead-added-after-the-max",
        ),
        pytest.param(
            (_c(100, 0, example_com_fpga=1),),
            (_c(0, 0, example_com_fpga=2),),
            Resources(),
            res(100, 0, example_com_fpga=2),
            id="extended-resources-follow-the-same-rules",
        ),
    ],
)
def test_effective_requests_follow_the_scheduler_formula(
    containers: tuple[Container, ...],
    init_containers: tuple[Container, ...],
    overhead: Resources,
    expected: Resources,
) -> None:
    subject = replace(
        pod(), containers=containers, init_containers=init_containers, overhead=overhead
    )
    assert effective_requests(subject) == _with_pods(expected)


@pytest.mark.parametrize(
    "containers",
    [
        pytest.param((), id="no-containers"),
        pytest.param((_c(100, MiB),), id="ordinary-pod"),
        pytest.param((Container("odd", Resources.of({"pods": 5})),), id="container-asks-pods"),
    ],
)
def test_every_pod_takes_exactly_one_pod_slot(containers: tuple[Container, ...]) -> None:
    assert effective_requests(replace(pod(), containers=containers)).get_units("pods") == 1


def test_the_builder_pod_requests_its_container_plus_a_pod_slot() -> None:
    assert effective_requests(pod(cpu_m=250, mem=512 * MiB)) == res(250, 512 * MiB, pods=1)


# --- resources --------------------------------------------------------------------------------

FREE = res(63260, 16 * GiB, pods=110, gpu=1, ephemeral_storage=100 * GiB)
FPGA, DONGLE = "example.com/fpga", "acme.io/dongle"


@pytest.mark.parametrize(
    ("requests", "free", "expected"),
    [
        pytest.param(res(1000, GiB, pods=1), FREE, None, id="fits"),
        pytest.param(FREE, FREE, None, id="exactly-equal-fits"),
        pytest.param(res(96000, GiB), FREE, "cpu 96000m > 63260m allocatable", id="cpu"),
        pytest.param(res(1, 32 * GiB), FREE, "memory 32Gi > 16Gi allocatable", id="memory"),
        pytest.param(
            res(1, GiB + 512 * MiB), res(1, GiB), "memory 1536Mi > 1Gi allocatable",
            id="memory-in-mebibytes",
        ),
        pytest.param(res(pods=111), FREE, "pods 111 > 110 allocatable", id="pods"),
        pytest.param(res(gpu=2), FREE, "nvidia.com/gpu 2 > 1 allocatable", id="gpu"),
        pytest.param(
            res(ephemeral_storage=200 * GiB), FREE, "ephemeral-storage 200Gi > 100Gi allocatable",
            id="ephemeral-storage",
        ),
        pytest.param(
            res(gpu=1), res(4000, GiB), "nvidia.com/gpu 1 > 0 allocatable",
            id="axis-missing-from-free-is-zero",
        ),
        pytest.param(
            res(96000, 32 * GiB, pods=200), FREE, "cpu 96000m > 63260m allocatable",
            id="cpu-reported-before-memory-and-pods",
        ),
        pytest.param(
            res(1, 32 * GiB, gpu=2), FREE, "memory 32Gi > 16Gi allocatable",
            id="memory-reported-before-gpu",
        ),
        pytest.param(
            Resources.of({FPGA: 1, DONGLE: 1}), FREE, "acme.io/dongle 1 > 0 allocatable",
            id="extended-resources-by-name",
        ),
        pytest.param(
            Resources.of({FPGA: 2, "nvidia.com/gpu": 2}), Resources.of({FPGA: 1}),
            "nvidia.com/gpu 2 > 0 allocatable", id="gpu-before-extended",
        ),
        pytest.param(Resources(), Resources(), None, id="nothing-requested-fits-nothing-free"),
    ],
)  # fmt: skip
def test_insufficient_names_the_first_axis_that_does_not_fit(
    requests: Resources, free: Resources, expected: str | None
) -> None:
    assert insufficient(requests, free) == expected
