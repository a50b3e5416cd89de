"""The disruption controller and the Eviction API's budget rules, for the Kubernetes twin.

Callers: ``simulator.twin.kube_store.Store`` computes each PodDisruptionBudget's ``status`` here
whenever a pod it selects changes, and asks ``eviction_budget`` whether an eviction may go and
what the budget's status becomes. Pure: JSON objects in, JSON objects out; refusals are
``kube_select.ApiStatus`` errors, sent to the client as the API server sends them.

Rules kept (kube-controller-manager's disruption controller and the API server's eviction
handler): a pod counts as healthy when Running, Ready and not being deleted; expected pods are
the selected pods that have not ended (the controller's own count for an integer
``minAvailable``; for ``maxUnavailable`` and percentages it asks the workloads' scale, which
the twin, running no workload controllers, reads as the pods that exist: an evicted pod that
nothing re-creates leaves the count); ``desiredHealthy`` comes from ``minAvailable`` or
``maxUnavailable`` (percentages round up); a budget with neither allows nothing. A pod that is
pending, ended or already being deleted is evicted without a budget check; a pod under several
budgets cannot be evicted (500); a healthy pod needs ``disruptionsAllowed >= 1`` (429) and
spends one, recorded in ``disruptedPods``; an unhealthy pod may go while the budget is met
(``currentHealthy >= desiredHealthy``, the default ``IfHealthyBudget`` policy). The 429 has no
Retry-After, as the API server's has none: client-go would otherwise wait inside the request
(``kubectl drain`` reports the refusal and retries on its own every 5 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from simulator.twin.kube_select import ApiStatus, selector_matches

Obj = dict[str, Any]
_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def healthy(pod: Obj) -> bool:
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    deleting = bool(pod["metadata"].get("deletionTimestamp"))
    return status.get("phase") == "Running" and ready and not deleting


def selects(pdb: Obj, pod: Obj) -> bool:
    return (pdb["metadata"].get("namespace") == pod["metadata"].get("namespace")
            and selector_matches((pdb.get("spec") or {}).get("selector"),
                                 pod["metadata"].get("labels") or {}))


def amount(value: int | str, total: int) -> int:
    """An ``IntOrString`` budget: a count, or a percentage of ``total`` rounded up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(total * int(value[:-1]) / 100)
    return int(value)


def budget_status(pdb: Obj, pods: Iterable[Obj]) -> Obj:
    """What the disruption controller writes: counts over the selected pods of ``pods``."""
    spec = pdb.get("spec") or {}
    chosen = [p for p in pods if selects(pdb, p)
              and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    expected = len(chosen)
    current = sum(1 for p in chosen if healthy(p))
    desired = expected  # neither field: nothing may be disrupted
    if spec.get("minAvailable") is not None:
        desired = amount(spec["minAvailable"], expected)
    elif spec.get("maxUnavailable") is not None:
        desired = max(0, expected - amount(spec["maxUnavailable"], expected))
    return {
        "expectedPods": expected, "currentHealthy": current, "desiredHealthy": desired,
        "disruptionsAllowed": max(0, current - desired),
        "observedGeneration": int(pdb["metadata"].get("generation") or 1),
    }


def check_request(pod: Obj, name: str, body: Obj) -> None:
    """The request itself: the name in the body and the uid precondition (409 as a failed
    precondition of a delete is)."""
    named = (body.get("metadata") or {}).get("name")
    if named and named != name:
        raise ApiStatus(400, "BadRequest", "name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    uid = (options.get("preconditions") or {}).get("uid")
    actual = pod["metadata"].get("uid")
    if uid is not None and uid != actual:
        raise ApiStatus(409, "Conflict", f'Operation cannot be fulfilled on Pod "{name}": '
                        f"Precondition failed: UID in precondition: {uid}, UID in object "
                        f"meta: {actual}")


def eviction_budget(pod: Obj, budgets: list[Obj], now: datetime) -> Obj | None:
    """The new status of the budget this eviction spends, None when none is spent; raises
    ``ApiStatus`` (429, 500) when the eviction must not happen."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Pending", "Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
        return None
    covering = [b for b in budgets if selects(b, pod)]
    if not covering:
        return None
    if len(covering) > 1:
        raise ApiStatus(500, "InternalError", "This pod has more than one PodDisruptionBudget, "
                        "which the eviction subresource does not support.")
    status = dict(covering[0].get("status") or {})
    if not healthy(pod):
        if status.get("currentHealthy", 0) < status.get("desiredHealthy", 0):
            raise ApiStatus(429, "TooManyRequests", _REFUSED)
        return None
    if status.get("disruptionsAllowed", 0) < 1:
        raise ApiStatus(429, "TooManyRequests", _REFUSED)
    status["disruptionsAllowed"] -= 1
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}),
                               pod["metadata"]["name"]: now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return status
