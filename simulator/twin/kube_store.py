"""The Kubernetes twin's object store: objects, resourceVersions, watch history, PDBs, eviction.

Callers: ``simulator.twin.kube`` (the HTTP face) serves requests from it, and tests and
scenario loaders change the cluster through it (``create``, ``mutate``, ``delete``) while
clients watch. Thread-safe: one condition variable guards everything and wakes watchers.

Semantics kept from kube-apiserver: one cluster-wide resourceVersion counter bumped by every
write; each object carries the version of its last write; ``PUT`` with a stale
``metadata.resourceVersion`` is 409 Conflict; watches replay the history after a version and a
version older than the retained history is 410 Expired; an object that stops matching a watch's
selector is sent as DELETED (its previous content at the new version), one that starts matching
as ADDED; paginated lists are consistent snapshots. Objects are stored with their JSON bytes so
that listing 150,000 pods is a join, not 150,000 encodes.

The store also plays the disruption controller: a PodDisruptionBudget's ``status`` is written
(a MODIFIED at a new version, as the controller's update is) whenever a pod it selects changes,
and at once when the budget is created or its spec changes, so lists, gets and watches all
carry it. An eviction spends the covering budget's ``disruptionsAllowed`` (a MODIFIED with the
pod in ``disruptedPods``), or is refused, by the API server's rules (``kube_budgets``); the pod
is then deleted at once (no grace period runs) and the budget recounted. ``evictions`` lists
each eviction with the grace period asked for.
"""

from __future__ import annotations

import json
import threading
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulator.twin.kube_budgets import budget_status, check_request, eviction_budget, selects
from simulator.twin.kube_select import ApiStatus, Selector

Obj = dict[str, Any]
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def id(self) -> str:
        return f"{self.group}/{self.plural}" if self.group else self.plural


RESOURCES = (
    Resource("", "v1", "pods", "Pod", True, ("po",)),
    Resource("", "v1", "nodes", "Node", False, ("no",)),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource("events.k8s.io", "v1", "events", "Event", True, ("ev",)),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",)),
)
BY_ID = {r.id: r for r in RESOURCES}
PODS, NODES, PDBS = BY_ID["pods"], BY_ID["nodes"], BY_ID["policy/poddisruptionbudgets"]
PVCS, PVS = BY_ID["persistentvolumeclaims"], BY_ID["persistentvolumes"]


def encode(obj: Obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Stored:
    obj: Obj
    data: bytes


@dataclass(frozen=True, slots=True)
class Change:
    rv: int
    resource: str
    type: str
    old: Stored | None  # None for ADDED
    new: Stored  # for DELETED: the last content, at the deletion's version


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patches of the fields clients send here —
    labels, annotations, ``spec.unschedulable``, event counts — merge the same way)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


class Store:
    def __init__(
        self, history_limit: int = 200_000, now: Callable[[], datetime] | None = None
    ) -> None:
        self.cond = threading.Condition()
        self.rv = 0
        self.floor = 0  # every change with rv > floor is still in the history
        self.history_limit = history_limit
        self.generation = 0  # bumped to end every open watch
        self.bookmarks = 0  # bumped to make every open watch send a BOOKMARK
        self.now = now or (lambda: datetime.now(UTC))
        self._objects: dict[str, dict[tuple[str, str], Stored]] = {r.id: {} for r in RESOURCES}
        self._history: list[Change] = []
        self._rvs: list[int] = []
        self._names = 0
        self._pages: dict[str, tuple[list[bytes], int]] = {}
        self.evictions: list[tuple[str, int | None]] = []  # (pod key, gracePeriodSeconds)

    # -- reads ---------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        with self.cond:
            return self._get(res, namespace, name).obj

    def _get(self, res: Resource, namespace: str, name: str) -> Stored:
        stored = self._objects[res.id].get((namespace if res.namespaced else "", name))
        if stored is None:
            raise ApiStatus(404, "NotFound", f'{res.plural} "{name}" not found')
        return stored

    def items(
        self, res: Resource, selector: Selector | None = None
    ) -> tuple[list[Stored], int]:
        with self.cond:
            values = self._objects[res.id].values()
            if selector is None or selector.everything:
                return list(values), self.rv
            return [s for s in values if selector.matches(s.obj)], self.rv

    def page(
        self, res: Resource, selector: Selector, limit: int | None, token: str | None
    ) -> tuple[list[bytes], int, str | None]:
        """One page of a consistent list: the first page fixes the snapshot and later pages,
        named by ``continue`` tokens, read from it (expired after ``compact``)."""
        with self.cond:
            if token:
                if token not in self._pages:
                    raise ApiStatus(410, "Expired", "the provided continue parameter is too old")
                data, rv = self._pages.pop(token)
            else:
                stored, rv = self.items(res, selector)
                data = [s.data for s in stored]
            if not limit or len(data) <= limit:
                return data, rv, None
            self._names += 1
            following = f"page-{self._names}"
            self._pages[following] = (data[limit:], rv)
            return data[:limit], rv, following

    def changes_after(self, cursor: int, res: Resource) -> list[Change]:
        """The changes of ``res`` after version ``cursor``; 410 when they are gone."""
        with self.cond:
            if cursor < self.floor:
                raise ApiStatus(
                    410, "Expired", f"too old resource version: {cursor} ({self.floor})"
                )
            start = bisect_right(self._rvs, cursor)
            return [c for c in self._history[start:] if c.resource == res.id]

    # -- writes --------------------------------------------------------------------------

    def _append(self, res: Resource, kind: str, old: Stored | None, new: Stored) -> None:
        """Log a change made at version ``self.rv`` and wake the watchers."""
        self._history.append(Change(self.rv, res.id, kind, old, new))
        self._rvs.append(self.rv)
        if len(self._history) > 2 * self.history_limit:
            cut = len(self._history) - self.history_limit
            self.floor = self._rvs[cut - 1]
            del self._history[:cut], self._rvs[:cut]
        self.cond.notify_all()

    def _put(self, res: Resource, kind: str, old: Stored | None, obj: Obj) -> Obj:
        self.rv += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self.rv)
        obj.setdefault("kind", res.kind)
        obj.setdefault("apiVersion", res.api_version)
        new = Stored(obj, encode(obj))
        self._objects[res.id][(meta.get("namespace", ""), meta["name"])] = new
        self._append(res, kind, old, new)
        return obj

    def _record(self, res: Resource, kind: str, old: Stored | None, obj: Obj) -> Obj:
        """Store a client's (or a test's) write; budgets get their status, and budgets over a
        changed pod are brought up to date after it."""
        if res is PDBS:
            meta = obj.setdefault("metadata", {})
            generation = int(meta.get("generation") or 1)
            if old is not None:
                generation = int(old.obj["metadata"].get("generation") or 1)
                generation += (old.obj.get("spec") or {}) != (obj.get("spec") or {})
            meta["generation"] = generation
            obj["status"] = self.pdb_status(obj)
        stored = self._put(res, kind, old, obj)
        if res is PODS:
            self._refresh_pdbs(old.obj if old is not None else None, obj)
        return stored

    def create(self, res: Resource, obj: Obj, namespace: str = "") -> Obj:
        obj = json.loads(encode(obj))  # a private copy: the caller may reuse its dict
        meta = obj.setdefault("metadata", {})
        with self.cond:
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise ApiStatus(422, "Invalid", "metadata.name: Required value")
                self._names += 1
                meta["name"] = f"{meta['generateName']}{self._names:05x}"
            if res.namespaced:
                meta["namespace"] = meta.get("namespace") or namespace or "default"
            else:
                meta.pop("namespace", None)
            key = (meta.get("namespace", ""), meta["name"])
            if key in self._objects[res.id]:
                message = f'{res.plural} "{meta["name"]}" already exists'
                raise ApiStatus(409, "AlreadyExists", message)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", self.now().strftime("%Y-%m-%dT%H:%M:%SZ"))
            return self._record(res, ADDED, None, obj)

    def update(self, res: Resource, namespace: str, name: str, obj: Obj) -> Obj:
        """PUT: replaces the object; a ``resourceVersion`` in the body must be current."""
        obj = json.loads(encode(obj))
        with self.cond:
            old = self._get(res, namespace, name)
            sent = (obj.get("metadata") or {}).get("resourceVersion")
            if sent and sent != old.obj["metadata"]["resourceVersion"]:
                message = (
                    f'Operation cannot be fulfilled on {res.plural} "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try again"
                )
                raise ApiStatus(409, "Conflict", message)
            meta = obj.setdefault("metadata", {})
            for key in ("name", "namespace", "uid", "creationTimestamp"):
                if key in old.obj["metadata"]:
                    meta[key] = old.obj["metadata"][key]
            return self._record(res, MODIFIED, old, obj)

    def mutate(self, res: Resource, namespace: str, name: str, change: Callable[[Obj], Any]) -> Obj:
        """Apply ``change`` to a copy of the object and store it (tests' and PATCH's writes)."""
        with self.cond:
            old = self._get(res, namespace, name)
            obj = json.loads(old.data)
            replaced = change(obj)
            return self._record(res, MODIFIED, old, replaced if replaced is not None else obj)

    def patch(self, res: Resource, namespace: str, name: str, patch: Obj) -> Obj:
        return self.mutate(res, namespace, name, lambda obj: _merge(obj, patch))

    def delete(self, res: Resource, namespace: str, name: str) -> Obj:
        """Remove the object; watchers get its last content at the deletion's version."""
        with self.cond:
            old = self._get(res, namespace, name)
            del self._objects[res.id][(namespace if res.namespaced else "", name)]
            self.rv += 1
            gone: Obj = json.loads(old.data)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._append(res, DELETED, old, Stored(gone, encode(gone)))
            if res is PODS:
                self._refresh_pdbs(old.obj, None)
            return gone

    def load(self, res: Resource, objs: Iterable[Obj]) -> int:
        """Bulk create without history (a cluster that existed before anyone watched): fast,
        and watches from an earlier version get 410, as after an etcd compaction."""
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.cond:
            for given in objs:
                # Only metadata and the top level change: copy those, not the whole object.
                meta = dict(given.get("metadata") or {})
                obj = {**given, "metadata": meta}
                if res.namespaced:
                    meta["namespace"] = meta.get("namespace") or "default"
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", stamp)
                self.rv += 1
                meta["resourceVersion"] = str(self.rv)
                obj.setdefault("kind", res.kind)
                obj.setdefault("apiVersion", res.api_version)
                if res is PDBS:
                    meta.setdefault("generation", 1)
                    obj["status"] = self.pdb_status(obj)
                self._objects[res.id][(meta.get("namespace", ""), meta["name"])] = Stored(
                    obj, encode(obj))
            if res is PODS:
                for stored in list(self._objects[PDBS.id].values()):
                    self._write_status(stored, self.pdb_status(stored.obj))
            self.compact()
            return self.rv

    # -- faults and watch control --------------------------------------------------------

    def compact(self) -> None:
        """Forget all history and pending list pages: older versions now answer 410."""
        with self.cond:
            self.floor = self.rv
            self._history.clear()
            self._rvs.clear()
            self._pages.clear()
            self.cond.notify_all()

    def end_watches(self) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()

    def send_bookmarks(self) -> None:
        with self.cond:
            self.bookmarks += 1
            self.cond.notify_all()

    # -- disruption budgets (the rules: ``kube_budgets``) -----------------------------------

    def pdb_status(self, pdb: Obj) -> Obj:
        return budget_status(pdb, (s.obj for s in self._objects[PODS.id].values()))

    def _write_status(self, stored: Stored, status: Obj) -> None:
        if stored.obj.get("status") == status:
            return
        obj = json.loads(stored.data)
        obj["status"] = status
        self._put(PDBS, MODIFIED, stored, obj)

    def _refresh_pdbs(self, old: Obj | None, new: Obj | None) -> None:
        """Recount the budgets that select a pod before or after its change."""
        for stored in list(self._objects[PDBS.id].values()):
            if any(p is not None and selects(stored.obj, p) for p in (old, new)):
                self._write_status(stored, self.pdb_status(stored.obj))

    def evict(self, namespace: str, name: str, body: Obj | None = None) -> None:
        """The Eviction API: spend the covering budget's disruption (or refuse), then delete
        the pod at once; ``evictions`` records the grace period asked for."""
        body = body or {}
        with self.cond:
            pod = self._get(PODS, namespace, name).obj
            check_request(pod, name, body)
            budgets = [s.obj for (ns, _), s in self._objects[PDBS.id].items() if ns == namespace]
            spent = eviction_budget(pod, budgets, self.now())
            if spent is not None:
                covering = next(s for s in self._objects[PDBS.id].values() if selects(s.obj, pod))
                self._write_status(covering, spent)
            grace = (body.get("deleteOptions") or {}).get("gracePeriodSeconds")
            self.evictions.append((f"{namespace}/{name}", grace))
            self.delete(PODS, namespace, name)
