"""Backoff per (VM size, zone, priority), classified from AKS error codes.

Callers: ``control.loop`` records failures here and passes ``active()`` to the planner, which
skips options in backoff and says so. Classes follow AKS Node Auto Provisioning's practice
(see docs/DESIGN.md "AKS facts"):

======================================  ===========  ==========================================
class                                   duration     codes
======================================  ===========  ==========================================
default                                 3 min        anything not listed, provision timeouts
low quota                               10 min       a quota failure after partial success: some
                                                     quota was left, so retry sooner
quota / allocation / spot unavailable   1 h          QuotaExceeded (incl. LowPriorityCores /
                                                     spot core quota), OperationNotAllowed
                                                     whose message is about quota (how
                                                     compute reports family, regional and
                                                     LowPriorityCores quota), AllocationFailed,
                                                     ZonalAllocationFailed, Overconstrained*,
                                                     SkuNotAvailable on Spot
regular SKU unavailable                 23 h         SkuNotAvailable on Regular
======================================  ===========  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from autoscaler.model.plan import Backoff
from autoscaler.model.pool import Priority

DEFAULT = timedelta(minutes=3)
LOW_QUOTA = timedelta(minutes=10)
CAPACITY = timedelta(hours=1)
REGULAR_SKU_UNAVAILABLE = timedelta(hours=23)

QUOTA_CODES = frozenset({"QuotaExceeded", "LowPriorityQuotaExceeded", "OperationNotAllowedQuota"})
CAPACITY_CODES = frozenset(
    {
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
    }
)
SKU_CODES = frozenset({"SkuNotAvailable", "SKUNotAvailable"})
# Compute reports core quota as OperationNotAllowed ("... results in exceeding approved
# LowPriorityCores quota", "... standardDSv5Family Cores quota", "... Total Regional Cores
# quota"); the same code without "quota" is a concurrent operation, retried without backoff.
QUOTA_BY_MESSAGE_CODES = frozenset({"OperationNotAllowed", "BadRequest", "Conflict"})


def classify(code: str, message: str = "") -> str:
    """The code backoff decides on: quota failures reported under a generic code become
    ``QuotaExceeded``; every other code is itself."""
    if code in QUOTA_BY_MESSAGE_CODES and "quota" in message.lower():
        return "QuotaExceeded"
    return code


def backoff_duration(
    code: str, priority: Priority, *, partial: bool = False, message: str = ""
) -> timedelta:
    """How long to avoid an option after an operation failed with ``code`` (and ``message``)."""
    code = classify(code, message)
    if code in QUOTA_CODES:
        return LOW_QUOTA if partial else CAPACITY
    if code in CAPACITY_CODES:
        return CAPACITY
    if code in SKU_CODES:
        return CAPACITY if priority is Priority.SPOT else REGULAR_SKU_UNAVAILABLE
    return DEFAULT


@dataclass(slots=True)
class Backoffs:
    """The backoff entries in force; a new failure on the same key replaces the old one."""

    entries: dict[tuple[str, str | None, Priority], Backoff]

    @staticmethod
    def empty() -> Backoffs:
        return Backoffs({})

    def record(
        self,
        vm_size: str,
        zone: str | None,
        priority: Priority,
        code: str,
        now: datetime,
        *,
        partial: bool = False,
        message: str = "",
    ) -> Backoff:
        until = now + backoff_duration(code, priority, partial=partial, message=message)
        entry = Backoff(vm_size, zone, priority, until, classify(code, message))
        self.entries[(vm_size.lower(), zone, priority)] = entry
        return entry

    def active(self, now: datetime) -> tuple[Backoff, ...]:
        """Entries still in force at ``now`` (expired ones are dropped), in a stable order."""
        for key in [k for k, b in self.entries.items() if b.until <= now]:
            del self.entries[key]
        return tuple(self.entries[k] for k in sorted(self.entries, key=str))
