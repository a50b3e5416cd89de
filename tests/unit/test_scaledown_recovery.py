"""Surge's cordon mark, and drains an earlier leader left half-way, on a hand-moved clock:
the loop marks what it cordons and unmarks what it uncordons; a new term undoes its
predecessor's leftovers once, and never a person's cordon or a node a deletion still covers."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from autoscaler.cloud.fake import FakeCloud
from autoscaler.cloud.provider import Operation
from autoscaler.cloud.store import MemoryStore
from autoscaler.control.clock import FixedClock
from autoscaler.control.controller import Controller
from autoscaler.control.loop import LoopConfig, Reconciler
from autoscaler.control.scaledown import ScaleDownConfig, ScaleDownReport
from autoscaler.kube.fake import FakeSource
from autoscaler.model.disruption import SCALE_DOWN_MARK
from tests.builders import GiB, node, pod, pool

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEFT = "2026-11-25T11:40:00Z"  # when the earlier leader started its drain
MINUTE = timedelta(minutes=1)


def cluster(
    marked: Collection[str] = (), cordoned: Collection[str] = (), busy: bool = True
) -> tuple[FakeSource, FakeCloud, FixedClock]:
    """Pool ``reg1`` with nodes n1..n3, each busy enough to stay (unless ``busy`` is False:
    then n1 is empty and unneeded)."""
    nodes = [node(name, pool="reg1", unschedulable=name in cordoned,
                  annotations={SCALE_DOWN_MARK: LEFT} if name in marked else None)
             for name in ("n1", "n2", "n3")]
    pods = [pod(f"busy-{n.name}", 2500, GiB, owner="ReplicaSet/busy", node_name=n.name)
            for n in nodes if busy or n.name != "n1"]
    clock = FixedClock(NOW)
    cloud = FakeCloud([pool("reg1", "Standard_D4s_v5", count=3, max_count=10)], NOW)
    return FakeSource(pods, nodes, now=clock.now), cloud, clock


def loop(source: FakeSource, cloud: FakeCloud, clock: FixedClock, *ops: Operation,
         dry_run: bool = False, **scale_down: Any) -> Reconciler:
    """A new leader's loop; ``ops`` are what the earlier leader left in the store."""
    store = MemoryStore()
    for op in ops:
        store.save(op)
        cloud.pending.add(op.token)
    config = LoopConfig(dry_run=dry_run, scale_down=ScaleDownConfig(**scale_down))
    return Reconciler(source, cloud, clock, config, store=store)


def state(source: FakeSource) -> dict[str, tuple[bool, str | None]]:
    """Node -> (cordoned, surge's mark)."""
    return {n.name: (n.unschedulable, dict(n.annotations).get(SCALE_DOWN_MARK))
            for n in source.nodes}


def down(reconciler: Reconciler) -> ScaleDownReport:
    report = reconciler.run_once().scale_down
    assert report is not None
    return report


def deleting(*machines: str, token: str = "op-old") -> Operation:
    return Operation("reg1", "delete-machines", 3 - len(machines), token, NOW - MINUTE, machines)


def test_a_cordon_marks_the_node_with_the_drain_start_and_the_uncordon_removes_the_mark() -> None:
    source, cloud, clock = cluster(busy=False)
    reconciler = loop(source, cloud, clock)
    reconciler.run_once()
    clock.current += timedelta(minutes=10)
    cloud.failures["reg1"] = ["InternalOperationError"]  # the deletion fails: n1 comes back
    assert down(reconciler).cordoned == ("n1",)
    assert state(source)["n1"] == (True, "2026-11-25T12:10:00Z")
    clock.current += MINUTE
    reconciler.run_once()
    assert source.cordons == [("n1", True), ("n1", False)]
    assert state(source)["n1"] == (False, None)


@pytest.mark.parametrize(("marked", "cordoned", "uncordoned", "unmarked"), [
    pytest.param(["n1"], ["n1"], ("n1",), (), id="cordoned and marked by an earlier leader"),
    pytest.param(["n1"], [], (), ("n1",), id="marked, uncordoned since by a person"),
    pytest.param([], ["n1"], (), (), id="cordoned by a person, no mark"),
    pytest.param(["n1", "n3"], ["n1", "n2", "n3"], ("n1", "n3"), (), id="several, one a person's"),
])
def test_a_new_leader_undoes_only_the_cordons_surge_left_behind(
    marked: list[str], cordoned: list[str], uncordoned: tuple[str, ...],
    unmarked: tuple[str, ...],
) -> None:
    source, cloud, clock = cluster(marked, cordoned)
    report = down(loop(source, cloud, clock))
    assert (report.uncordoned, report.unmarked) == (uncordoned, unmarked)
    assert source.cordons == [(name, False) for name in sorted(uncordoned + unmarked)]
    # Every mark is gone; a person's cordon stays.
    assert state(source) == {name: (name in cordoned and name not in marked, None)
                             for name in ("n1", "n2", "n3")}


@pytest.mark.parametrize(("code", "after"), [
    (None, []),  # deleted: the node goes away cordoned
    ("InternalOperationError", [("n1", False)]),  # not deleted: uncordoned like any failure
])
def test_a_marked_node_whose_stored_deletion_is_in_flight_is_left_until_the_deletion_ends(
    code: str | None, after: list[tuple[str, bool]]
) -> None:
    source, cloud, clock = cluster(["n1", "n2"], ["n1", "n2"])
    reconciler = loop(source, cloud, clock, deleting("n1"))
    report = down(reconciler)
    assert report.uncordoned == ("n2",)  # drained too, but not in the deletion: it comes back
    assert report.skipped == "1 node(s) still draining or being deleted"
    assert state(source)["n1"] == (True, LEFT)
    clock.current += MINUTE
    cloud.finish("op-old", code)
    down(reconciler)
    assert source.cordons == [("n2", False), *after]


def test_a_deletion_stored_without_machine_names_covers_every_marked_node_of_its_pool() -> None:
    source, cloud, clock = cluster(["n1", "n2"], ["n1", "n2"])
    report = down(loop(source, cloud, clock, deleting()))
    assert (report.uncordoned, source.cordons) == ((), [])


@pytest.mark.parametrize(("code", "cordons"), [
    (None, []),
    ("InternalOperationError", [("n1", False)]),
])
def test_a_stored_deletion_that_ended_before_the_first_look_decides_for_its_nodes(
    code: str | None, cordons: list[tuple[str, bool]]
) -> None:
    source, cloud, clock = cluster(["n1"], ["n1"])
    reconciler = loop(source, cloud, clock, deleting("n1"))
    cloud.finish("op-old", code)  # the first poll of the term sees it ended
    down(reconciler)
    assert source.cordons == cordons


def test_leftovers_are_looked_for_once_per_term_not_every_pass() -> None:
    source, cloud, clock = cluster()
    reconciler = loop(source, cloud, clock)
    down(reconciler)
    source.nodes = [node("n1", pool="reg1", unschedulable=True,
                         annotations={SCALE_DOWN_MARK: LEFT}), *source.nodes[1:]]
    clock.current += MINUTE
    assert down(reconciler).uncordoned == ()  # within a term, a mark is this process's own
    assert down(loop(source, cloud, clock)).uncordoned == ("n1",)  # the next term's first pass


def test_an_undo_that_fails_is_reported_and_retried_until_it_lands() -> None:
    source, cloud, clock = cluster(["n1", "n2"], ["n1", "n2"])
    inner = source.cordon
    refusals = ["n1"]

    def flaky(name: str, unschedulable: bool) -> None:
        if name in refusals:
            refusals.remove(name)
            raise OSError("connection reset")
        inner(name, unschedulable)

    source.cordon = flaky  # type: ignore[method-assign]
    reconciler = loop(source, cloud, clock)
    report = down(reconciler)
    assert report.uncordoned == ("n2",)
    assert report.failed == ("n1: uncordon failed: connection reset",)
    assert [down(reconciler).uncordoned for _ in range(2)] == [("n1",), ()]
    assert state(source)["n1"] == (False, None)


@pytest.mark.parametrize(("settings", "cordons"), [
    ({"dry_run": True}, []),  # dry-run writes nothing
    ({"enabled": False}, [("n1", False)]),  # scale-down turned off since: still undone
])
def test_dry_run_leaves_leftovers_and_turning_scale_down_off_does_not(
    settings: dict[str, Any], cordons: list[tuple[str, bool]]
) -> None:
    source, cloud, clock = cluster(["n1"], ["n1"])
    down(loop(source, cloud, clock, **settings))
    assert source.cordons == cordons


def test_the_controller_counts_the_nodes_a_new_term_recovered() -> None:
    source, cloud, _ = cluster(["n1", "n2"], ["n1"])
    controller = Controller(source, cloud, FixedClock(NOW), LoopConfig())
    controller.step()
    metrics = controller.metrics.recovered
    assert (metrics.get(action="uncordoned"), metrics.get(action="unmarked")) == (1.0, 1.0)
