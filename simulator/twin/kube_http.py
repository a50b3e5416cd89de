"""HTTP request handling of the Kubernetes twin: routing, discovery, lists, watches, Tables.

Callers: ``simulator.twin.kube`` serves every connection with ``Handler``; the server it runs
on exposes ``twin`` (the ``KubeTwin``), ``guard`` and ``watching`` (the sockets of open watches,
so that faults can cut them). Errors are ``kube_select.ApiStatus`` values sent as ``Status``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.twin.kube_select import ApiStatus, Selector
from simulator.twin.kube_store import (
    ADDED,
    DELETED,
    MODIFIED,
    NODES,
    PODS,
    RESOURCES,
    Change,
    Obj,
    Resource,
    encode,
)

VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.4-surge-twin", "gitCommit": "twin",
           "gitTreeState": "clean", "buildDate": "2026-01-05T00:00:00Z", "goVersion": "go1.22",
           "compiler": "gc", "platform": "linux/amd64"}
_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def _group_versions() -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for res in RESOURCES:
        out.setdefault(res.api_version, []).append(res)
    return out


def resource_list(api_version: str) -> Obj | None:
    resources = _group_versions().get(api_version)
    if resources is None:
        return None
    listed: list[Obj] = []
    for res in resources:
        listed.append({"name": res.plural, "singularName": res.kind.lower(),
                       "namespaced": res.namespaced, "kind": res.kind, "verbs": _VERBS,
                       **({"shortNames": list(res.short_names)} if res.short_names else {})})
        if res in (PODS, NODES):
            listed.append({"name": f"{res.plural}/status", "singularName": "",
                           "namespaced": res.namespaced, "kind": res.kind,
                           "verbs": ["get", "patch", "update"]})
        if res is PODS:
            listed.append({"name": "pods/eviction", "singularName": "", "namespaced": True,
                           "group": "policy", "version": "v1", "kind": "Eviction",
                           "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version,
            "resources": listed}


def group_list() -> Obj:
    groups = []
    for api_version in _group_versions():
        if "/" in api_version:
            name, version = api_version.split("/")
            entry = {"groupVersion": api_version, "version": version}
            groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _age(stamp: str | None) -> str:
    try:
        then = datetime.strptime(stamp or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _pod_cells(obj: Obj) -> list[Any]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    if not statuses and status.get("phase") == "Running":
        ready = len(spec.get("containers") or [])
    shown = "Terminating" if obj["metadata"].get("deletionTimestamp") else status.get("phase")
    return [obj["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", shown, 0,
            _age(obj["metadata"].get("creationTimestamp")), status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>"]


def _node_cells(obj: Obj) -> list[Any]:
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (obj.get("status") or {}).get("conditions") or ())
    shown = "Ready" if ready else "NotReady"
    if (obj.get("spec") or {}).get("unschedulable"):
        shown += ",SchedulingDisabled"
    version = ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [obj["metadata"]["name"], shown, "<none>",
            _age(obj["metadata"].get("creationTimestamp")), version]


_COLUMNS = {
    "pods": (["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"], _pod_cells),
    "nodes": (["Name", "Status", "Roles", "Age", "Version"], _node_cells),
}


def table(res: Resource, items: list[bytes], meta: Obj) -> Obj:
    """What ``kubectl get`` asks for: rows of cells, with each object's metadata."""
    names, cells = _COLUMNS[res.plural]
    columns = [{"name": n, "type": "integer" if n == "Restarts" else "string",
                "format": "name" if n == "Name" else "", "description": n,
                "priority": 1 if n in ("IP", "Node") else 0} for n in names]
    rows = []
    for data in items:
        obj = json.loads(data)
        rows.append({"cells": cells(obj), "object": {
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": columns, "rows": rows}


def watch_events(changes: list[Change], selector: Selector) -> list[bytes]:
    """Each change as this watch sees it: entering the selector is ADDED, leaving it DELETED."""
    lines = []
    for change in changes:
        if selector.everything:
            kind, data = change.type, change.new.data
        else:
            was = change.old is not None and selector.matches(change.old.obj)
            now = change.type != DELETED and selector.matches(change.new.obj)
            if change.type == DELETED:
                was, now = selector.matches(change.new.obj), False
            if not was and not now:
                continue
            if now:
                kind, data = (MODIFIED if was else ADDED), change.new.data
            elif change.type == DELETED:
                kind, data = DELETED, change.new.data
            else:
                assert change.old is not None
                gone = json.loads(change.old.data)
                gone["metadata"]["resourceVersion"] = str(change.rv)
                kind, data = DELETED, encode(gone)
        lines.append(b'{"type":"%s","object":%s}\n' % (kind.encode(), data))
    return lines


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked watches
    disable_nagle_algorithm = True  # else the client's delayed ACK adds ~40 ms per answer
    server: Any  # kube._Server (not imported: it imports this module)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        twin = self.server.twin
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fault = twin.take_fault(f"{method} {self.path}")
        try:
            if fault is not None:
                reason = _REASONS.get(fault.status, "InternalError")
                raise ApiStatus(fault.status, reason, "injected by the twin", fault.retry_after)
            self._route(method, split.path, query, raw)
        except ApiStatus as error:
            self._reply(error.code, error.body(), error.retry_after)
        except json.JSONDecodeError as error:
            self._reply(400, ApiStatus(400, "BadRequest", f"body is not JSON: {error}").body())
        except OSError:  # the client went away, or a fault cut the connection
            self.close_connection = True

    def _reply(self, status: int, body: Obj | bytes, retry_after: float | None = None) -> None:
        data = body if isinstance(body, bytes) else encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
        parts = [p for p in path.split("/") if p]
        if parts in (["version"], ["version", ""]):
            return self._reply(200, VERSION)
        if parts == ["api"]:
            address = f"{self.server.twin.host}:{self.server.twin.port}"
            return self._reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                     "serverAddressByClientCIDRs": [
                                         {"clientCIDR": "0.0.0.0/0", "serverAddress": address}]})
        if parts == ["apis"]:
            return self._reply(200, group_list())
        if parts[:1] == ["api"] and len(parts) >= 2:
            api_version, rest = parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            raise ApiStatus(404, "NotFound", f"the server could not find {path}")
        if not rest:
            listed = resource_list(api_version)
            if listed is None:
                raise ApiStatus(404, "NotFound", f"no API {api_version}")
            return self._reply(200, listed)
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        elif rest[0] == "namespaces" and api_version == "v1" and len(rest) == 2:
            return self._reply(200, {"kind": "Namespace", "apiVersion": "v1",
                                     "metadata": {"name": rest[1]}, "status": {"phase": "Active"}})
        res = next((r for r in RESOURCES
                    if r.api_version == api_version and r.plural == rest[0]), None)
        if res is None or len(rest) > 3 or (namespace is not None and not res.namespaced):
            raise ApiStatus(404, "NotFound", f"the server could not find {path}")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        self._verb(method, res, namespace, name, sub, query, raw)

    def _verb(self, method: str, res: Resource, namespace: str | None, name: str | None,
              sub: str | None, query: dict[str, str], raw: bytes) -> None:
        store = self.server.twin.store
        ns = namespace or ""
        if name is None and method == "GET":
            selector = Selector.parse(res.plural, namespace, query.get("fieldSelector", ""),
                                      query.get("labelSelector", ""))
            if query.get("watch") in ("true", "1"):
                return self._watch(res, selector, query)
            return self._list(res, selector, query)
        if name is None and method == "POST":
            return self._reply(201, store.create(res, json.loads(raw or b"{}"), ns))
        if name is None or (sub is not None and (sub, res) != ("eviction", PODS)
                            and sub != "status"):
            raise ApiStatus(405, "MethodNotAllowed", f"{method} is not supported here")
        if method == "POST" and sub == "eviction":
            store.evict(ns, name, json.loads(raw or b"{}"))
            return self._reply(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                     "status": "Success", "code": 201})
        if method == "GET":
            obj = store.get(res, ns, name)
            return self._reply(200, obj)
        if method == "PUT":
            return self._reply(200, store.update(res, ns, name, json.loads(raw or b"{}")))
        if method == "PATCH":
            kind = (self.headers.get("Content-Type") or "").split(";")[0]
            if kind == "application/json-patch+json":
                raise ApiStatus(415, "UnsupportedMediaType", "the twin takes merge patches")
            return self._reply(200, store.patch(res, ns, name, json.loads(raw or b"{}")))
        if method == "DELETE":
            return self._reply(200, store.delete(res, ns, name))
        raise ApiStatus(405, "MethodNotAllowed", f"{method} is not supported")

    def _list(self, res: Resource, selector: Selector, query: dict[str, str]) -> None:
        store = self.server.twin.store
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
        items, rv, following = store.page(res, selector, limit, query.get("continue"))
        meta: Obj = {"resourceVersion": str(rv)}
        if following:
            meta["continue"] = following
        if "as=Table" in (self.headers.get("Accept") or "") and res.plural in _COLUMNS:
            return self._reply(200, table(res, items, meta))
        head = {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta}
        self._reply(200, encode(head)[:-1] + b',"items":[' + b",".join(items) + b"]}")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _watch(self, res: Resource, selector: Selector, query: dict[str, str]) -> None:
        twin, store = self.server.twin, self.server.twin.store
        since = query.get("resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            raise ApiStatus(400, "BadRequest", f"invalid resourceVersion {since!r}")
        timeout = float(query.get("timeoutSeconds") or twin.watch_timeout)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        deadline = time.monotonic() + timeout
        with store.cond:
            generation, marks = store.generation, store.bookmarks
            if since in ("", "0"):  # "any version": the current state first, as ADDED
                stored, cursor = store.items(res, selector)
                lines = [b'{"type":"ADDED","object":%s}\n' % s.data for s in stored]
            else:
                cursor, lines = int(since), []
        with self.server.guard:  # before the headers: once a client sees them, faults reach it
            self.server.watching[self.connection] = self.path.partition("?")[0]
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in lines:
                self._chunk(line)
            while True:
                with store.cond:
                    store.cond.wait_for(
                        lambda seen=cursor, marked=marks: store.rv > seen
                        or store.generation != generation or store.bookmarks != marked
                        or self.server.closing or self.connection in self.server.ending,
                        timeout=max(0.0, min(1.0, deadline - time.monotonic())),
                    )
                    if self.server.closing:
                        break
                    # A watch asked to end still delivers what happened before: as when its
                    # timeout is reached, no event is lost, the client resumes after the last.
                    ending = (store.generation != generation
                              or self.connection in self.server.ending)
                    expired: ApiStatus | None = None
                    try:
                        changes = store.changes_after(cursor, res)
                    except ApiStatus as gone:
                        expired = gone
                    cursor = store.rv
                    mark = bookmarks and store.bookmarks != marks
                    marks = store.bookmarks
                if expired is not None:  # the history this watch needs is gone: 410
                    self._chunk(b'{"type":"ERROR","object":%s}\n' % encode(expired.body()))
                    break
                for line in watch_events(changes, selector):
                    self._chunk(line)
                if mark:
                    bookmark = {"kind": res.kind, "apiVersion": res.api_version,
                                "metadata": {"resourceVersion": str(cursor)}}
                    self._chunk(b'{"type":"BOOKMARK","object":%s}\n' % encode(bookmark))
                if ending or time.monotonic() >= deadline:
                    break
            self._chunk(b"")
        finally:
            with self.server.guard:
                self.server.watching.pop(self.connection, None)
                self.server.ending.discard(self.connection)
