"""What the code asks of the Kubernetes API, as RBAC attributes, and what the manifests grant.

Callers: tests/deploy/test_rbac.py. Two sources of truth, both read off the code:

- ``calls_in_code`` scans autoscaler/ for every method of the official client's API classes
  (``CoreV1Api``, ``CoordinationV1Api``, ...) that a module references on an API object it
  builds, and turns each into the request the client would send: the method is called on a
  client whose ``call_api`` records the HTTP method and path instead of sending them. A list
  method also counts as a watch in a module that passes ``watch=True``.
- ``access_of`` parses the requests the Kubernetes twin recorded ("METHOD /path?query") when the
  adapters ran against it, the way the API server derives request attributes for RBAC.

``Grants`` evaluates the rendered ClusterRole and Role for surge's ServiceAccount the way the
RBAC authorizer does (API group, resource/subresource, verb, resourceNames, namespace).
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client as k8s

from tests.deploy.support import ROOT, Obj, only

VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True, order=True)
class Access:
    """RBAC request attributes; ``resource`` includes the subresource (``pods/eviction``)."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""

    @property
    def rule(self) -> tuple[str, str, str]:
        return (self.group, self.resource, self.verb)


def access_of(method: str, url: str) -> Access:
    """The RBAC attributes of a resource request, as kube-apiserver's request-info parser
    derives them (discovery and other non-resource paths are not asked of here)."""
    split = urlsplit(url)
    parts = [p for p in split.path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        raise ValueError(f"not a resource request: {method} {url}")
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource += "/" + rest[2]
    query = parse_qs(split.query)
    if method == "GET":
        watching = query.get("watch", ["false"])[0].lower() in ("true", "1")
        verb = "get" if name else ("watch" if watching else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = VERBS[method]
    return Access(verb, group, resource, namespace, name)


# --- the code --------------------------------------------------------------------------------


class _Sent(Exception):
    """Stops a generated method once its request is built: nothing is sent."""

    def __init__(self, method: str, path: str, path_params: Any, query_params: Any) -> None:
        super().__init__(method, path)
        for key, value in (path_params or {}).items():
            path = path.replace("{" + key + "}", str(value))
        query = "&".join(f"{k}={str(v).lower()}" for k, v in query_params or [])
        self.request = (method, f"{path}?{query}")


class _Recorder(k8s.ApiClient):  # type: ignore[misc]
    """An API client that stops at the request a generated method builds. Clients generated
    since kubernetes 33 build it in ``param_serialize``; earlier ones in ``call_api``."""

    def __init__(self) -> None:
        super().__init__(k8s.Configuration())

    def param_serialize(self, method: str, resource_path: str, path_params: Any = None,
                        query_params: Any = None, *args: Any, **kwargs: Any) -> None:
        raise _Sent(method, resource_path, path_params, query_params)

    def call_api(self, resource_path: str, method: str, path_params: Any = None,
                 query_params: Any = None, *args: Any, **kwargs: Any) -> None:
        raise _Sent(method, resource_path, path_params, query_params)


def _api_class(name: str | None) -> type | None:
    """The client's API class of that name. dir(), not vars(): the package loads its classes
    lazily, and only the ones asked for are loaded (loading all of them takes seconds)."""
    if name is None or not name.endswith("Api") or name == "ApiClient" or name not in dir(k8s):
        return None
    found = getattr(k8s, name)
    return found if isinstance(found, type) else None


def _request(cls: type, method: str, watch: bool) -> tuple[str, str]:
    # Unwrapped: newer clients validate arguments (pydantic) before building the request, and
    # a placeholder body would not pass; the request does not depend on the body.
    function = inspect.unwrap(getattr(cls, method))
    required = [p.name for p in list(inspect.signature(function).parameters.values())[1:]
                if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    arguments = {name: name.upper() for name in required}  # e.g. namespace -> NAMESPACE
    try:
        function(cls(_Recorder()), **arguments, **({"watch": True} if watch else {}))
    except _Sent as sent:
        return sent.request
    raise AssertionError(f"{cls.__name__}.{method} sent no request")


@dataclass(frozen=True, order=True)
class Call:
    """One client method a module of autoscaler/ uses, and the request it makes."""

    module: str
    api: str
    method: str
    access: Access


def _modules(root: Path) -> Iterable[tuple[str, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text("utf-8"), str(path))


@functools.cache
def calls_in_code(root: Path = ROOT / "autoscaler") -> frozenset[Call]:
    found: set[Call] = set()
    for module, tree in _modules(root):
        nodes = list(ast.walk(tree))
        classes = {name: cls for node in nodes if isinstance(node, ast.Call)
                   for name in [getattr(node.func, "attr", getattr(node.func, "id", None))]
                   if (cls := _api_class(name)) is not None}
        built = set(classes)
        watches = any(k.arg == "watch" and isinstance(k.value, ast.Constant)
                      and k.value.value is True
                      for node in nodes if isinstance(node, ast.Call) for k in node.keywords)
        referenced = {node.attr for node in nodes if isinstance(node, ast.Attribute)}
        for api in sorted(built):
            methods = {m for m in vars(classes[api]) if not m.startswith("_")
                       and not m.endswith("_with_http_info") and m != "api_client"}
            for method in sorted(referenced & methods):
                variants = [False, True] if watches and method.startswith("list_") else [False]
                for watch in variants:
                    access = access_of(*_request(classes[api], method, watch))
                    found.add(Call(module, api, method, access))
    return frozenset(found)


# --- the manifests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Grants:
    """The rules bound to one ServiceAccount: cluster-wide (ClusterRoles through
    ClusterRoleBindings) and per namespace (Roles through RoleBindings)."""

    cluster: tuple[Obj, ...]
    namespaced: tuple[tuple[str, Obj], ...]  # (namespace, rule)

    @classmethod
    def of(cls, objects: list[Obj], namespace: str, account: str) -> Grants:
        def bound(binding: Obj) -> bool:
            return any(s["kind"] == "ServiceAccount" and s["name"] == account
                       and s.get("namespace") == namespace for s in binding["subjects"])

        cluster: list[Obj] = []
        namespaced: list[tuple[str, Obj]] = []
        for binding in objects:
            if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding") or not bound(binding):
                continue
            ref = binding["roleRef"]
            role = only(objects, ref["kind"], ref["name"])
            if binding["kind"] == "ClusterRoleBinding":
                cluster += role["rules"]
            else:
                namespaced += [(binding["metadata"]["namespace"], r) for r in role["rules"]]
        return cls(tuple(cluster), tuple(namespaced))

    @staticmethod
    def _matches(rule: Obj, access: Access) -> bool:
        def has(values: list[str], value: str) -> bool:
            return "*" in values or value in values

        names = rule.get("resourceNames") or []
        return (has(rule["apiGroups"], access.group) and has(rule["resources"], access.resource)
                and has(rule["verbs"], access.verb) and (not names or access.name in names))

    def allows(self, access: Access) -> bool:
        if any(self._matches(rule, access) for rule in self.cluster):
            return True
        return any(ns == access.namespace and self._matches(rule, access)
                   for ns, rule in self.namespaced)

    def rules(self) -> set[tuple[str, str, str]]:
        """Every (group, resource, verb) granted anywhere."""
        return {(group, resource, verb)
                for rule in [*self.cluster, *(r for _, r in self.namespaced)]
                for group in rule["apiGroups"] for resource in rule["resources"]
                for verb in rule["verbs"]}

    def cluster_rules(self) -> set[tuple[str, str, str]]:
        return {(g, r, v) for rule in self.cluster for g in rule["apiGroups"]
                for r in rule["resources"] for v in rule["verbs"]}
