"""Differential test: the planner's belief "group g fits option o" (``encode(state).compat``)
against SimCluster binding one such pod to a node built from the option's template.

Both sides call ``autoscaler.model.constraints``; this checks that the planner's encoding (one
verdict per placement signature, sizes compared as arrays) and the scheduler's (cached verdicts
per node class, vectorised free-capacity test, spread and anti-affinity on a real node) agree.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.model.aks import load_catalog
from autoscaler.model.labels import (
    AGENTPOOL_LABEL,
    HOSTNAME_LABEL,
    INSTANCE_TYPE_LABEL,
    SPOT_LABEL,
    ZONE_LABEL,
    LabelSelector,
    Operator,
    Requirement,
    labels_of,
)
from autoscaler.model.node import Node, Taint
from autoscaler.model.pod import (
    AntiAffinity,
    Container,
    NodeSelectorTerm,
    Pod,
    TaintEffect,
    Toleration,
    TopologySpread,
)
from autoscaler.model.pool import AgentPool, NodeOption, Priority
from autoscaler.planner.encode import encode
from autoscaler.planner.options import build_options
from simulator.cluster import SimCluster
from simulator.engine import Engine
from simulator.metrics import Recorder
from tests.builders import SPOT_TOLERATION, GiB, MiB, option, pod, pool, res, state

T = TypeVar("T")
Z1, Z2 = "eastus-1", "eastus-2"
WEB_SELECTOR = LabelSelector(labels_of({"app": "web"}))
AVOID_WEB = (AntiAffinity(HOSTNAME_LABEL, WEB_SELECTOR),)


def spread(key: str = ZONE_LABEL, **fields: object) -> tuple[TopologySpread, ...]:
    return (TopologySpread(1, key, label_selector=WEB_SELECTOR, **fields),)  # type: ignore[arg-type]


CATALOG = load_catalog()
VM_SIZES = ["Standard_D4s_v5", "Standard_D16s_v5", "Standard_NC4as_T4_v3", "Standard_B2s_v2"]
CUSTOM_TAINT = Taint("dedicated", "batch", TaintEffect.NO_SCHEDULE)
SOFT_TAINT = Taint("soft", "yes", TaintEffect.PREFER_NO_SCHEDULE)


@st.composite
def agent_pools(draw: st.DrawFn) -> list[AgentPool]:
    count = draw(st.integers(1, 4))
    pools = []
    for i in range(count):
        vm = draw(st.sampled_from(VM_SIZES))
        priority = Priority.REGULAR if vm.startswith("Standard_B") else draw(
            st.sampled_from(list(Priority)))
        pools.append(pool(
            f"pool{i}",
            vm,
            zones=draw(st.sampled_from([("1",), ("2",), ("3",), ("1", "2"), ()])),
            priority=priority,
            labels=labels_of(draw(st.dictionaries(
                st.sampled_from(["disktype", "gen", "rack"]), st.sampled_from(["ssd", "3", "5"]),
                max_size=2))),
            taints=draw(st.sampled_from([(), (), (SOFT_TAINT,), (CUSTOM_TAINT,)])),
            max_pods=draw(st.sampled_from([30, 110])),
        ))
    return pools


SELECTOR_PAIRS = [
    (ZONE_LABEL, Z1), (ZONE_LABEL, Z2), (AGENTPOOL_LABEL, "pool0"), ("disktype", "ssd"),
    (INSTANCE_TYPE_LABEL, "Standard_D4s_v5"), (HOSTNAME_LABEL, "pool1-template"), ("gen", "5"),
]
REQUIREMENTS = st.builds(
    Requirement,
    st.sampled_from([ZONE_LABEL, "disktype", "gen", SPOT_LABEL, "rack"]),
    st.sampled_from(list(Operator)),
    st.lists(st.sampled_from([Z1, "eastus-3", "ssd", "3", "4", "spot"]), max_size=2).map(tuple),
)
TOLERATIONS = [
    (),
    (SPOT_TOLERATION,),
    (SPOT_TOLERATION,),
    (SPOT_TOLERATION,),
    (Toleration(operator="Exists"),),
    (Toleration("dedicated", "Equal", "batch", TaintEffect.NO_SCHEDULE),),
]
SPREADS = [
    (),
    (),
    (),
    spread(),
    spread(HOSTNAME_LABEL),
    spread("rack"),
    spread("rack", when_unsatisfiable="ScheduleAnyway"),
    spread(min_domains=3),
]


@st.composite
def pending_pods(draw: st.DrawFn, index: int) -> Pod:
    def rarely(strategy: st.SearchStrategy[T], default: T) -> T:
        # No constraint three draws in four, so that fitting pairs stay common.
        return draw(strategy) if draw(st.sampled_from([False, False, False, True])) else default

    cpu = draw(st.sampled_from([100, 100, 1000, 3500, 15000, 70000]))
    mem = draw(st.sampled_from([128 * MiB, 128 * MiB, 8 * GiB, 13 * GiB, 60 * GiB]))
    storage = rarely(st.sampled_from([10 * GiB, 200 * GiB]), 0)
    requests = res(cpu, mem, gpu=rarely(st.just(1), 0), ephemeral_storage=storage)
    terms = st.lists(REQUIREMENTS, min_size=1, max_size=2).map(lambda r: NodeSelectorTerm(tuple(r)))
    pairs = st.lists(st.sampled_from(SELECTOR_PAIRS), min_size=1, max_size=2)
    base = pod(
        f"w{index}",
        labels={"app": "web"},
        owner=f"ReplicaSet/w{index}",
        node_selector=labels_of(dict(rarely(pairs, []))),
        required_affinity=tuple(rarely(st.lists(terms, min_size=1, max_size=2), [])),
        tolerations=draw(st.sampled_from(TOLERATIONS)),
        topology_spread=draw(st.sampled_from(SPREADS)),
        anti_affinity=draw(st.sampled_from([(), AVOID_WEB])),
        volume_zones=rarely(st.sampled_from([(Z1,), (Z2, "eastus-3")]), None),
        priority=draw(st.sampled_from([0, 100])),
    )
    return replace(base, containers=(Container("main", requests),))


@st.composite
def planner_cases(draw: st.DrawFn) -> tuple[list[AgentPool], list[NodeOption], list[Pod]]:
    pools = draw(agent_pools())
    built, _ = build_options("eastus", pools, (), CATALOG)
    by_pool = {o.pool: o for o in built}
    options = []
    for p in pools:
        # Hand-set templates too (tests.builders.option): sizes the catalog does not decide.
        if p.name in by_pool and draw(st.booleans()):
            options.append(by_pool[p.name])
        else:
            options.append(option(p, draw(st.sampled_from([1900, 3860, 15820])),
                                  draw(st.sampled_from([6, 12, 58])) * GiB,
                                  gpus=draw(st.sampled_from([0, 1]))))
    pods = [draw(pending_pods(i)) for i in range(draw(st.integers(1, 4)))]
    return pools, options, pods


def _binds_on_template(group_pod: Pod, chosen: NodeOption) -> bool:
    template = chosen.template
    name = dict(template.labels)[HOSTNAME_LABEL]
    engine = Engine(datetime(2026, 11, 25, tzinfo=UTC))
    cluster = SimCluster(engine, Recorder())
    node = Node(name, chosen.pool, template.labels, template.taints, template.allocatable)
    cluster.add_node(node, ready_after=0.0)
    cluster.submit(group_pod, "w")
    engine.run(1.0)
    return [p.node_name for p in cluster.observe().pods] == [name]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planner_cases())
def test_the_planner_believes_a_group_fits_an_option_exactly_when_the_scheduler_binds_it(
    case: tuple[list[AgentPool], list[NodeOption], list[Pod]],
) -> None:
    pools, options, pods = case
    encoded = encode(state(pools, options, pods))
    for g, group in enumerate(encoded.groups):
        for o, chosen in enumerate(encoded.options):
            believed = bool(encoded.compat[g, o])
            assert _binds_on_template(group.pod, chosen) == believed, (group.key, chosen.pool)
