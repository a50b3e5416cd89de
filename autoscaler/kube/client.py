"""The real Kubernetes API behind the cache. With ``kube.lease`` and ``kube.status``, which
build their own API groups and call through ``json_call``, the only modules that import
``kubernetes``.

Callers: ``surge run`` and ``surge snapshot`` call ``connect`` (in-cluster config or a
kubeconfig) and get a started ``ClusterCache``; ``surge snapshot`` also lists once through
``KubeApi.list_all``. Adapter tests use the same calls against the twin. Besides lists and
watches (pods, nodes, policy/v1 PodDisruptionBudgets, PersistentVolumeClaims and
PersistentVolumes), the cache writes through here: events, node merge patches (cordon) and pod
evictions.

Speed: lists and watches ask the client for the raw response (``_preload_content=False``) and
parse the JSON here, keeping plain dicts for the decoder. The client's own model classes cost
several times the parse itself for a 150,000-pod list, and the planner needs a fraction of the
fields. Errors become ``cache.ApiError`` (HTTP status, or 0 when the connection failed, with
Retry-After when the server sent one); retrying is the cache's job, so none happens here.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any, cast

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from autoscaler.kube.cache import (
    ApiError,
    CacheOptions,
    ClusterCache,
    Decoder,
    Json,
    Page,
    gc_paused,
)
from autoscaler.kube.reflector import NODES, PDBS, PODS, PVCS, PVS

NOT_FOUND = 404

MERGE_PATCH = "application/merge-patch+json"

IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"


def api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """In-cluster service-account config when running in a pod and no kubeconfig is named;
    otherwise the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config`` when None).

    urllib3's own retries are off: by default it would honour a 429's Retry-After by sleeping
    inside the request, holding the thread that called it. The cache retries instead, with
    backoff it controls (and tests replace)."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get(IN_CLUSTER_ENV):
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
        else:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration,
                persist_config=False)
    except (k8s_config.ConfigException, OSError) as error:
        raise ApiError(0, f"cannot load the cluster configuration: {error}") from None
    configuration.retries = False
    return k8s.ApiClient(configuration)


def _retry_after(error: ApiException) -> float | None:
    value = (error.headers or {}).get("Retry-After")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def read_json(response: Any) -> Json:
    """The JSON body of a raw (``_preload_content=False``) answer, read before its connection
    goes back to the pool."""
    try:
        return cast(Json, json.loads(response.read()))
    finally:
        response.release_conn()


def _call(request: Callable[[], Any]) -> Any:
    try:
        return request()
    except ApiException as error:
        message = error.reason or ""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            message = json.loads(error.body or b"{}").get("message") or message
        raise ApiError(int(error.status or 0), str(message), _retry_after(error)) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiError(0, f"{type(error).__name__}: {error}") from None


def json_call(request: Callable[[], Any]) -> Json:
    """The JSON answer of a raw (``_preload_content=False``) request; failures as ``ApiError``."""
    return cast(Json, _call(lambda: read_json(request())))


def json_or_none(request: Callable[[], Any]) -> Json | None:
    """``json_call``, or None when the object does not exist (404)."""
    try:
        return json_call(request)
    except ApiError as error:
        if error.status == NOT_FOUND:
            return None
        raise


class _Stream:
    """The lines of one watch response, parsed; ``close`` unblocks a reader on another thread."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[Json]:
        buffer = bytearray()
        try:
            for chunk in self._response.stream(amt=None, decode_content=False):
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", start)) >= 0:
                    line = bytes(buffer[start:end])
                    start = end + 1
                    if line.strip():
                        yield cast(Json, json.loads(line))
                del buffer[:start]
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            raise ApiError(0, f"watch broken: {type(error).__name__}: {error}") from None

    def close(self) -> None:
        # Closing the socket under a blocked read is what ends it promptly; a plain close()
        # of the response would wait for the read to return.
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.release_conn()


class KubeApi:
    """The cache's ``Transport`` over the official client."""

    def __init__(self, api: k8s.ApiClient, *, request_timeout: float = 60.0) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.request_timeout = request_timeout
        self._lists: dict[str, Callable[..., Any]] = {
            PODS: self.core.list_pod_for_all_namespaces,
            NODES: self.core.list_node,
            PDBS: k8s.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces,
            PVCS: self.core.list_persistent_volume_claim_for_all_namespaces,
            PVS: self.core.list_persistent_volume,
        }

    def list(self, kind: str, *, limit: int, token: str | None,
             field_selector: str | None) -> Page:
        def request() -> bytes:
            response = self._lists[kind](
                limit=limit, _continue=token, field_selector=field_selector,
                _preload_content=False, _request_timeout=self.request_timeout,
            )
            try:
                return cast(bytes, response.read())
            finally:
                response.release_conn()

        data = _call(request)
        with gc_paused():
            doc = json.loads(data)
        meta = doc.get("metadata") or {}
        return Page(doc.get("items") or [], str(meta.get("resourceVersion") or ""),
                    meta.get("continue") or None)

    def list_all(self, kind: str, *, page_size: int = 2000,
                 field_selector: str | None = None) -> tuple[Json, ...]:
        """Every object of ``kind`` (one consistent snapshot, in pages)."""
        items: builtins.list[Json] = []
        token = None
        while True:
            page = self.list(kind, limit=page_size, token=token, field_selector=field_selector)
            items.extend(page.items)
            token = page.next
            if not token:
                return tuple(items)

    def watch(self, kind: str, *, resource_version: str, field_selector: str | None,
              timeout_seconds: int) -> _Stream:
        # The read timeout outlasts the server's own end of the watch, so a quiet watch ends
        # cleanly instead of as a timeout error.
        return _Stream(_call(lambda: self._lists[kind](
            watch=True, resource_version=resource_version or None, allow_watch_bookmarks=True,
            field_selector=field_selector, timeout_seconds=timeout_seconds,
            _preload_content=False,
            _request_timeout=(self.request_timeout, timeout_seconds + self.request_timeout),
        )))

    def create_event(self, namespace: str, body: Json) -> None:
        event = k8s.CoreV1Event.from_dict(body)
        if event is None:
            raise ApiError(0, "empty event")
        _call(lambda: self._done(self.core.create_namespaced_event(
            namespace, event, _preload_content=False, _request_timeout=self.request_timeout)))

    def patch_node(self, name: str, patch: Json) -> None:
        # Forced to a merge patch: the client would otherwise pick a content type by itself,
        # and a merge patch means the same on every server and in the twin.
        _call(lambda: self._done(self.core.patch_node(
            name, patch, _content_type=MERGE_PATCH, _preload_content=False,
            _request_timeout=self.request_timeout)))

    def evict(self, namespace: str, name: str, body: Json) -> None:
        eviction = k8s.V1Eviction.from_dict(body)
        if eviction is None:
            raise ApiError(0, "empty eviction")
        _call(lambda: self._done(self.core.create_namespaced_pod_eviction(
            name, namespace, eviction, _preload_content=False,
            _request_timeout=self.request_timeout)))

    @staticmethod
    def _done(response: Any) -> None:
        """The answer of a write is not needed (the watch brings the change), but it is read
        before the connection goes back to the pool: an unread body would be taken for the
        start of the next answer on that connection."""
        try:
            response.read()
        finally:
            response.release_conn()


def connect(
    decoder: Decoder, *, kubeconfig: str | None = None, context: str | None = None,
    options: CacheOptions | None = None, instance: str = "", start: bool = True,
) -> ClusterCache:
    """A ``ClusterCache`` over the cluster the config names, its watches started."""
    cache = ClusterCache(KubeApi(api_client(kubeconfig, context)), decoder, options,
                         instance=instance or os.environ.get("POD_NAME", ""))
    return cache.start() if start else cache
