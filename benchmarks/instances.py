"""Deterministic benchmark instances: pending-pod backlogs against AKS node options.

Callers: ``benchmarks.planner_bench`` (the suites it times and scores) and the unit tests.

Every instance is built from a seeded ``numpy.random.Generator`` passed in, so one seed gives the
same ``ClusterState`` on every machine. Instances reuse the planner's own option builder
(``planner.options.build_options``) over the shipped VM-size catalog, so templates, prices and
the spot taint are what the autoscaler would see on AKS.

Scale suite (``scale_suite``): 1k / 10k / 100k pending pods in 50 / 500 / 2,000 shapes against
60 options (10 VM sizes of the D, E and F families, 2 to 32 vCPUs, x 3 zones x spot/regular),
each size plain and "+nodes" (50 / 200 / 1,000 registered nodes 30-90 % full). Small suite
(``small_suite``): 20 to 200 pods in 3 to 10 shapes against 4 to 18 options, small enough for the
exact ILP.

Shapes are realistic request mixes: cpu log-normal around 500m within 100m-16 cores, memory
correlated (1-8 GiB per core) within 128Mi-64Gi, big shapes with fewer replicas. About 60 % of
shapes tolerate spot, 15 % require a zone spread (maxSkew 1), 10 % select the label
``surge.dev/workload=memory`` that only the E-family pools carry, and every scale instance has
one shape no VM size can hold (48 cores), which must end up unplaced with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from autoscaler.model.aks import SPOT_TAINT, Catalog, load_catalog
from autoscaler.model.labels import HOSTNAME_LABEL, SPOT_LABEL, ZONE_LABEL, LabelSelector
from autoscaler.model.node import Node
from autoscaler.model.pod import Container, Pod, Toleration, TopologySpread
from autoscaler.model.pool import AgentPool, NodeOption, Priority
from autoscaler.model.resources import CPU, MEMORY, Resources
from autoscaler.model.state import ClusterState
from autoscaler.planner.options import build_options

REGION = "eastus"
ZONES = ("1", "2", "3")
NAMESPACE = "bench"
MiB = 2**20
GiB = 2**30
WORKLOAD_LABEL = "surge.dev/workload"
# Short pool-name stem per size: family letter and vCPUs (pool "d16-spot-2").
VM_SIZES: tuple[tuple[str, str], ...] = (
    ("d2", "Standard_D2s_v5"),
    ("d4", "Standard_D4s_v5"),
    ("d8", "Standard_D8s_v5"),
    ("d16", "Standard_D16s_v5"),
    ("d32", "Standard_D32s_v5"),
    ("e4", "Standard_E4s_v5"),
    ("e8", "Standard_E8s_v5"),
    ("e16", "Standard_E16s_v5"),
    ("f8", "Standard_F8s_v2"),
    ("f16", "Standard_F16s_v2"),
)
# name -> (pending pods, shapes, registered nodes in the "+nodes" variant)
SCALE_SIZES: dict[str, tuple[int, int, int]] = {
    "1k": (1_000, 50, 50),
    "10k": (10_000, 500, 200),
    "100k": (100_000, 2_000, 1_000),
}
SPOT_TOLERATION = Toleration(key=SPOT_LABEL, operator="Equal", value="spot",
                             effect=SPOT_TAINT.effect)


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    suite: str  # "scale" or "small"
    summary: str
    state: ClusterState
    pods: int  # pending pods
    shapes: int
    nodes: int  # registered nodes


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    cpu_m: int
    memory: int
    count: int
    spot_ok: bool
    zone_spread: bool
    memory_pools_only: bool


def pool_name(stem: str, priority: Priority, zone: str) -> str:
    return f"{stem}-{'spot' if priority is Priority.SPOT else 'reg'}-{zone}"


def make_pools(sizes: Sequence[tuple[str, str]], zones: Sequence[str], rng: np.random.Generator,
               *, max_count: int, capped_share: float = 0.1) -> list[AgentPool]:
    """One pool per (size, priority, zone); ``capped_share`` of them get a small maxCount."""
    pools: list[AgentPool] = []
    for stem, vm_size in sizes:
        labels = ((WORKLOAD_LABEL, "memory"),) if stem.startswith("e") else ()
        for priority in (Priority.SPOT, Priority.REGULAR):
            for zone in zones:
                cap = int(rng.integers(5, 40)) if rng.random() < capped_share else max_count
                pools.append(AgentPool(name=pool_name(stem, priority, zone), vm_size=vm_size,
                                       count=0, max_count=cap, zones=(zone,), priority=priority,
                                       labels=labels, max_pods=110))
    return pools


def make_shapes(rng: np.random.Generator, n_shapes: int, n_pods: int, prefix: str) -> list[Shape]:
    """``n_shapes`` request shapes sharing ``n_pods`` pods (each at least one)."""
    cpu = np.exp(rng.normal(math.log(500), 1.1, n_shapes))
    cpu = np.clip(np.round(cpu / 50) * 50, 100, 16_000).astype(np.int64)
    per_core = rng.choice([1.0, 2.0, 4.0, 8.0], size=n_shapes, p=[0.2, 0.4, 0.3, 0.1])
    per_core = per_core * rng.lognormal(0.0, 0.3, n_shapes)
    memory = np.clip(cpu / 1000 * per_core * GiB, 128 * MiB, 64 * GiB)
    memory = (np.ceil(memory / (64 * MiB)) * 64 * MiB).astype(np.int64)
    weight = rng.lognormal(0.0, 1.0, n_shapes) / np.sqrt(cpu / 500)
    counts = 1 + rng.multinomial(n_pods - n_shapes, weight / weight.sum())
    spot_ok = rng.random(n_shapes) < 0.6
    spread = rng.random(n_shapes) < 0.15
    memory_only = rng.random(n_shapes) < 0.1
    shapes = []
    for i in range(n_shapes):
        # E16 is the largest pool with the label: keep its shapes within its allocatable cpu.
        c = min(int(cpu[i]), 8_000) if memory_only[i] else int(cpu[i])
        shapes.append(Shape(f"{prefix}{i:04d}", c, int(memory[i]), int(counts[i]),
                            bool(spot_ok[i]), bool(spread[i]), bool(memory_only[i])))
    return shapes


def shape_pods(shape: Shape) -> list[Pod]:
    """The pending pods of a shape; all share one spec (one equivalence group)."""
    labels = (("app", shape.name),)
    containers = (Container("main", Resources.of({CPU: shape.cpu_m, MEMORY: shape.memory})),)
    spread = (
        (TopologySpread(1, ZONE_LABEL, "DoNotSchedule", LabelSelector(labels)),)
        if shape.zone_spread else ()
    )
    selector = ((WORKLOAD_LABEL, "memory"),) if shape.memory_pools_only else ()
    tolerations = (SPOT_TOLERATION,) if shape.spot_ok else ()
    owner = f"ReplicaSet/{shape.name}"
    return [
        Pod(name=f"{shape.name}-{i:05d}", namespace=NAMESPACE, uid=f"{shape.name}-{i}",
            owner=owner, labels=labels, containers=containers, node_selector=selector,
            tolerations=tolerations, topology_spread=spread)
        for i in range(shape.count)
    ]


def existing_nodes(rng: np.random.Generator, options: Sequence[NodeOption], n_nodes: int
                   ) -> tuple[list[Node], list[Pod]]:
    """``n_nodes`` registered nodes of random options, each 30-90 % used (cpu, memory apart)."""
    nodes: list[Node] = []
    pods: list[Pod] = []
    picks = rng.integers(0, len(options), n_nodes)
    used = rng.uniform(0.3, 0.9, (n_nodes, 2))
    for i, o in enumerate(picks.tolist()):
        option = options[o]
        name = f"aks-{option.pool}-{i:05d}"
        labels = tuple(sorted(
            [(k, v) for k, v in option.template.labels if k != HOSTNAME_LABEL]
            + [(HOSTNAME_LABEL, name)]
        ))
        alloc = option.template.allocatable
        nodes.append(Node(name=name, pool=option.pool, labels=labels,
                          taints=option.template.taints, allocatable=alloc))
        request = Resources.of({CPU: int(alloc.get_units(CPU) * used[i, 0]),
                                MEMORY: int(alloc.get_units(MEMORY) * used[i, 1])})
        pods.append(Pod(name=f"running-{i:05d}", namespace=NAMESPACE, uid=f"running-{i}",
                        owner=f"ReplicaSet/running-{i % 7}", labels=(("app", "running"),),
                        containers=(Container("main", request),), node_name=name,
                        tolerations=(SPOT_TOLERATION,)))
    return nodes, pods


def build_state(pools: Sequence[AgentPool], shapes: Sequence[Shape], n_nodes: int,
                rng: np.random.Generator, catalog: Catalog) -> ClusterState:
    """A state with the shapes' pending pods and ``n_nodes`` partly used registered nodes."""
    options, warnings = build_options(REGION, pools, (), catalog)
    if warnings:
        raise RuntimeError(f"benchmark pools refused: {warnings}")
    nodes, bound = existing_nodes(rng, options, n_nodes)
    if nodes:
        per_pool: dict[str, int] = {}
        for node in nodes:
            per_pool[node.pool or ""] = per_pool.get(node.pool or "", 0) + 1
        pools = [replace(p, count=per_pool.get(p.name, 0),
                         max_count=max(p.max_count, per_pool.get(p.name, 0)))
                 for p in pools]
        options, _ = build_options(REGION, pools, nodes, catalog)
    pending = [pod for shape in shapes for pod in shape_pods(shape)]
    return ClusterState(region=REGION, pools=tuple(pools), options=options, nodes=tuple(nodes),
                        pods=tuple(bound + pending))


def scale_instance(size: str, with_nodes: bool, rng: np.random.Generator,
                   catalog: Catalog | None = None) -> Instance:
    n_pods, n_shapes, n_nodes = SCALE_SIZES[size]
    n_nodes = n_nodes if with_nodes else 0
    pools = make_pools(VM_SIZES, ZONES, rng, max_count=1000)
    shapes = make_shapes(rng, n_shapes, n_pods, "s")
    # One shape no VM size can hold: it must come back unplaced with a reason.
    shapes[-1] = replace(shapes[-1], cpu_m=48_000, memory=64 * GiB, memory_pools_only=False)
    state = build_state(pools, shapes, n_nodes, rng, catalog or load_catalog())
    name = f"{size}+nodes" if with_nodes else size
    summary = (f"{n_pods} pods, {n_shapes} shapes, {len(state.options)} options"
               + (f", {n_nodes} nodes 30-90% full" if with_nodes else ""))
    return Instance(name, "scale", summary, state, n_pods, n_shapes, n_nodes)


# (pods, shapes, VM sizes, zones, registered nodes) of the small suite.
SMALL_CASES: tuple[tuple[int, int, int, int, int], ...] = (
    (20, 3, 2, 1, 0),
    (40, 4, 2, 2, 0),
    (60, 5, 3, 1, 0),
    (80, 6, 2, 2, 2),
    (100, 6, 4, 1, 0),
    (120, 8, 2, 2, 0),
    (160, 8, 3, 2, 3),
    (200, 10, 3, 3, 0),
)


def small_instance(index: int, rng: np.random.Generator, catalog: Catalog | None = None
                   ) -> Instance:
    n_pods, n_shapes, n_sizes, n_zones, n_nodes = SMALL_CASES[index]
    picks = sorted(rng.choice(len(VM_SIZES), n_sizes, replace=False).tolist())
    sizes = [VM_SIZES[i] for i in picks]
    pools = make_pools(sizes, ZONES[:n_zones], rng, max_count=100, capped_share=0.0)
    shapes = make_shapes(rng, n_shapes, n_pods, f"q{index}-")
    # Every shape must fit every picked size (Standard_D2s_v5 included), with no selector.
    state = build_state(pools, [_fit_small(s) for s in shapes], n_nodes, rng,
                        catalog or load_catalog())
    summary = (f"{n_pods} pods, {n_shapes} shapes, {len(state.options)} options"
               + (f", {n_nodes} nodes" if n_nodes else ""))
    return Instance(f"small-{index + 1}", "small", summary, state, n_pods, n_shapes, n_nodes)


def _fit_small(shape: Shape) -> Shape:
    return replace(shape, cpu_m=min(shape.cpu_m, 1_500), memory=min(shape.memory, 4 * GiB),
                   memory_pools_only=False)


def scale_suite(seed: int, sizes: Sequence[str] = tuple(SCALE_SIZES)) -> list[Instance]:
    """The scale instances for ``sizes``, plain then "+nodes"; each has its own seeded stream."""
    catalog = load_catalog()
    out: list[Instance] = []
    for size in sizes:
        k = list(SCALE_SIZES).index(size)
        for with_nodes in (False, True):
            rng = np.random.default_rng([seed, 1, k, int(with_nodes)])
            out.append(scale_instance(size, with_nodes, rng, catalog))
    return out


def small_suite(seed: int) -> list[Instance]:
    catalog = load_catalog()
    return [small_instance(i, np.random.default_rng([seed, 2, i]), catalog)
            for i in range(len(SMALL_CASES))]
