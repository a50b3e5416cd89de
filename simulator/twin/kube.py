"""The Kubernetes face of the twin: a loopback HTTP API server the real clients use unmodified.

Callers: adapter tests (tests/adapters), ``benchmarks/kube_sync.py`` and people trying the
controller or ``kubectl`` by hand: ``with KubeTwin() as twin:`` then
``twin.write_kubeconfig(path)`` and point the ``kubernetes`` client or ``kubectl --kubeconfig``
at it. State lives in ``twin.store`` (``kube_store.Store``); ``add_pod``/``add_node``/
``add_pdb``/``load`` put model values in as Kubernetes JSON, ``add_claim``/``add_volume``/
``bind_claim`` PersistentVolumeClaims and PersistentVolumes (which have no model type).

Served (JSON over HTTP/1.1, keep-alive): discovery (``/api``, ``/apis``, group versions,
``/version``; OpenAPI is 404 as on a server that hides it); list (``limit``/``continue``
pages, ``fieldSelector``, ``labelSelector``) and watch (chunked JSON lines) of every resource
in ``kube_store.RESOURCES`` (pods, nodes, events, ConfigMaps, Leases, PodDisruptionBudgets,
PersistentVolumeClaims, PersistentVolumes); get, create, PUT (409 on a stale resourceVersion),
merge PATCH and delete; ``pods/eviction`` (429 when a PodDisruptionBudget would be violated,
500 for a pod under several, 409 on a failed uid precondition), with budgets' status kept as
the disruption controller would (``kube_store``). ``kubectl get`` gets ``meta.k8s.io`` Tables
for pods and nodes when it asks for them.

Faults: ``fail_next`` (the next N matching requests answer 500, 429 + Retry-After, ...),
``drop_watches`` (graceful end or abrupt socket close), ``compact`` (old versions -> 410),
``restart`` (same store, same or new port).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.labels import ZONE_LABEL
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod
from simulator.twin.kube_http import Handler
from simulator.twin.kube_objects import (
    budget_json,
    claim_json,
    node_json,
    pod_json,
    pod_status,
    volume_json,
)
from simulator.twin.kube_store import NODES, PDBS, PODS, PVCS, PVS, Obj, Store


@dataclass(slots=True)
class Fault:
    status: int
    remaining: int
    retry_after: float | None = None
    # Which requests, by "METHOD /path?query": every one of these substrings must occur in it
    # (e.g. ("GET /api/v1/pods?", "watch=true") for pod watches). Empty: every request.
    match: tuple[str, ...] = ()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, twin: KubeTwin, port: int) -> None:
        self.twin = twin
        self.connections: set[socket.socket] = set()
        self.watching: dict[socket.socket, str] = {}  # open watches: socket -> request path
        self.ending: set[socket.socket] = set()  # watches asked to end cleanly
        self.closing = False
        self.guard = threading.Lock()
        super().__init__((twin.host, port), Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.guard:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.guard:
            self.connections.discard(request)
            self.watching.pop(request, None)
            self.ending.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up, or a connection a fault cut, is not an error of the twin.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def cut(self, sockets: Iterable[socket.socket]) -> None:
        """Close connections under the handlers' feet, as a crashed server or a proxy would."""
        for sock in list(sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _split(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


class KubeTwin:
    """A running Kubernetes API twin on ``http://127.0.0.1:<port>``."""

    def __init__(self, store: Store | None = None, host: str = "127.0.0.1",
                 watch_timeout: float = 1800.0) -> None:
        self.store = store or Store()
        self.host = host
        self.watch_timeout = watch_timeout  # longest watch when the client names none
        self.requests: list[str] = []  # "METHOD /path?query" of every request, in order
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- life cycle ----------------------------------------------------------------------

    def start(self, port: int = 0) -> KubeTwin:
        self._server = _Server(self, port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"kube-twin-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.closing = True
        server.shutdown()
        server.server_close()
        self.store.end_watches()
        with server.guard:
            open_sockets = list(server.connections)
        server.cut(open_sockets)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def restart(self, *, new_port: bool = False) -> None:
        """Stop (every connection and watch is cut) and serve the same store again."""
        port = self.port
        self.stop()
        self.start(0 if new_port else port)

    def __enter__(self) -> KubeTwin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kubeconfig(self, context: str = "twin") -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "twin"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: str, context: str = "twin") -> str:
        """A kubeconfig for ``kubectl`` and the ``kubernetes`` client (JSON is valid YAML)."""
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.kubeconfig(context), handle, indent=2)
        return path

    # -- faults --------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500, *, retry_after: float | None = None,
                  match: str | tuple[str, ...] = ()) -> None:
        """Answer the next ``count`` requests that contain all of ``match`` with ``status``
        (429 and 503 with ``Retry-After`` when ``retry_after`` is given)."""
        wanted = (match,) if isinstance(match, str) else tuple(match)
        with self._lock:
            self._faults.append(Fault(status, count, retry_after, wanted))

    def take_fault(self, request: str) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            for fault in self._faults:
                if fault.remaining > 0 and all(part in request for part in fault.match):
                    fault.remaining -= 1
                    return fault
            return None

    def drop_watches(self, *, abrupt: bool = False, match: str = "") -> None:
        """End the open watches whose path contains ``match`` (all by default): cleanly (the
        final chunk, as when a watch times out) or by closing the connection under them."""
        server = self._server
        if server is None:
            return
        with server.guard:
            chosen = [sock for sock, path in server.watching.items() if match in path]
            if not abrupt:
                server.ending.update(chosen)
        if abrupt:
            server.cut(chosen)
        with self.store.cond:
            self.store.cond.notify_all()

    def compact(self) -> None:
        self.store.compact()

    def count(self, fragment: str) -> int:
        """How many requests so far contained ``fragment`` (e.g. "GET /api/v1/pods?")."""
        with self._lock:
            return sum(1 for r in self.requests if fragment in r)

    # -- the cluster, as model values ----------------------------------------------------

    def add_node(self, node: Node | Obj, *, padding: bool = False) -> Obj:
        obj = node_json(node, padding=padding) if isinstance(node, Node) else node
        return self.store.create(NODES, obj)

    def add_pod(self, pod: Pod | Obj, *, padding: bool = False) -> Obj:
        obj = pod_json(pod, padding=padding) if isinstance(pod, Pod) else pod
        return self.store.create(PODS, obj)

    def add_pdb(self, pdb: PodDisruptionBudget | Obj) -> Obj:
        """A budget; the store writes its status (``disruptions_allowed`` is not sent)."""
        return self.store.create(PDBS, budget_json(pdb) if isinstance(pdb, PodDisruptionBudget)
                                 else pdb)

    def add_claim(self, key: str, volume: str | None = None) -> Obj:
        """A PersistentVolumeClaim ``namespace/name``, bound to ``volume`` when named."""
        namespace, name = _split(key)
        return self.store.create(PVCS, claim_json(name, namespace, volume=volume))

    def add_volume(self, name: str, zones: Sequence[str] = (), *, claim: str | None = None,
                   key: str = ZONE_LABEL) -> Obj:
        """A PersistentVolume whose node affinity requires one of ``zones`` (under ``key``)."""
        return self.store.create(PVS, volume_json(name, zones, key=key, claim=claim))

    def bind_claim(self, key: str, volume: str) -> Obj:
        """What the PV controller does once a volume is provisioned for the claim."""
        def bind(obj: Obj) -> None:
            obj["spec"]["volumeName"] = volume
            obj["status"] = {"phase": "Bound"}
        return self.store.mutate(PVCS, *_split(key), bind)

    def load(self, pods: Iterable[Pod] = (), nodes: Iterable[Node] = (), *,
             padding: bool = False) -> int:
        """Bulk-load a cluster that existed before anyone watched; returns the version."""
        self.store.load(NODES, (node_json(n, padding=padding) for n in nodes))
        return self.store.load(PODS, (pod_json(p, padding=padding) for p in pods))

    def bind_pod(self, key: str, node: str) -> Obj:
        """What the scheduler and kubelet do: bind the pod and report it running."""
        def bind(obj: Obj) -> None:
            obj["spec"]["nodeName"] = node
            obj["status"] = pod_status(True)
        return self.store.mutate(PODS, *_split(key), bind)

    def set_phase(self, key: str, phase: str) -> Obj:
        return self.store.mutate(PODS, *_split(key),
                                 lambda obj: obj["status"].update(phase=phase))

    def mark_unschedulable(self, key: str, message: str = "") -> Obj:
        def mark(obj: Obj) -> None:
            obj["spec"].pop("nodeName", None)
            obj["status"] = pod_status(False, message=message)
        return self.store.mutate(PODS, *_split(key), mark)

    def delete_pod(self, key: str) -> Obj:
        return self.store.delete(PODS, *_split(key))

    def pod(self, key: str) -> Obj:
        return self.store.get(PODS, *_split(key))
