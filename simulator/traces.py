"""Real workload traces: the Alibaba GPU cluster pod list ("openb") and the Azure LLM inference
request trace, read into what the simulator replays.

Callers: ``simulator.loader`` (the ``traces`` section of a scenario, and ``surge simulate
--trace FILE`` through ``trace_scenario``); tests. Both loaders are strict: a bad header or row
raises ``ValidationError`` whose path is ``file:line`` and whose reason names the column.

openb (``openb_pod_list_*.csv``; columns name, cpu_milli, memory_mib, num_gpu, gpu_milli,
gpu_spec, qos, pod_phase, creation_time, deletion_time, scheduled_time): every row is one pod,
submitted at ``creation_time`` and deleted at ``deletion_time``, both re-based to the first
creation kept and divided by the compression factor. A pod that shares a GPU
(``gpu_milli`` < 1000) asks for one whole ``nvidia.com/gpu``: AKS advertises whole devices.
``qos``, ``pod_phase`` and ``scheduled_time`` describe what happened in Alibaba's cluster and
are not replayed (the simulator decides when a pod is scheduled).

Azure LLM (``AzureLLMInferenceTrace_*.csv``; TIMESTAMP with 7 fractional digits,
ContextTokens, GeneratedTokens; CRLF, no final newline) is a request trace, turned into a
replica curve by the serving model of ``serving_replicas`` (documented there and in
docs/scenarios.md): that conversion is a change to the data in the sense of its CC BY 4.0
licence, so the report and the docs state it.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from autoscaler.model.errors import ValidationError
from autoscaler.model.labels import Labels, Operator, Requirement
from autoscaler.model.pod import NodeSelectorTerm, Toleration
from simulator.curves import Table
from simulator.scenario import PodTemplate, TracePod, TraceReplay

MIB = 2**20
OPENB_REQUIRED = ("name", "cpu_milli", "memory_mib", "num_gpu", "creation_time", "deletion_time")
OPENB_OPTIONAL = ("gpu_milli", "gpu_spec", "qos", "pod_phase", "scheduled_time")
AZURE_LLM_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_TIMESTAMP = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?"
)


# --- CSV plumbing -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    file: str
    line: int
    cells: dict[str, str]

    def fail(self, column: str, reason: str) -> ValidationError:
        return ValidationError(f"{self.file}:{self.line}", f"column {column}: {reason}")

    def count(self, column: str) -> int:
        text = self.cells[column].strip()
        if not text.isdigit():
            raise self.fail(column, f"expected an integer >= 0, got {text!r}")
        return int(text)

    def seconds(self, column: str) -> float:
        text = self.cells[column].strip()
        try:
            value = float(text)
        except ValueError:
            raise self.fail(column, f"expected a number of seconds, got {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise self.fail(column, f"must be a finite number >= 0, got {text!r}")
        return value


def _rows(path: Path, required: Sequence[str], optional: Sequence[str]) -> Iterator[_Row]:
    """The data rows of a CSV with a header line; CRLF or LF, final newline or not."""
    file = str(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise ValidationError(file, f"cannot read: {err}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [cell.strip() for cell in next(reader, [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise ValidationError(f"{file}:1", f"missing column {missing[0]} in the header")
            for column in header:
                if column not in required and column not in optional:
                    raise ValidationError(f"{file}:1", f"column {column}: unknown column")
                if header.count(column) > 1:
                    raise ValidationError(f"{file}:1", f"column {column}: appears twice")
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    reason = f"expected {len(header)} columns, got {len(row)}"
                    raise ValidationError(f"{file}:{reader.line_num}", reason)
                yield _Row(file, reader.line_num, dict(zip(header, row, strict=True)))
        except (csv.Error, UnicodeDecodeError) as err:
            raise ValidationError(f"{file}:{reader.line_num}", f"unreadable CSV: {err}") from None


def trace_kind(path: str | Path) -> str:
    """``"openb"`` or ``"azure-llm"``, from the header line of a trace file."""
    file = Path(path)
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            header = {cell.strip() for cell in next(csv.reader(handle), [])}
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValidationError(str(path), f"cannot read: {err}") from None
    if set(OPENB_REQUIRED) <= header:
        return "openb"
    if set(AZURE_LLM_COLUMNS) <= header:
        return "azure-llm"
    reason = "not a known trace: expected an openb pod list or an Azure LLM inference trace header"
    raise ValidationError(f"{path}:1", reason)


# --- openb ------------------------------------------------------------------------------------


def load_openb(
    path: str | Path,
    compression: float = 1.0,
    *,
    name: str = "openb",
    namespace: str = "openb",
    offset: float = 0.0,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
    tolerate_spot: bool = False,
    node_selector: Labels = (),
    tolerations: tuple[Toleration, ...] = (),
    gpu_spec_label: str | None = None,
) -> TraceReplay:
    """The pods of an openb pod list, as a replay of workload ``name``.

    Pods created before ``since`` or at/after ``until`` (trace seconds) are skipped, and only
    the first ``limit`` kept rows are read. Times are re-based to the first kept creation,
    divided by ``compression`` (> 0; 60 turns an hour of trace into a minute) and shifted by
    ``offset`` seconds of simulated time. With ``gpu_spec_label``, a pod whose ``gpu_spec``
    lists GPU models requires a node whose label ``gpu_spec_label`` is one of them.
    """
    if not (math.isfinite(compression) and compression > 0):
        raise ValueError(f"compression must be a positive number, got {compression}")
    file = Path(path)
    templates: dict[tuple[int, int, int, str], PodTemplate] = {}
    kept: list[tuple[str, float, float, PodTemplate]] = []
    seen: dict[str, int] = {}
    for row in _rows(file, OPENB_REQUIRED, OPENB_OPTIONAL):
        pod_name = row.cells["name"].strip()
        if not pod_name:
            raise row.fail("name", "must not be empty")
        if pod_name in seen:
            raise row.fail("name", f"duplicate pod {pod_name!r} (first on line {seen[pod_name]})")
        seen[pod_name] = row.line
        created, deleted = row.seconds("creation_time"), row.seconds("deletion_time")
        if deleted < created:
            raise row.fail("deletion_time", f"{deleted:g} is before creation_time {created:g}")
        shape = _openb_shape(row)
        if (since is not None and created < since) or (until is not None and created >= until):
            continue
        if limit is not None and len(kept) >= limit:
            break
        template = templates.get(shape)
        if template is None:
            cpu_m, memory, gpus, spec = shape
            affinity: tuple[NodeSelectorTerm, ...] = ()
            if gpu_spec_label and spec:
                models = tuple(dict.fromkeys(m for m in spec.split("|") if m))
                affinity = (
                    NodeSelectorTerm((Requirement(gpu_spec_label, Operator.IN, models),)),
                )
            template = PodTemplate(
                cpu_m,
                memory,
                gpus,
                tolerate_spot=tolerate_spot,
                node_selector=node_selector,
                tolerations=tolerations,
                labels=(("app", name),),
                required_affinity=affinity,
            )
            templates[shape] = template
        kept.append((pod_name, created, deleted, template))
    base = min((created for _, created, _, _ in kept), default=0.0)
    pods = [
        TracePod(
            pod_name,
            offset + (created - base) / compression,
            offset + (deleted - base) / compression,
            template,
        )
        for pod_name, created, deleted, template in kept
    ]
    pods.sort(key=lambda p: (p.submit_at, p.name))
    return TraceReplay(name, namespace, tuple(pods))


def _openb_shape(row: _Row) -> tuple[int, int, int, str]:
    cpu_m = row.count("cpu_milli")
    memory = row.count("memory_mib") * MIB
    gpus = row.count("num_gpu")
    if "gpu_milli" in row.cells:
        share = row.count("gpu_milli")
        if share > 1000:
            raise row.fail("gpu_milli", f"a GPU share is at most 1000, got {share}")
    if row.cells.get("scheduled_time", "").strip():
        row.seconds("scheduled_time")
    spec = row.cells.get("gpu_spec", "").strip()
    if spec and not all(part.strip() for part in spec.split("|")):
        raise row.fail("gpu_spec", f"empty model name in {spec!r}")
    return cpu_m, memory, gpus, spec


# --- Azure LLM inference ------------------------------------------------------------------------


def read_azure_llm(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Request arrival times (seconds since the first request, sorted; float64) and tokens per
    request (ContextTokens + GeneratedTokens; int64)."""
    file = Path(path)
    instants: list[float] = []
    tokens: list[int] = []
    first: datetime | None = None
    for row in _rows(file, AZURE_LLM_COLUMNS, ()):
        text = row.cells["TIMESTAMP"].strip()
        match = _TIMESTAMP.fullmatch(text)
        if match is None:
            reason = f"expected 'YYYY-MM-DD HH:MM:SS.fffffff', got {text!r}"
            raise row.fail("TIMESTAMP", reason)
        try:
            whole = datetime.fromisoformat(f"{match[1]}T{match[2]}")
        except ValueError as err:
            raise row.fail("TIMESTAMP", f"invalid time {text!r}: {err}") from None
        fraction = int(match[3]) / 10 ** len(match[3]) if match[3] else 0.0
        first = first or whole
        instants.append((whole - first).total_seconds() + fraction)
        tokens.append(row.count("ContextTokens") + row.count("GeneratedTokens"))
    if not instants:
        raise ValidationError(f"{file}:2", "the trace has no requests")
    times = np.asarray(instants, dtype=np.float64)
    order = np.argsort(times, kind="stable")
    times = times[order] - times[order][0]
    return times, np.asarray(tokens, dtype=np.int64)[order]


def serving_replicas(
    times: np.ndarray,
    tokens: np.ndarray,
    tokens_per_s_per_replica: float,
    target_utilisation: float = 0.7,
    reaction_delay_s: float = 60.0,
    window_s: float = 60.0,
    *,
    min_replicas: int = 1,
    max_replicas: int | None = None,
    step_s: float = 15.0,
    stabilisation_s: float = 300.0,
) -> Table:
    """Replicas of an LLM serving deployment over time, from its request arrivals.

    The serving model, step by step (an HPA on a token-throughput metric):

    1. A request costs its prompt plus generated tokens, counted when it arrives.
    2. Every ``step_s`` seconds (the HPA sync period) the observed load is the tokens that
       arrived in the last ``window_s`` seconds divided by ``window_s`` (tokens/s).
    3. Desired replicas = ceil(load / (``tokens_per_s_per_replica`` x ``target_utilisation``)),
       clamped to [``min_replicas``, ``max_replicas``].
    4. Scale-down is stabilised as the HPA does by default: the recommendation is the highest
       desired count of the last ``stabilisation_s`` seconds (scale-up is immediate).
    5. The deployment changes ``reaction_delay_s`` after the load was observed (metrics
       pipeline lag); before the first change it runs ``min_replicas``.

    The table runs until the load has been zero for a full window and stabilisation period,
    so it ends at ``min_replicas``.
    """
    if tokens_per_s_per_replica <= 0 or not 0 < target_utilisation <= 1:
        raise ValueError("need tokens_per_s_per_replica > 0 and 0 < target_utilisation <= 1")
    if step_s <= 0 or window_s <= 0 or reaction_delay_s < 0 or stabilisation_s < 0:
        raise ValueError("need step_s > 0, window_s > 0, reaction_delay_s and stabilisation >= 0")
    last = float(times[-1]) if len(times) else 0.0
    n_steps = math.ceil((last + window_s + stabilisation_s) / step_s) + 1
    grid = np.arange(n_steps + 1, dtype=np.float64) * step_s
    cumulative = np.concatenate(([0], np.cumsum(tokens, dtype=np.int64)))
    upto = np.searchsorted(times, grid, side="right")
    before = np.searchsorted(times, grid - window_s, side="right")
    load = (cumulative[upto] - cumulative[before]) / window_s
    desired = np.ceil(load / (tokens_per_s_per_replica * target_utilisation) - 1e-9)
    desired = np.maximum(desired.astype(np.int64), min_replicas)
    if max_replicas is not None:
        desired = np.minimum(desired, max_replicas)
    width = max(1, math.ceil(stabilisation_s / step_s))
    padded = np.concatenate((np.full(width - 1, min_replicas, dtype=np.int64), desired))
    stable = np.lib.stride_tricks.sliding_window_view(padded, width).max(axis=1)
    times_out: list[float] = [0.0]
    values_out: list[int] = [min_replicas]
    for at, value in zip(grid + reaction_delay_s, stable.tolist(), strict=True):
        if value == values_out[-1]:
            continue
        if at == times_out[-1]:
            values_out[-1] = value
        else:
            times_out.append(float(at))
            values_out.append(int(value))
    return Table(tuple(times_out), tuple(values_out))


def load_azure_llm(
    path: str | Path,
    tokens_per_s_per_replica: float,
    target_utilisation: float = 0.7,
    reaction_delay_s: float = 60.0,
    window_s: float = 60.0,
    *,
    min_replicas: int = 1,
    max_replicas: int | None = None,
    step_s: float = 15.0,
    stabilisation_s: float = 300.0,
) -> Table:
    """The replica curve of an Azure LLM inference trace under ``serving_replicas``' model,
    time 0 being the first request."""
    times, tokens = read_azure_llm(path)
    return serving_replicas(
        times,
        tokens,
        tokens_per_s_per_replica,
        target_utilisation,
        reaction_delay_s,
        window_s,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        step_s=step_s,
        stabilisation_s=stabilisation_s,
    )
