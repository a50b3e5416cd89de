"""The workload driver: turns a scenario's deployments, batches and trace replays into pods
submitted to and deleted from the simulated cluster over simulated time.

Callers: ``simulator.run`` builds one ``WorkloadDriver`` per run and calls ``start`` before
running the engine. This module is also the simulator's entry point for scenarios: it
re-exports ``Scenario``, ``load_scenario`` and ``default_scenario`` (defined in
``simulator.scenario`` and ``simulator.loader``).

Behaviour, as a controller would do it:

* Deployment (a ReplicaSet): every ``sample_every`` seconds from 0, the desired count is
  ``replicas(t)`` (times a Gaussian noise factor when ``noise`` > 0). Missing pods are created;
  extra pods are deleted, pending ones first (newest first), then running ones, newest bound
  first. Pods the cluster re-created after an eviction count as the deployment's own.
* Batch (a Job per wave): the pods of a wave are submitted at its time; each completes
  ``run_seconds`` after it was bound (a re-created pod runs its full time again).
* Trace replay: each pod is submitted at its ``submit_at`` and deleted at its ``finish_at``,
  with any re-created copy of it (bound or pending) deleted at the same time.

Randomness (only the deployment noise) comes from a generator seeded from the scenario's seed
with its own stream, so adding noise does not shift the cloud's draws.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

import numpy as np

from autoscaler.model.pod import Pod
from simulator.engine import POD, Engine
from simulator.loader import default_scenario, load_scenario
from simulator.scenario import (
    Batch,
    Deployment,
    PodTemplate,
    Scenario,
    TracePod,
    TraceReplay,
    Workload,
)

WORKLOAD_STREAM = 1  # SeedSequence spawn key of the workloads' generator

__all__ = [
    "Batch",
    "Deployment",
    "PodTemplate",
    "Scenario",
    "TracePod",
    "TraceReplay",
    "Workload",
    "WorkloadCluster",
    "WorkloadDriver",
    "default_scenario",
    "load_scenario",
]


class WorkloadCluster(Protocol):
    """What the driver needs from the cluster (``simulator.cluster.SimCluster`` provides it)."""

    def submit(self, pod: Pod, workload: str) -> None: ...

    def finish(self, key: str) -> None: ...

    def pending_keys(self, workload: str) -> list[str]: ...

    def running_keys(self, workload: str) -> list[str]: ...

    def on_bind(self, listener: Callable[[Pod, str], None]) -> None: ...


class WorkloadDriver:
    def __init__(self, engine: Engine, cluster: WorkloadCluster, scenario: Scenario) -> None:
        self.engine = engine
        self.cluster = cluster
        self.scenario = scenario
        self.rng = np.random.default_rng(
            np.random.SeedSequence(scenario.seed, spawn_key=(WORKLOAD_STREAM,))
        )
        self._created: dict[str, int] = {}  # workload -> pods it created (names them)
        self._run_seconds: dict[str, float] = {}  # batch workload -> run time once bound

    def start(self) -> None:
        """Schedule every workload's future; call once, before running the engine."""
        for workload in self.scenario.workloads:
            if isinstance(workload, Deployment):
                self._start_deployment(workload)
            elif isinstance(workload, Batch):
                self._start_batch(workload)
            else:
                self._start_replay(workload)
        if self._run_seconds:
            self.cluster.on_bind(self._bound)

    def _schedule(self, at: float, action: Callable[[], None]) -> None:
        """Events after the end of the run are dropped: they would only fill the heap."""
        if at <= self.scenario.duration:
            self.engine.at(at, action, POD)

    # -- deployments ---------------------------------------------------------------------------

    def _start_deployment(self, deployment: Deployment) -> None:
        def sample(k: int) -> None:
            self._reconcile(deployment, self._desired(deployment))
            self._schedule((k + 1) * deployment.sample_every, lambda: sample(k + 1))

        self._schedule(0.0, lambda: sample(0))

    def _desired(self, deployment: Deployment) -> int:
        desired = deployment.replicas.replicas(self.engine.now)
        if deployment.noise > 0 and desired > 0:
            factor = 1.0 + deployment.noise * float(self.rng.standard_normal())
            desired = max(0, int(np.floor(desired * factor + 0.5)))
        return desired

    def _reconcile(self, deployment: Deployment, desired: int) -> None:
        name = deployment.name
        pending = self.cluster.pending_keys(name)
        running = self.cluster.running_keys(name)
        have = len(pending) + len(running)
        if desired > have:
            owner = f"ReplicaSet/{name}"
            for _ in range(desired - have):
                index = self._next_index(name)
                pod = deployment.template.pod(f"{name}-{index}", deployment.namespace, owner)
                self.cluster.submit(pod, name)
        elif desired < have:
            excess = have - desired
            victims = pending[::-1][:excess]
            victims += running[::-1][: excess - len(victims)]
            for key in victims:
                self.cluster.finish(key)

    def _next_index(self, workload: str) -> int:
        index = self._created.get(workload, 0)
        self._created[workload] = index + 1
        return index

    # -- batches -------------------------------------------------------------------------------

    def _start_batch(self, batch: Batch) -> None:
        self._run_seconds[batch.name] = batch.run_seconds
        for wave, at in enumerate(batch.wave_times()):
            self._schedule(at, partial(self._submit_wave, batch, wave))

    def _submit_wave(self, batch: Batch, wave: int) -> None:
        owner = f"Job/{batch.name}" if batch.waves == 1 else f"Job/{batch.name}-{wave}"
        prefix = batch.name if batch.waves == 1 else f"{batch.name}-{wave}"
        for i in range(batch.pods):
            pod = batch.template.pod(f"{prefix}-{i}", batch.namespace, owner)
            self.cluster.submit(pod, batch.name)

    def _bound(self, pod: Pod, workload: str) -> None:
        run_seconds = self._run_seconds.get(workload)
        if run_seconds is not None:
            key = pod.key
            self._schedule(self.engine.now + run_seconds, lambda: self.cluster.finish(key))

    # -- trace replays -------------------------------------------------------------------------

    def _start_replay(self, replay: TraceReplay) -> None:
        pods = replay.pods
        owner = f"Job/{replay.name}"

        def arrive(i: int) -> None:
            now = pods[i].submit_at
            while i < len(pods) and pods[i].submit_at == now:
                self._submit_trace_pod(replay, pods[i], owner)
                i += 1
            if i < len(pods):
                self._schedule(pods[i].submit_at, lambda: arrive(i))

        if pods:
            self._schedule(pods[0].submit_at, lambda: arrive(0))

    def _submit_trace_pod(self, replay: TraceReplay, trace_pod: TracePod, owner: str) -> None:
        pod = trace_pod.template.pod(trace_pod.name, replay.namespace, owner)
        self.cluster.submit(pod, replay.name)
        self._schedule(trace_pod.finish_at, lambda: self._delete_trace_pod(replay.name, pod.key))

    def _delete_trace_pod(self, workload: str, key: str) -> None:
        self.cluster.finish(key)  # ignored when the pod is gone (evicted)
        # Copies re-created after an eviction are named "<first name>-r<n>" by the cluster.
        prefix = f"{key}-r"
        for keys in (self.cluster.pending_keys(workload), self.cluster.running_keys(workload)):
            for other in keys:
                if other.startswith(prefix) and other[len(prefix) :].isdigit():
                    self.cluster.finish(other)
