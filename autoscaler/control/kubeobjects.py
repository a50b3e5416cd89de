"""Live Kubernetes pods, nodes and PodDisruptionBudgets -> model values, through the snapshot
readers.

Callers: whoever builds a ``kube.cache.ClusterCache`` (``surge run``, ``surge snapshot``, the
adapter tests and benchmarks) passes a ``KubeDecoder`` as its decoder. It lives here, not in
``kube``, because it reuses the snapshot readers of this layer: ``kube.objects`` trims an object
to the snapshot entry shape, and ``PodReader`` / ``read_node`` / ``snapshot_budgets.pdb`` parse
that entry, so a live object and the same object captured by ``surge snapshot`` become the very
same model value.

Speed and sharing: the replicas of one owner have the same spec. The first pod of each distinct
spec is parsed in full; later ones reuse its parsed parts (containers, tolerations, affinity,
...) and only their identity (name, uid, owner, labels, node) is read. Equal label sets and
owners are shared too, so 150,000 pods need few distinct sub-objects and the planner's grouping
compares them by identity. The memos are dropped when they grow past ``memo_limit`` entries, so
a long-running controller's memory stays bounded as workloads come and go.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from autoscaler.control.snapshot_budgets import PDB_FIELDS, pdb
from autoscaler.control.snapshot_fields import Fields, label_map
from autoscaler.control.snapshot_nodes import read_node
from autoscaler.control.snapshot_pods import PodReader
from autoscaler.kube.objects import node_entry, pdb_entry, pod_entry
from autoscaler.model.disruption import PodDisruptionBudget
from autoscaler.model.labels import Labels, labels_of
from autoscaler.model.node import Node
from autoscaler.model.pod import Pod

# Entry keys that identify one pod; every other key is how it schedules. A key added to the
# entry later is part of the spec (and of the memo key) unless it is listed here, so the fast
# path can never hand one pod another pod's value of it.
IDENTITY_KEYS = frozenset(("name", "namespace", "uid", "owner", "labels", "nodeName"))
DEFAULT_MEMO_LIMIT = 200_000


def _key(value: Any) -> bytes:
    """A memo key for a JSON value: its marshal bytes. Faithful (``1``, ``1.0``, ``True`` and
    ``"1"`` differ, as in ``repr``) and nearly twice as fast as ``repr`` on a pod's spec, the
    fast path's largest cost. Format 2 writes neither back-references nor interning marks
    (both came with format 3), so equal values give equal bytes whatever objects hold them."""
    return marshal.dumps(value, 2)


def _path(entry: Mapping[str, Any]) -> str:
    return f"$.pod[{entry.get('namespace')}/{entry.get('name')}]"


class KubeDecoder:
    """Decodes pods, nodes and budgets; raises ``ValidationError`` (naming
    ``$.<kind>[<key>]...``) for an object the planner cannot read. ``pod`` keeps memos and is
    not thread-safe (the cache calls it from its pods thread only); ``node`` and ``pdb`` keep
    no state."""

    def __init__(self, memo_limit: int = DEFAULT_MEMO_LIMIT) -> None:
        self.memo_limit = memo_limit
        self._reset()

    def _reset(self) -> None:
        self._reader = PodReader({})
        self._templates: dict[bytes, Pod] = {}
        self._labels: dict[bytes, Labels] = {}
        self._owners: dict[str, str] = {}

    @property
    def memo_size(self) -> int:
        return len(self._templates) + len(self._labels) + len(self._owners)

    def pod(self, obj: Mapping[str, Any]) -> Pod:
        entry = pod_entry(obj)
        if self.memo_size > self.memo_limit:
            self._reset()
        key = _key([item for item in entry.items() if item[0] not in IDENTITY_KEYS])
        template = self._templates.get(key)
        if template is None:
            pod, _ = self._reader.read(entry, _path(entry))
            self._templates[key] = pod
            if entry.get("labels") is not None:
                self._labels.setdefault(_key(entry["labels"]), pod.labels)
            return pod
        return replace(
            template,
            name=str(entry["name"]),
            namespace=str(entry["namespace"]),
            uid=str(entry.get("uid") or ""),
            owner=self._owner(entry.get("owner")),
            labels=self._label_set(entry),
            node_name=entry.get("nodeName"),
        )

    def _owner(self, ref: object) -> str:
        if not isinstance(ref, dict):
            return ""
        text = f"{ref.get('kind')}/{ref.get('name')}"
        return self._owners.setdefault(text, text)

    def _label_set(self, entry: Mapping[str, Any]) -> Labels:
        raw = entry.get("labels")
        if raw is None:
            return ()
        key = _key(raw)
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = labels_of(label_map(raw, f"{_path(entry)}.labels"))
        return labels

    def node(self, obj: Mapping[str, Any]) -> Node:
        entry = node_entry(obj)
        return read_node(entry, f"$.node[{entry.get('name')}]")

    def pdb(self, obj: Mapping[str, Any]) -> PodDisruptionBudget | None:
        """None for a budget that selects no pod (nothing for scale-down to respect)."""
        entry = pdb_entry(obj)
        if entry is None:
            return None
        path = f"$.pdb[{entry.get('namespace')}/{entry.get('name')}]"
        return pdb(Fields(entry, path, required=("name",), optional=PDB_FIELDS))
