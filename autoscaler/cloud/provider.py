"""The CloudProvider protocol: what the control loop needs from AKS, and its error types.

Callers: ``control.loop`` uses it; ``cloud.aks`` (real ARM), ``cloud.fake`` (records calls)
and ``simulator.cloud.SimCloud`` (the simulated AKS) implement it. Like Cluster Autoscaler's
cloud-provider interface, it is small: list pools, set a pool's count, delete named machines,
and poll an operation. Operations are non-blocking: the loop polls them on later loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from autoscaler.model.errors import ValidationError
from autoscaler.model.pool import AgentPool


class OperationState(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


# Operation kinds: every provider, the loop and the simulator's cloud use these names.
SCALE = "scale"
DELETE_MACHINES = "delete-machines"


@dataclass(frozen=True, slots=True)
class Operation:
    """A long-running operation the loop started: ``token`` resumes it after a restart."""

    pool: str
    kind: str  # SCALE | DELETE_MACHINES
    target: int  # the count asked for (for scale), or the count expected after deletion
    token: str
    started: datetime
    # delete-machines: the nodes asked for, so that a later leader leaves them cordoned while
    # the deletion runs (``control.scaledown_recovery``); () when not known (a scale, or an
    # operation stored by a version that did not keep them).
    machines: tuple[str, ...] = ()
    # The pool's count when the loop started it (None: not known, e.g. stored by an older
    # version). Kept with the operation, so that after a restart a failure that still grew the
    # pool is told apart from one that added nothing (``control.backoff``, partial success).
    before: int | None = None


@dataclass(frozen=True, slots=True)
class OperationStatus:
    state: OperationState
    error_code: str | None = None  # AKS error code when FAILED, e.g. "QuotaExceeded"
    message: str = ""


class CloudError(Exception):
    """A call to the cloud failed; ``code`` is the ARM error code when there is one."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class Conflict(CloudError):
    """409 OperationNotAllowed: another operation runs on the pool; retry on a later loop."""


class PreconditionFailed(Conflict):
    """412: the pool changed between our read and our write (If-Match failed).

    A ``Conflict`` so that callers that retry conflicts on a later pass need no new case; the
    loop also re-reads the pools before planning again, since its view is out of date."""


class Refused(CloudError):
    """The provider will not send this request: it would break a safety rule (an unmanaged
    pool, a pool AKS autoscales itself, a System pool taken below one node). The message
    names the pool; retrying does not help."""


class ManagedPoolError(ValidationError):
    """Configuration asks to manage a pool that must not be managed (e.g. a pool with
    ``enableAutoScaling=true``: AKS refuses manual scaling of it and the two autoscalers would
    fight). Raised from ``list_pools`` so that the process stops with the pool's name."""


class Throttled(CloudError):
    """429: retry no earlier than ``retry_after`` seconds from now."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__("TooManyRequests", message)
        self.retry_after = retry_after


class CloudProvider(Protocol):
    def list_pools(self) -> tuple[AgentPool, ...]:
        """Every agent pool we may manage, with its current count; raises CloudError when it
        cannot, ManagedPoolError (a ValidationError: stop) when configuration selects a pool
        that must not be managed."""
        ...

    def scale(self, pool: str, count: int) -> Operation:
        """Start setting ``pool``'s count; returns at once with the operation to poll."""
        ...

    def delete_machines(self, pool: str, machines: Sequence[str]) -> Operation:
        """Start removing the named machines (nodes) of ``pool``."""
        ...

    def operation(self, op: Operation) -> OperationStatus:
        """Poll an operation started by this or an earlier process (by its token)."""
        ...
