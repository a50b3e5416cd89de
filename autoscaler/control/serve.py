"""``surge run``: the in-cluster controller assembled from its configuration, and its life cycle.

Callers: ``control.cli`` (``surge run``) calls ``serve``; adapter tests build a ``Service``
against the Kubernetes and ARM twins. The pieces: the watch-backed ``ClusterCache``
(``kube.client``, decoding with ``control.kubeobjects.KubeDecoder``), the ``AksProvider``, the
operation store (the ``surge-status`` ConfigMap, or a JSON file), the ``LeaderElector`` on its
thread, the status ConfigMap writer, metrics and probes on their HTTP server, and the
``Runner`` that calls ``Controller.step`` on batches of changes and on the tick.

``--once``: wait for the cache to sync, take one round at the lease (a replica that does not
get it does nothing and says who leads), run one pass, print the status to stdout, release the
lease and exit. Shutdown on SIGTERM (what the kubelet sends) or SIGINT stops the loop, releases
the lease so that a standby takes over at once, and closes the watches.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from autoscaler.cloud.aks import AksProvider
from autoscaler.cloud.store import JsonFileStore, OperationStore
from autoscaler.control.clock import Clock, SystemClock
from autoscaler.control.config import Config
from autoscaler.control.controller import Controller, Leadership, SoleLeader
from autoscaler.control.kubeobjects import KubeDecoder
from autoscaler.control.logs import setup_logging
from autoscaler.control.metrics import Gauge, Health, Metrics, MetricsServer
from autoscaler.control.runner import Runner
from autoscaler.kube.cache import CacheOptions, ClusterCache
from autoscaler.kube.client import KubeApi, api_client
from autoscaler.kube.lease import KubeLeaseApi, LeaderElector
from autoscaler.kube.reflector import ApiError
from autoscaler.kube.status import ConfigMapStore, KubeConfigMapApi, StatusConfigMap, status_text

if TYPE_CHECKING:  # the Azure SDK is imported by autoscaler.cloud only
    from azure.core.credentials import TokenCredential

log = logging.getLogger(__name__)
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
DEFAULT_NAMESPACE = "kube-system"
EXIT_OK, EXIT_FAILURE = 0, 1


def pod_namespace(configured: str | None, file: str = SERVICE_ACCOUNT_NAMESPACE) -> str:
    """The configured namespace, else the pod's own (from its service account), else
    kube-system (running outside a cluster)."""
    if configured:
        return configured
    try:
        with open(file, encoding="utf-8") as handle:
            return handle.read().strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


class Service:
    """Everything ``surge run`` runs, built and not yet started."""

    def __init__(
        self, config: Config, *, kubeconfig: str | None = None, context: str | None = None,
        credential: TokenCredential | None = None, environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.config = config
        self.identity = config.lease.identity or environ.get("POD_NAME", "") \
            or socket.gethostname()
        self.namespace = pod_namespace(config.namespace)
        self.metrics = Metrics()
        # Two connection pools: the cache's (lists, watches, events, cordons, evictions) and
        # the control plane's (Lease, ConfigMap), so lease renewals never queue behind, or
        # share a connection with, the cache's traffic. ApiError when there is no config.
        api = api_client(kubeconfig, context)
        control_api = api_client(kubeconfig, context)
        clock = clock or SystemClock()
        # The cache stamps surge's cordon mark with the loop's clock: the drain's start time.
        self.cache = ClusterCache(KubeApi(api), KubeDecoder(),
                                  CacheOptions(schedulers=config.schedulers,
                                               watch_pdbs=config.loop.scale_down.enabled,
                                               watch_volumes=config.watch_volumes),
                                  now=clock.now, instance=self.identity)
        self.cloud = AksProvider(config.azure, credential)
        configmaps = KubeConfigMapApi(control_api)

        def failed(operation: str) -> Any:
            return lambda _error: self.metrics.api_errors.inc(api="kubernetes",
                                                              operation=operation)

        self.store: OperationStore = (
            JsonFileStore(config.store_path) if config.store == "file"
            else ConfigMapStore(configmaps, self.namespace, config.status_configmap,
                                failed("operations")))
        self.elector: LeaderElector | None = None
        leadership: Leadership = SoleLeader(self.identity)
        if config.leader_election:
            lease = replace(config.lease, namespace=self.namespace, identity=self.identity)
            self.elector = LeaderElector(KubeLeaseApi(control_api), lease, on_error=failed("lease"))
            leadership = self.elector
        self.health = Health(config.batch.tick, config.metrics.stuck_after)
        status = StatusConfigMap(configmaps, self.namespace, config.status_configmap,
                                 failed("status"))
        self.controller = Controller(
            self.cache, self.cloud, clock, config.loop, leadership=leadership,
            store=self.store, status=status, metrics=self.metrics, health=self.health,
            events=config.events, min_counts=dict(config.min_counts),
            status_every=config.batch.tick)
        self.metrics.registry.add(Gauge("surge_cache_synced", "1 when the pod and node watches "
                                        "are synced and current.", read=self._synced_value))
        self.runner = Runner(self.cache, config.batch, self.controller.step)
        self.server: MetricsServer | None = None

    # -- state -----------------------------------------------------------------------------

    def _reflectors(self) -> tuple[Any, ...]:
        cache = self.cache
        return tuple(getattr(cache, "reflectors", (cache.pods, cache.nodes)))

    def synced(self) -> bool:
        with self.cache.cond:
            now = self.cache.clock()
            return all(r.problem(now) is None for r in self._reflectors())

    def _synced_value(self) -> float:
        return 1.0 if self.synced() else 0.0

    def ready(self) -> tuple[bool, str]:
        if not self.synced():
            return False, "cluster cache not synced"
        if self.elector is not None and not self.elector.knows_leader():
            return False, "leader unknown (lease not readable)"
        return True, "leader" if self.controller.leadership.is_leader() else "standby"

    def wait_synced(self, timeout: float) -> bool:
        cache = self.cache
        return cache.wait_for(
            lambda: all(r.problem(cache.clock()) is None for r in self._reflectors()), timeout)

    # -- life cycle ------------------------------------------------------------------------

    def run_once(self) -> int:
        self.cache.start()
        if not self.wait_synced(self.config.sync_timeout):
            print(f"surge: error: the cluster cache did not sync in "
                  f"{self.config.sync_timeout:g}s", file=sys.stderr)
            return EXIT_FAILURE
        if self.elector is not None and not self.elector.step():
            holder = self.elector.holder or "unknown"
            print(f"surge: another replica leads ({holder}); nothing done", file=sys.stderr)
            return EXIT_OK
        self.controller.step("once")
        status = self.controller.last_status
        if status is not None:
            sys.stdout.write(status_text(status))
        return EXIT_OK

    def run(self) -> int:
        cfg = self.config
        self.cache.start()
        if cfg.metrics.enabled:
            self.server = MetricsServer(cfg.metrics.address, cfg.metrics.port, self.metrics,
                                        self.health, self.ready).start()
            log.info("serving /metrics, /healthz and /readyz on %s:%d", cfg.metrics.address,
                     self.server.port)
        if not self.wait_synced(cfg.sync_timeout):
            log.warning("cluster cache not synced after %gs; passes skip until it is",
                        cfg.sync_timeout)
        if self.elector is not None:
            self.elector.step()  # a first round now, so that a sole replica leads its first pass
            self.elector.start()
        self.runner.run()
        return EXIT_OK

    def stop(self) -> None:
        self.runner.stop()

    def close(self) -> None:
        self.runner.stop()
        if self.elector is not None:
            self.elector.stop()
            self.elector.release()
        if self.server is not None:
            self.server.stop()
        self.cache.close()
        self.cloud.close()


def serve(config: Config, *, kubeconfig: str | None = None, context: str | None = None,
          once: bool = False, credential: TokenCredential | None = None) -> int:
    """Run the controller until stopped (or one pass with ``once``); returns the exit code."""
    setup_logging(config.log_format, config.log_level)
    try:
        service = Service(config, kubeconfig=kubeconfig, context=context, credential=credential)
    except ApiError as error:
        print(f"surge: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    log.info("surge starting as %s in namespace %s%s", service.identity, service.namespace,
             " (dry run)" if config.loop.dry_run else "")
    handled = not once and threading.current_thread() is threading.main_thread()
    if handled:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: service.stop())
    try:
        return service.run_once() if once else service.run()
    finally:
        service.close()
