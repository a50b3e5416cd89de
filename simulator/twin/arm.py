"""The ARM + AAD face of the twin: a loopback HTTPS server the real Azure SDKs talk to unmodified.

Callers: adapter tests (tests/adapters), ``benchmarks/arm_latency.py`` and anyone running the
autoscaler against a fake Azure: ``with ArmTwin() as twin:`` then point azure-identity at
``twin.url`` as its authority host and the ContainerServiceClient at ``twin.url`` as its ARM
endpoint, trusting ``twin.ca_file``. State and faults live in ``twin.model`` (``ArmModel``).

Routes (paths case-insensitive, like ARM's):

==========  =====================================================================  ==============
method      path                                                                   route key
==========  =====================================================================  ==============
GET         /{tenant}/v2.0/.well-known/openid-configuration                        openid
POST        /{tenant}/oauth2/v2.0/token                                            token
GET         /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Container   agentPools
            Service/managedClusters/{c}/agentPools
GET / PUT   .../agentPools/{pool}                                                  agentPool
POST        .../agentPools/{pool}/deleteMachines                                   deleteMachines
GET         /subscriptions/{s}/providers/Microsoft.ContainerService/locations/     operation
            {region}/operations/{id}
GET         /api/retail/prices?$filter=...&$skip=n                                 prices
==========  =====================================================================  ==============

``twin.requests`` counts requests by "METHOD route" (e.g. "PUT agentPool"); ``twin.arrivals``
keeps (perf_counter, key, pool) per request for latency measurements. ARM routes need a bearer
token the token endpoint issued (else 401), as ARM does.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from simulator.twin.arm_model import ArmFault, ArmModel, TwinOperation
from simulator.twin.tls import CertFiles, make_certificates

_CLUSTER = (
    r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"microsoft\.containerservice/managedclusters/(?P<cluster>[^/]+)/agentpools"
)
_ROUTES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (method, key, re.compile(pattern, re.IGNORECASE))
    for method, key, pattern in (
        ("GET", "openid", r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$"),
        ("POST", "token", r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$"),
        ("GET", "agentPools", rf"^{_CLUSTER}$"),
        ("GET", "agentPool", rf"^{_CLUSTER}/(?P<pool>[^/]+)$"),
        ("PUT", "agentPool", rf"^{_CLUSTER}/(?P<pool>[^/]+)$"),
        ("POST", "deleteMachines", rf"^{_CLUSTER}/(?P<pool>[^/]+)/deletemachines$"),
        (
            "GET",
            "operation",
            r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.containerservice/"
            r"locations/(?P<region>[^/]+)/operations/(?P<op>[^/]+)$",
        ),
        ("GET", "prices", r"^/api/retail/prices$"),
    )
)
_FILTER_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$")


def _route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    for route_method, key, pattern in _ROUTES:
        match = pattern.match(path) if route_method == method else None
        if match is not None:
            return key, match.groupdict()
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, twin: ArmTwin, context: ssl.SSLContext) -> None:
        self.twin = twin
        self.context = context
        super().__init__((twin.host, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that does not trust the certificate, or hangs up, is not the twin's error.
        self.twin.errors += 1

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # The handshake runs on the connection's own thread (first read), not on the accept loop.
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDKs reuse connections
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK adds
    # ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        arrived = time.perf_counter()
        twin = self.server.twin
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        found = _route(method, split.path)
        if found is None:
            twin.record(time.perf_counter(), f"{method} unknown", None)
            self._reply(404, {"error": {"code": "NotFound", "message": f"no route {self.path}"}})
            return
        key, params = found
        route = f"{method} {key}"
        twin.record(arrived, route, params.get("pool"))
        try:
            twin.model.check_faults(route, params.get("pool"))
            if key not in ("openid", "token", "prices"):
                self._authorize()
            try:
                status, body, headers = twin.dispatch(key, method, params, split.query, raw, self)
            except json.JSONDecodeError as err:
                raise ArmFault(400, "InvalidRequestContent", f"body is not JSON: {err}") from err
        except ArmFault as fault:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            if key == "token":
                body = {"error": fault.code, "error_description": fault.message}
            else:
                body = {"error": {"code": fault.code, "message": fault.message}}
            self._reply(fault.status, body, headers)
            return
        self._reply(status, body, headers)

    def _authorize(self) -> None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.server.twin.model.tokens:
            raise ArmFault(401, "InvalidAuthenticationToken", "missing or unknown bearer token")

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", f"twin-{id(self)}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def form(self, raw: bytes) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}


class ArmTwin:
    """A running ARM + AAD twin on ``https://127.0.0.1:<port>``; ``start`` / ``stop`` or
    ``with``. Certificates are made at start in a temporary directory removed at stop."""

    def __init__(self, model: ArmModel | None = None, host: str = "127.0.0.1") -> None:
        self.model = model or ArmModel()
        self.host = host
        self.requests: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str, str | None]] = []
        self.errors = 0  # connections that failed (TLS handshake refused, reset)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.certs: CertFiles | None = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> ArmTwin:
        self._dir = tempfile.TemporaryDirectory(prefix="surge-twin-")
        self.certs = make_certificates(self._dir.name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certs.cert_file, self.certs.key_file)
        self._server = _Server(self, context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="arm-twin", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ArmTwin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL: ARM endpoint and authority host at once."""
        if self._server is None:
            raise RuntimeError("the twin is not running")
        return f"https://{self.host}:{self._server.server_address[1]}"

    @property
    def ca_file(self) -> str:
        if self.certs is None:
            raise RuntimeError("the twin is not running")
        return self.certs.ca_file

    @property
    def prices_url(self) -> str:
        return f"{self.url}/api/retail/prices"

    # -- counting ------------------------------------------------------------------------

    def record(self, at: float, route: str, pool: str | None) -> None:
        with self._lock:
            self.requests[route] += 1
            self.arrivals.append((at, route, pool))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.arrivals.clear()

    def arm_requests(self) -> Counter[str]:
        """Requests to ARM routes only (not the identity endpoints nor prices)."""
        with self._lock:
            return Counter(
                {k: v for k, v in self.requests.items()
                 if k.split(" ")[1] not in ("openid", "token", "prices")}
            )

    # -- routes --------------------------------------------------------------------------

    def dispatch(
        self,
        key: str,
        method: str,
        params: dict[str, str],
        query: str,
        raw: bytes,
        handler: _Handler,
    ) -> tuple[int, Any, dict[str, str]]:
        model = self.model
        if key == "openid":
            return 200, self._openid(params["tenant"]), {}
        if key == "token":
            return 200, model.issue_token(handler.form(raw)), {}
        if key == "prices":
            return 200, self._prices(query), {}
        if key == "operation":
            return 200, model.operation_status(params["op"]), {}
        self._check_cluster(params)
        if key == "agentPools":
            return 200, model.list_pools(), {}
        body = json.loads(raw or b"{}")
        if key == "agentPool" and method == "GET":
            return 200, model.get_pool(params["pool"]), {}
        if key == "agentPool":
            op = model.put_pool(params["pool"], body, handler.headers.get("If-Match"))
            return 200, model.get_pool(params["pool"]), self._async_headers(op, location=False)
        op = model.delete_machines(params["pool"], body)
        return 202, None, self._async_headers(op, location=True)

    def _check_cluster(self, params: dict[str, str]) -> None:
        model = self.model
        wanted = (model.subscription, model.resource_group.lower(), model.cluster.lower())
        if (params["sub"], params["rg"].lower(), params["cluster"].lower()) != wanted:
            raise ArmFault(404, "ResourceNotFound", "no such managed cluster")

    def _async_headers(self, op: TwinOperation, *, location: bool) -> dict[str, str]:
        url = (
            f"{self.url}/subscriptions/{self.model.subscription}/providers/"
            f"Microsoft.ContainerService/locations/{self.model.region}/operations/{op.id}"
            "?api-version=2017-08-31"
        )
        headers = {"Azure-AsyncOperation": url}
        if location:
            headers["Location"] = url.replace("/operations/", "/operationresults/")
        return headers

    def _openid(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "tenant_region_scope": "NA",
        }

    def _prices(self, query: str) -> dict[str, Any]:
        args = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        filters: dict[str, str] = {}
        text = args.get("$filter", "")
        for clause in re.split(r"\s+and\s+", text) if text.strip() else []:
            match = _FILTER_CLAUSE.match(clause)
            if match is None:
                raise ArmFault(400, "InvalidFilter", f"cannot read filter clause {clause!r}")
            filters[match.group(1)] = match.group(2)
        skip = int(args.get("$skip", "0") or 0)
        items, more = self.model.price_page(filters, skip)
        next_link = None
        if more:
            next_link = (
                f"{self.prices_url}?$filter={quote(text)}&$skip={skip + len(items)}"
            )
        return {
            "BillingCurrency": "USD",
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": items,
            "NextPageLink": next_link,
            "Count": len(items),
        }
