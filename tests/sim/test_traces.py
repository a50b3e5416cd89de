"""Trace loaders: the openb pod list and the Azure LLM inference trace with its serving model.

Small fixtures in tests/fixtures are written in the real formats (the Azure one with CRLF and no
final newline). The real files in ../shared/traces (or $SURGE_TRACES_DIR) are used when present.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import Operator, Requirement
from autoscaler.model.pod import NodeSelectorTerm
from simulator.curves import Table
from simulator.traces import (
    load_azure_llm,
    load_openb,
    read_azure_llm,
    serving_replicas,
    trace_kind,
)
from tests.builders import MiB

FIXTURES = Path(__file__).parent.parent / "fixtures"
OPENB = FIXTURES / "openb_pod_list_small.csv"
AZURE = FIXTURES / "AzureLLMInferenceTrace_small.csv"
SHARED = Path(os.environ.get("SURGE_TRACES_DIR", Path(__file__).parents[3] / "shared" / "traces"))
REAL_OPENB = SHARED / "alibaba-openb-gpu-v2023" / "openb_pod_list_default.csv"
REAL_GPUSPEC = SHARED / "alibaba-openb-gpu-v2023" / "openb_pod_list_gpuspec33.csv"
REAL_AZURE = SHARED / "azure-llm-inference-2023-code" / "AzureLLMInferenceTrace_code.csv"
OPENB_HEADER = ("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
                "creation_time,deletion_time,scheduled_time")
GOOD_OPENB_ROW = "p-1,1000,512,1,1000,,LS,Running,10,20,11"


# --- openb --------------------------------------------------------------------------------------


def test_openb_pods_are_rebased_compressed_and_carry_their_requests() -> None:
    replay = load_openb(OPENB, 10.0)
    pods = {p.name: p for p in replay.pods}
    assert (replay.name, replay.namespace, len(pods)) == ("openb", "openb", 8)
    one = pods["openb-pod-0001"]
    assert (one.submit_at, one.finish_at) == (120.0, 174.0)
    assert (one.template.cpu_m, one.template.memory, one.template.gpu) == (4000, 15258 * MiB, 0)
    assert pods["openb-pod-0002"].template.gpu == 1  # a 460 milli-GPU share: one whole GPU
    assert pods["openb-pod-0003"].template.gpu == 8
    assert pods["openb-pod-0006"].submit_at == pods["openb-pod-0006"].finish_at
    assert pods["openb-pod-0006"].template.memory == 0
    assert pods["openb-pod-0000"].finish_at == 1253749.6


def test_openb_pods_are_sorted_by_submit_time_then_name() -> None:
    replay = load_openb(OPENB)
    keys = [(p.submit_at, p.name) for p in replay.pods]
    assert keys == sorted(keys)
    assert replay.end == 12537496.0


def test_openb_window_limit_and_offset_select_and_shift_pods() -> None:
    replay = load_openb(OPENB, 2.0, since=1000, until=7200, limit=4, offset=50.0)
    assert [p.name for p in replay.pods] == [
        "openb-pod-0001", "openb-pod-0002", "openb-pod-0003", "openb-pod-0004"]
    assert [p.submit_at for p in replay.pods] == [50.0, 50.0, 1250.0, 1275.0]
    assert replay.pods[0].finish_at == 50.0 + (1740 - 1200) / 2


def test_identical_openb_shapes_share_one_template() -> None:
    replay = load_openb(OPENB)
    templates = {id(p.template) for p in replay.pods}
    shapes = {(p.template.cpu_m, p.template.memory, p.template.gpu) for p in replay.pods}
    assert len(templates) == len(shapes)  # one template per distinct shape
    assert all(p.template.labels == (("app", "openb"),) for p in replay.pods)


def test_a_gpu_spec_becomes_required_node_affinity_only_when_a_label_is_given() -> None:
    plain = {p.name: p for p in load_openb(OPENB).pods}
    assert plain["openb-pod-0005"].template.required_affinity == ()
    labelled = {p.name: p for p in load_openb(OPENB, gpu_spec_label="gpu-model").pods}
    assert labelled["openb-pod-0005"].template.required_affinity == (
        NodeSelectorTerm((Requirement("gpu-model", Operator.IN, ("V100M16", "V100M32")),)),)
    assert labelled["openb-pod-0001"].template.required_affinity == ()


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("p-2,abc,512,1,1000,,LS,Running,10,20,11", "cpu_milli"),
        ("p-2,1000,-5,1,1000,,LS,Running,10,20,11", "memory_mib"),
        ("p-2,1000,512,1.5,1000,,LS,Running,10,20,11", "num_gpu"),
        ("p-2,1000,512,1,1500,,LS,Running,10,20,11", "gpu_milli"),
        ("p-2,1000,512,1,1000,A||B,LS,Running,10,20,11", "gpu_spec"),
        ("p-2,1000,512,1,1000,,LS,Running,x,20,11", "creation_time"),
        ("p-2,1000,512,1,1000,,LS,Running,10,5,11", "deletion_time"),
        ("p-2,1000,512,1,1000,,LS,Running,10,inf,11", "deletion_time"),
        ("p-2,1000,512,1,1000,,LS,Running,10,20,soon", "scheduled_time"),
        (",1000,512,1,1000,,LS,Running,10,20,11", "name"),
        (GOOD_OPENB_ROW, "name"),  # the same name twice
    ],
)
def test_a_bad_openb_row_names_the_file_line_and_column(
    tmp_path: Path, row: str, column: str
) -> None:
    path = tmp_path / "openb.csv"
    path.write_text(f"{OPENB_HEADER}\n{GOOD_OPENB_ROW.replace('p-1', 'p-0')}\n{GOOD_OPENB_ROW}\n"
                    f"{row}\n")
    with pytest.raises(ValidationError) as caught:
        load_openb(path)
    assert caught.value.path == f"{path}:4"
    assert caught.value.reason.startswith(f"column {column}:")


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("name,cpu_milli\np,1\n", ":1", "missing column memory_mib"),
        (OPENB_HEADER + ",colour\n", ":1", "column colour: unknown"),
        (OPENB_HEADER + ",qos\n", ":1", "column qos: appears twice"),
        (f"{OPENB_HEADER}\np-1,1000,512\n", ":2", "expected 11 columns, got 3"),
    ],
)
def test_a_bad_openb_header_or_row_shape_names_the_line(
    tmp_path: Path, text: str, where: str, reason: str
) -> None:
    path = tmp_path / "openb.csv"
    path.write_text(text)
    with pytest.raises(ValidationError) as caught:
        load_openb(path)
    assert caught.value.path == f"{path}{where}"
    assert reason in caught.value.reason


# --- Azure LLM ----------------------------------------------------------------------------------


def test_the_azure_fixture_keeps_the_real_files_crlf_and_missing_final_newline() -> None:
    data = AZURE.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") > 0
    assert not data.endswith(b"\n")


def test_azure_requests_are_read_with_seven_digit_fractions_and_summed_tokens() -> None:
    times, tokens = read_azure_llm(AZURE)
    assert times[0] == 0.0 and len(times) == len(tokens) == 12
    assert times[1] == pytest.approx(0.052, abs=1e-9)
    assert times[5] - times[4] == pytest.approx(1e-7, abs=1e-9)
    assert times[-1] == pytest.approx(180.0, abs=1e-9)
    assert tokens[:3].tolist() == [4818, 3188, 137]
    assert np.all(np.diff(times) >= 0)


def test_crlf_and_lf_files_read_the_same(tmp_path: Path) -> None:
    lf = tmp_path / "lf.csv"
    lf.write_bytes(AZURE.read_bytes().replace(b"\r\n", b"\n") + b"\n")
    for got, want in zip(read_azure_llm(lf), read_azure_llm(AZURE), strict=True):
        assert got.tolist() == want.tolist()


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("2023/11/16 18:17:05.0000000,10,10", "TIMESTAMP"),
        ("2023-13-16 18:17:05.0000000,10,10", "TIMESTAMP"),
        ("2023-11-16 18:17:05.00000001234,10,10", "TIMESTAMP"),
        ("2023-11-16 18:17:05.0000000,-1,10", "ContextTokens"),
        ("2023-11-16 18:17:05.0000000,10,", "GeneratedTokens"),
    ],
)
def test_a_bad_azure_row_names_the_file_line_and_column(
    tmp_path: Path, row: str, column: str
) -> None:
    path = tmp_path / "azure.csv"
    path.write_bytes(
        f"TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:04.0000000,1,1\r\n{row}"
        .encode())
    with pytest.raises(ValidationError) as caught:
        read_azure_llm(path)
    assert caught.value.path == f"{path}:3"
    assert caught.value.reason.startswith(f"column {column}:")


def test_an_azure_trace_without_requests_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_bytes(b"TIMESTAMP,ContextTokens,GeneratedTokens")
    with pytest.raises(ValidationError, match="no requests"):
        read_azure_llm(path)


# --- the serving model --------------------------------------------------------------------------

TIMES = np.array([0.0, 0.0, 30.0])
TOKENS = np.array([600, 600, 1200])


@pytest.mark.parametrize(
    ("options", "table"),
    [
        ({}, Table((0.0, 30.0, 60.0, 90.0), (2, 4, 2, 1))),
        ({"reaction_delay_s": 60.0}, Table((0.0, 60.0, 90.0, 120.0, 150.0), (1, 2, 4, 2, 1))),
        ({"stabilisation_s": 30.0}, Table((0.0, 30.0, 75.0, 105.0), (2, 4, 2, 1))),
        ({"max_replicas": 3}, Table((0.0, 30.0, 60.0, 90.0), (2, 3, 2, 1))),
        ({"min_replicas": 3}, Table((0.0, 30.0, 60.0), (3, 4, 3))),
        ({"target_utilisation": 0.5}, Table((0.0, 30.0, 60.0, 90.0), (4, 8, 4, 1))),
    ],
)
def test_the_serving_model_turns_token_rates_into_replicas(
    options: dict[str, float], table: Table
) -> None:
    settings: dict[str, float] = {
        "target_utilisation": 1.0, "reaction_delay_s": 0.0, "window_s": 60.0,
        "stabilisation_s": 0.0, **options}
    got = serving_replicas(
        TIMES, TOKENS, 10.0, settings.pop("target_utilisation"), settings.pop("reaction_delay_s"),
        settings.pop("window_s"), step_s=15.0, **settings)  # type: ignore[arg-type]
    assert got == table


def test_the_azure_fixtures_replicas_return_to_the_minimum_after_the_trace() -> None:
    table = load_azure_llm(AZURE, 100.0, min_replicas=2)
    assert table.values[0] == 2 and table.values[-1] == 2
    assert max(table.values) > 2
    assert list(table.times) == sorted(set(table.times))


@pytest.mark.parametrize(
    ("path", "kind"), [(OPENB, "openb"), (AZURE, "azure-llm")]
)
def test_a_trace_files_kind_is_recognised_from_its_header(path: Path, kind: str) -> None:
    assert trace_kind(path) == kind


def test_a_file_that_is_no_known_trace_is_refused_at_line_one(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("time,replicas\n0,1\n")
    with pytest.raises(ValidationError) as caught:
        trace_kind(path)
    assert caught.value.path == f"{path}:1"


# --- the real files (skipped when ../shared/traces is absent) -----------------------------------


@pytest.mark.skipif(not REAL_OPENB.is_file(), reason="shared openb trace not present")
def test_the_real_openb_default_trace_loads_every_pod() -> None:
    replay = load_openb(REAL_OPENB, 60.0)
    assert len(replay.pods) == 8152
    assert sum(p.template.gpu == 0 for p in replay.pods) == 1088
    assert max(p.template.gpu for p in replay.pods) == 8
    assert replay.pods[0].submit_at == 0.0
    assert max(p.submit_at for p in replay.pods) == pytest.approx(12901761 / 60)


@pytest.mark.skipif(not REAL_GPUSPEC.is_file(), reason="shared openb trace not present")
def test_the_real_gpuspec_trace_constrains_a_third_of_gpu_pods_with_a_label() -> None:
    replay = load_openb(REAL_GPUSPEC, gpu_spec_label="gpu-model")
    assert sum(bool(p.template.required_affinity) for p in replay.pods) == 2388


@pytest.mark.skipif(not REAL_AZURE.is_file(), reason="shared Azure LLM trace not present")
def test_the_real_azure_llm_trace_gives_a_replica_curve_over_its_hour() -> None:
    times, tokens = read_azure_llm(REAL_AZURE)
    assert len(times) == len(tokens) == 8819
    assert times[-1] == pytest.approx(3435.95, abs=0.01)
    table = load_azure_llm(REAL_AZURE, 2000.0)
    assert 1 < max(table.values) < 200
    assert table.values[-1] == 1
