"""The ``scaleDown`` section reads the same in ``surge run`` and in ``surge simulate --config``:
one file, given to the controller's config reader and to the simulator's settings reader, is
accepted by both with the same values or refused by both with the same path and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.control.config import load_config
from autoscaler.control.scaledown import ScaleDownConfig
from autoscaler.model.errors import ValidationError
from simulator.loader import apply_autoscaler_file
from simulator.scenario import Scenario
from simulator.workloads import default_scenario
from tests.builders import controller_env

# The controller takes its required keys from the environment, so that the very same file (a
# top-level ``scaleDown`` section, nothing else) is valid for both readers.
CONTROLLER_ENV = controller_env()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return default_scenario()


def write(tmp_path: Path, key: str, value: str) -> str:
    path = tmp_path / "settings.yaml"
    path.write_text(f"scaleDown:\n  {key}: {value}\n")
    return str(path)


def controller_reads(file: str) -> ScaleDownConfig:
    return load_config(file, CONTROLLER_ENV).loop.scale_down


def simulator_reads(file: str, scenario: Scenario) -> ScaleDownConfig:
    return apply_autoscaler_file(scenario, file).loop.scale_down


@pytest.mark.parametrize(
    ("key", "value", "attribute", "expected"),
    [
        ("unneededTime", "0", "unneeded_time", 0.0),
        ("unneededTime", "'0s'", "unneeded_time", 0.0),
        ("unneededTime", "1d", "unneeded_time", 86400.0),
        ("delayAfterScaleUp", "0", "delay_after_scale_up", 0.0),
        ("delayAfterScaleUp", "0s", "delay_after_scale_up", 0.0),
        ("delayAfterFailure", "0ms", "delay_after_failure", 0.0),
        ("delayAfterFailure", "1h30m", "delay_after_failure", 5400.0),
        ("maxGracefulTermination", "0", "max_grace_seconds", 0),
        ("maxGracefulTermination", "90s", "max_grace_seconds", 90),
        ("drainTimeout", "500ms", "drain_timeout", 0.5),
        ("maxDisruption", "' 10% '", "max_disrupted_fraction", 0.1),
        ("maxDisruption", "100%", "max_disrupted_fraction", 1.0),
        ("maxDisruption", "0.5%", "max_disrupted_fraction", 0.005),
        ("utilizationThreshold", "0", "utilisation_threshold", 0.0),
        ("utilizationThreshold", "1", "utilisation_threshold", 1.0),
        ("enabled", "false", "enabled", False),
    ],
)
def test_the_controller_and_the_simulator_accept_the_same_scale_down_values(
    tmp_path: Path, scenario: Scenario, key: str, value: str, attribute: str, expected: object
) -> None:
    file = write(tmp_path, key, value)
    controller = controller_reads(file)
    simulator = simulator_reads(file, scenario)
    assert controller == simulator
    read = getattr(controller, attribute)
    assert (read.total_seconds() if hasattr(read, "total_seconds") else read) == expected


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("drainTimeout", "0", "must be a finite duration greater than zero, got 0"),
        ("drainTimeout", "'0s'", "must be a finite duration greater than zero, got '0s'"),
        ("drainTimeout", "-5", "greater than zero"),
        ("unneededTime", "'-1s'", "malformed duration '-1s'"),
        ("unneededTime", "-1", "must be a non-negative finite duration, got -1"),
        ("unneededTime", "10 minutes", "malformed duration"),
        ("delayAfterScaleUp", "-1", "non-negative"),
        ("delayAfterFailure", ".inf", "non-negative"),
        ("maxGracefulTermination", "-1s", "malformed duration"),
        ("maxGracefulTermination", "true", "expected a duration"),
        ("maxDisruption", "0%", "expected a percentage like '10%' in (0%, 100%], got '0%'"),
        ("maxDisruption", "' 0% '", "got '0%'"),
        ("maxDisruption", "150%", "expected a percentage"),
        ("maxDisruption", "10", "expected a string"),
        ("maxDisruption", "10 %", "expected a percentage"),
        ("utilizationThreshold", "1.5", "out of range [0, 1]"),
        ("utilizationThreshold", "-0.1", "out of range [0, 1]"),
        ("utilizationThreshold", "'0.5'", "expected a number"),
        ("enabled", "'yes'", "expected a boolean"),
        ("unneeded", "5m", "unknown field"),
    ],
)
def test_the_controller_and_the_simulator_refuse_the_same_scale_down_values_naming_the_field(
    tmp_path: Path, scenario: Scenario, key: str, value: str, reason: str
) -> None:
    file = write(tmp_path, key, value)
    with pytest.raises(ValidationError) as controller:
        controller_reads(file)
    with pytest.raises(ValidationError) as simulator:
        simulator_reads(file, scenario)
    assert controller.value.path == simulator.value.path == f"$.scaleDown.{key}"
    assert reason in controller.value.reason
    assert controller.value.reason == simulator.value.reason  # same words, same file and line
    assert controller.value.reason.endswith(f"({file}, line 2)")


def test_a_scale_down_section_absent_or_empty_keeps_cluster_autoscalers_defaults_in_both(
    tmp_path: Path, scenario: Scenario
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("scaleDown: {}\n")
    assert controller_reads(str(path)) == simulator_reads(str(path), scenario) == ScaleDownConfig()
    path.write_text("dryRun: false\n")
    assert controller_reads(str(path)) == simulator_reads(str(path), scenario) == ScaleDownConfig()
