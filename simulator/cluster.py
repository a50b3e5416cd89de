"""SimCluster: the simulated cluster's nodes and pods, their lifecycles, and a ClusterSource.

Callers: ``simulator.cloud_pools`` adds and removes nodes (``add_node`` when a VM registers,
``remove_node`` on scale-down or spot eviction; it records node lifetimes);
``simulator.workloads`` submits and finishes pods and listens to bindings (``on_bind``);
``simulator.run`` hands it to ``autoscaler.control.loop.Reconciler`` as the loop's
``ClusterSource`` (observe, events, cordon, evict) and reads ``totals`` for samples. The queue
of pending pods and the scheduling passes are ``simulator.scheduling_queue``; placement itself
is ``simulator.scheduler``. Pod lifecycles are written to the ``Recorder``: created,
bound, finished, evicted, lost.

Evictions follow the Eviction API: a pod several PodDisruptionBudgets select is refused
(ERROR, the API server's 500), one whose budget allows no disruption now is refused with
BLOCKED_BY_PDB (429), budgets computed from the live pods as the disruption controller would
(``model.disruption.allowed_disruptions``). An evicted pod ends at once (grace periods are not
modelled) and, like a pod that lost its node, comes back pending when a controller owns it.
Deleting a node that still holds pods a budget protects beyond what it allows is counted as a
PodDisruptionBudget violation; a Spot eviction notice taints the node as AKS node auto-drain
does (``EVICTION_NOTICE_TAINT``).

Lifecycle: a pod is submitted pending, bound by a scheduling pass, and ends by ``finish``
(completed or deleted) or by losing its node: a controller-owned pod is then replaced by a new
pending pod of the same workload (as its ReplicaSet/Job would), a bare pod is lost. Any change
that may let a blocked pod bind (a node Ready or uncordoned, capacity freed, a pod bound or
gone) is passed on to the queue, which coalesces them into scheduling passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from autoscaler.cloud.provider import DELETE_MACHINES
from autoscaler.kube.source import EvictionResult, Observation
from autoscaler.model.disruption import (
    EVICTION_NOTICE_TAINT,
    PodDisruptionBudget,
    allowed_disruptions,
)
from autoscaler.model.node import Node, Taint
from autoscaler.model.pod import Pod
from simulator.engine import NODE, Engine
from simulator.metrics import Recorder
from simulator.scheduler import NodeTable
from simulator.scheduling_queue import Entry, SchedulingQueue

NOT_TRIGGER_SCALE_UP = "NotTriggerScaleUp"

BindListener = Callable[[Pod, str], None]


class SimCluster:
    """Nodes and pods of the simulated cluster; a ``ClusterSource`` for the control loop."""

    def __init__(
        self, engine: Engine, recorder: Recorder, pdbs: Sequence[PodDisruptionBudget] = ()
    ) -> None:
        self._engine = engine
        self._recorder = recorder
        self.pdbs = tuple(pdbs)
        self._table = NodeTable()
        self._pods: dict[str, Entry] = {}  # live pods by key, in submission order
        self._queue = SchedulingQueue(engine, self._table, self._pods, self._bind)
        self._pending: dict[str, dict[str, None]] = {}  # workload -> keys, creation order
        self._running: dict[str, dict[str, None]] = {}  # workload -> keys, bind order
        self._pending_count = 0
        self._generation: dict[str, int] = {}  # node name -> add count, to drop stale timers
        self._seq = 0
        self._replacements = 0
        self._view: Observation | None = None
        self._listeners: list[BindListener] = []

    @property
    def passes(self) -> int:
        """Scheduling passes run so far."""
        return self._queue.passes

    # -- nodes -----------------------------------------------------------------------------

    def add_node(self, node: Node, *, ready_after: float) -> None:
        """Register ``node`` now, not Ready; it turns Ready ``ready_after`` seconds later."""
        if node.name in self._table.index:
            raise ValueError(f"node {node.name} is already registered")
        self._table.add(replace(node, ready=False))
        generation = self._generation.get(node.name, 0) + 1
        self._generation[node.name] = generation
        self._view = None
        self._engine.after(ready_after, lambda: self._ready(node.name, generation), NODE)

    def _ready(self, name: str, generation: int) -> None:
        slot = self._table.index.get(name)
        if slot is None or self._generation.get(name) != generation:
            return  # removed before it became Ready
        self._table.set_ready(slot)
        self._view = None
        self._queue.activate(self._table.unblock_fitting(slot))

    def remove_node(self, name: str, reason: str) -> None:
        """Delete the node; its pods are evicted. Unknown names are ignored (already gone)."""
        slot = self._table.index.get(name)
        if slot is None:
            return
        if reason == DELETE_MACHINES:
            held = self._table.pods_on(slot)
            self._check_budgets(held)
            for _ in held:
                self._recorder.pod_disrupted()
        evicted = self._table.remove(slot)
        self._view = None
        for pod in evicted:
            self._end_evicted(pod, f"node {name} removed ({reason})")
        # Losing a domain and its pods can lower any spread skew.
        self._queue.activate_spread_blocked()

    def _end_evicted(self, pod: Pod, why: str) -> None:
        """A bound pod was taken off its node: its controller re-creates it, or it is lost."""
        now = self._engine.now
        entry = self._pods.pop(pod.key)
        del self._running[entry.workload][pod.key]
        self._recorder.pod_evicted(pod.key)
        if not pod.owner:
            self._recorder.pod_lost(pod.key, why, now)
            return
        self._recorder.pod_finished(pod.key, now)
        self._enqueue(self._replacement(pod, entry.lineage), entry.workload, entry.lineage)

    def _check_budgets(self, pods: list[Pod]) -> None:
        """Count the budgets that removing ``pods`` at once (a node deleted with pods still on
        it) takes below their minimum."""
        if not self.pdbs or not pods:
            return
        live = [entry.pod for entry in self._pods.values()]
        for pdb in self.pdbs:
            hit = sum(pdb.selects(p) for p in pods)
            if hit and hit > allowed_disruptions(pdb, live):
                self._recorder.pdb_violated(pdb.key)

    # -- ClusterSource: scale-down -----------------------------------------------------------

    def cordon(self, node: str, unschedulable: bool) -> None:
        """Set the node's ``unschedulable``; uncordoning lets blocked pods try it again."""
        slot = self._table.index.get(node)
        if slot is None:
            return
        current = self._table.node(slot)
        if current.unschedulable == unschedulable:
            return
        self._table.update(slot, replace(current, unschedulable=unschedulable))
        self._view = None
        if not unschedulable:
            self._queue.activate(self._table.unblock_fitting(slot))

    def evict(self, pod: Pod, grace_seconds: int | None) -> EvictionResult:
        """The Eviction API on the simulated cluster (see the module docstring)."""
        entry = self._pods.get(pod.key)
        if entry is None or entry.pending:
            return EvictionResult.GONE
        budgets = [p for p in self.pdbs if p.selects(entry.pod)]
        if len(budgets) > 1:
            return EvictionResult.ERROR
        if budgets:
            live = [e.pod for e in self._pods.values()]
            if allowed_disruptions(budgets[0], live) < 1:
                self._recorder.eviction_blocked()
                return EvictionResult.BLOCKED_BY_PDB
        node = entry.pod.node_name or ""
        slot = self._table.index[node]
        self._table.unbind(slot, entry.pod, entry.ident)
        self._recorder.pod_disrupted()
        self._end_evicted(entry.pod, f"evicted from node {node}")
        self._view = None
        self._queue.activate(self._table.unblock_fitting(slot))
        self._queue.spread_changed(entry.pod)
        return EvictionResult.EVICTED

    def eviction_notice(self, name: str) -> None:
        """A Spot VM got its Preempt notice: taint the node as AKS node auto-drain does."""
        slot = self._table.index.get(name)
        if slot is None:
            return
        node = self._table.node(slot)
        if any(t.key == EVICTION_NOTICE_TAINT for t in node.taints):
            return
        taint = Taint(EVICTION_NOTICE_TAINT, "true")
        self._table.update(slot, replace(node, taints=(*node.taints, taint)))
        self._view = None

    def _replacement(self, pod: Pod, lineage: tuple[str, str]) -> Pod:
        """The pod its controller creates instead: ``<first name>-r<n>``, never a live key."""
        base_name, base_uid = lineage
        while True:
            self._replacements += 1
            suffix = f"-r{self._replacements}"
            if f"{pod.namespace}/{base_name}{suffix}" not in self._pods:
                break
        uid = base_uid + suffix if base_uid else ""
        return replace(pod, name=base_name + suffix, uid=uid, node_name=None)

    def node_names(self, pool: str) -> list[str]:
        """Registered nodes of ``pool`` (Ready or not), by name."""
        return sorted(n for n, s in self._table.index.items() if self._table.node(s).pool == pool)

    # -- pods ------------------------------------------------------------------------------

    def submit(self, pod: Pod, workload: str) -> None:
        """A new pending pod of ``workload`` arrives now."""
        if pod.node_name is not None:
            raise ValueError(f"pod {pod.key} must arrive pending, not bound to {pod.node_name}")
        if pod.key in self._pods:
            raise ValueError(f"pod {pod.key} already exists")
        self._enqueue(pod, workload, (pod.name, pod.uid))

    def _enqueue(self, pod: Pod, workload: str, lineage: tuple[str, str]) -> None:
        now = self._engine.now
        ident = self._queue.ident_of(pod)
        self._seq += 1
        entry = self._pods[pod.key] = Entry(pod, workload, ident, self._seq, lineage)
        self._queue.push(entry, now)
        self._pending_count += 1
        self._pending.setdefault(workload, {})[pod.key] = None
        self._recorder.pod_created(pod.key, workload, now)
        self._view = None
        if not self._table.blocked[ident]:
            self._queue.activate([ident])

    def finish(self, key: str) -> None:
        """The pod completed or was deleted. Unknown keys (already evicted) are ignored."""
        entry = self._pods.pop(key, None)
        if entry is None:
            return
        self._recorder.pod_finished(key, self._engine.now)
        self._view = None
        if entry.pending:
            self._queue.drop(entry.ident)
            self._pending_count -= 1
            del self._pending[entry.workload][key]
            return
        del self._running[entry.workload][key]
        slot = self._table.index[entry.pod.node_name or ""]
        self._table.unbind(slot, entry.pod, entry.ident)
        self._queue.activate(self._table.unblock_fitting(slot))
        self._queue.spread_changed(entry.pod)

    def pending_keys(self, workload: str) -> list[str]:
        """Pending pods of ``workload``, oldest first."""
        return list(self._pending.get(workload, ()))

    def running_keys(self, workload: str) -> list[str]:
        """Bound pods of ``workload``, in the order they were bound (newest last)."""
        return list(self._running.get(workload, ()))

    def on_bind(self, listener: BindListener) -> None:
        """Call ``listener(bound_pod, workload)`` after every binding. It runs inside a
        scheduling pass: it must not change the cluster itself, only schedule (engine) work."""
        self._listeners.append(listener)

    # -- bindings --------------------------------------------------------------------------

    def _bind(self, entry: Entry, slot: int) -> None:
        """The queue placed ``entry``'s pod on the node in ``slot``: bind it there."""
        now = self._engine.now
        node = self._table.node(slot)
        bound = replace(entry.pod, node_name=node.name)
        key = bound.key
        entry.pod = bound
        entry.pending = False
        self._pending_count -= 1
        del self._pending[entry.workload][key]
        self._running.setdefault(entry.workload, {})[key] = None
        self._table.bind(slot, bound, self._queue.need(entry.ident))
        self._recorder.pod_bound(key, now, node.name)
        self._view = None
        self._queue.spread_changed(bound)
        for listener in self._listeners:
            listener(bound, entry.workload)

    # -- ClusterSource ---------------------------------------------------------------------

    def observe(self) -> Observation:
        """Pending and bound pods (submission order) and registered nodes (by name)."""
        if self._view is None:
            pods = tuple(entry.pod for entry in self._pods.values())
            self._view = Observation(pods, tuple(self._table.nodes()), self.pdbs)
        return self._view

    def record_event(self, pod: Pod, reason: str, message: str) -> None:
        self._recorder.event(reason)
        if reason == NOT_TRIGGER_SCALE_UP:
            self._recorder.pod_reason(pod.key, message)

    # -- samples ---------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        """Pod counts, and requested / allocatable cpu (millicores) and memory (bytes) summed
        over Ready nodes; also ``nodes`` (registered) and ``ready_nodes``."""
        return {
            "pending": self._pending_count,
            "running": len(self._pods) - self._pending_count,
            **self._table.totals(),
        }
