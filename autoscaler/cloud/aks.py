"""The AKS CloudProvider: agent pools through azure-mgmt-containerservice and azure-identity.

Callers: the in-cluster runner builds ``AksProvider(aks_settings(config, os.environ))`` and hands
it to ``control.loop.Reconciler``; adapter tests and ``benchmarks/arm_latency.py`` point it at the
ARM twin (``simulator.twin``). This module and ``cloud.aks_errors`` are the only ones importing
the Azure SDKs.

How it talks to ARM (see DESIGN.md "AKS facts"):

- ``scale``: GET the pool, set ``count``, PUT it back with ``If-Match: <eTag>``
  (``begin_create_or_update``). The PUT's answer is the start of a long-running operation; we
  take its continuation token and return at once. No thread waits on the operation.
- ``operation``: rebuilds the poller from the token (``continuation_token=``) with a polling
  method that makes exactly one status request, so a poll costs one GET and never sleeps. A
  token outlives the process, so a restarted loop resumes the operation instead of repeating it.
- The SDK's own retries are off (``retry_total=0``): the loop schedules retries, honouring
  Retry-After, and a blocked retry inside the SDK would stall the whole pass.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.polling.base_polling import OperationFailed
from azure.identity import AzureAuthorityHosts, DefaultAzureCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool as ArmAgentPool
from azure.mgmt.containerservice.models import AgentPoolDeleteMachinesParameter
from azure.mgmt.core.polling.arm_polling import ARMPolling

from autoscaler.cloud.aks_errors import error_code, error_message, translate
from autoscaler.cloud.aks_pools import check_change, managed_pools
from autoscaler.cloud.aks_settings import AksSettings
from autoscaler.cloud.provider import (
    DELETE_MACHINES,
    SCALE,
    CloudError,
    Operation,
    OperationState,
    OperationStatus,
)
from autoscaler.model.pool import AgentPool

log = logging.getLogger(__name__)

_KINDS = (SCALE, DELETE_MACHINES)
# Transport timeouts (seconds): a hung connection must not hold the loop for long.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
_MICROSOFT_AUTHORITIES = frozenset(
    host.lower()
    for host in (
        AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        AzureAuthorityHosts.AZURE_CHINA,
        AzureAuthorityHosts.AZURE_GOVERNMENT,
    )
)


class _OneStep(ARMPolling):
    """ARM polling that asks for the operation's status at most once per ``run``.

    With ``poll=False`` it asks nothing (the PUT that started the operation just answered).
    The SDK's poller runs ``run`` on a helper thread; with one request or none the thread ends
    as soon as that request does, so ``wait()`` returns at once. A Failed or Canceled status
    raises ``OperationFailed``, which the base class turns into the ``HttpResponseError`` that
    carries ``error.code`` and the status response's HTTP 200."""

    def __init__(self, poll: bool) -> None:
        super().__init__(timeout=0)
        self._one_poll = poll

    def _poll(self) -> None:
        if not self._one_poll or self.finished():
            return
        self.update_status()
        if self.status().lower() in ("failed", "canceled"):
            raise OperationFailed("Operation failed or canceled")


def default_credential(settings: AksSettings, **kwargs: Any) -> TokenCredential:
    """``DefaultAzureCredential``: workload identity in AKS, then managed identity, environment
    service principal, Azure CLI. ``kwargs`` go to azure-identity.

    An authority host other than Microsoft's clouds (the twin, a private authority) turns
    instance discovery off: discovery asks login.microsoftonline.com to vouch for the host, which
    it cannot do for one it does not run."""
    if settings.authority_host:
        kwargs.setdefault("authority", settings.authority_host)
        host = urlsplit(settings.authority_host).hostname or settings.authority_host
        if host.lower() not in _MICROSOFT_AUTHORITIES:
            kwargs.setdefault("disable_instance_discovery", True)
    if settings.connection_verify is not True:
        kwargs.setdefault("connection_verify", settings.connection_verify)
    return DefaultAzureCredential(**kwargs)


class AksProvider:
    """A ``CloudProvider`` over one AKS cluster's agent pools.

    ``list_pools`` returns only the managed pools (see ``AksSettings.selects``), so the loop can
    never plan for a pool it must not touch; ``scale`` and ``delete_machines`` check again on
    the pool they just read (``Refused``)."""

    def __init__(
        self,
        settings: AksSettings,
        credential: TokenCredential | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        client: ContainerServiceClient | None = None,
    ) -> None:
        self.settings = settings
        self.now = now
        self.credential = credential or default_credential(settings)
        self.client = client or ContainerServiceClient(
            self.credential,
            settings.subscription_id,
            base_url=settings.arm_endpoint,
            credential_scopes=[settings.scope],
            retry_total=0,
            connection_verify=settings.connection_verify,
            connection_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )
        self._where = (settings.resource_group, settings.cluster_name)

    def close(self) -> None:
        self.client.close()

    # -- reads -----------------------------------------------------------------------------

    def list_pools(self) -> tuple[AgentPool, ...]:
        try:
            bodies: list[Mapping[str, Any]] = [
                p.as_dict() for p in self.client.agent_pools.list(*self._where)
            ]
        except AzureError as err:
            raise translate(err, "list agent pools") from err
        return managed_pools(bodies, self.settings)

    def _get(self, pool: str) -> ArmAgentPool:
        try:
            return self.client.agent_pools.get(*self._where, pool)
        except AzureError as err:
            raise translate(err, f"get agent pool {pool}") from err

    # -- writes ----------------------------------------------------------------------------

    def scale(self, pool: str, count: int) -> Operation:
        current = self._get(pool)
        check_change(current.as_dict(), self.settings, count)
        props = current.properties
        if props is None:
            raise CloudError("InvalidResponse", f"agent pool {pool} has no properties")
        etag = props.e_tag
        props.count = count
        try:
            poller = self.client.agent_pools.begin_create_or_update(
                *self._where,
                pool,
                current,
                etag=etag,
                match_condition=MatchConditions.IfNotModified if etag else None,
                polling=_OneStep(poll=False),
            )
            token = poller.continuation_token()
        except AzureError as err:
            raise translate(err, f"scale agent pool {pool} to {count}") from err
        log.info("scale %s to %d started", pool, count)
        return Operation(pool, SCALE, count, token, self.now())

    def delete_machines(self, pool: str, machines: Sequence[str]) -> Operation:
        current = self._get(pool)
        count = (current.properties.count if current.properties else None) or 0
        target = count - len(machines)
        check_change(current.as_dict(), self.settings, target)
        try:
            poller = self.client.agent_pools.begin_delete_machines(
                *self._where,
                pool,
                AgentPoolDeleteMachinesParameter(machine_names=list(machines)),
                polling=_OneStep(poll=False),
            )
            token = poller.continuation_token()
        except AzureError as err:
            raise translate(err, f"delete machines of agent pool {pool}") from err
        log.info("delete %d machines of %s started", len(machines), pool)
        return Operation(pool, DELETE_MACHINES, target, token, self.now(), tuple(machines))

    # -- operations ------------------------------------------------------------------------

    def operation(self, op: Operation) -> OperationStatus:
        if op.kind not in _KINDS:
            raise CloudError("UnknownOperation", f"operation kind {op.kind!r} of {op.pool}")
        method = _OneStep(poll=True)
        try:
            if op.kind == SCALE:
                # With a continuation token the SDK sends nothing: the body is a placeholder.
                poller: Any = self.client.agent_pools.begin_create_or_update(
                    *self._where, op.pool, ArmAgentPool(), continuation_token=op.token,
                    polling=method,
                )
            else:
                poller = self.client.agent_pools.begin_delete_machines(
                    *self._where, op.pool, AgentPoolDeleteMachinesParameter(machine_names=[]),
                    continuation_token=op.token, polling=method,
                )
            poller.wait()
        except HttpResponseError as err:
            return _ended(op, err)
        except AzureError as err:
            raise translate(err, f"poll {op.kind} of agent pool {op.pool}") from err
        except ValueError as err:  # a token this SDK cannot read (e.g. from an older version)
            return OperationStatus(OperationState.FAILED, "InvalidContinuationToken", str(err))
        status = str(poller.status()).lower()
        if status == "succeeded":
            return OperationStatus(OperationState.SUCCEEDED)
        return OperationStatus(OperationState.IN_PROGRESS)


def _ended(op: Operation, err: HttpResponseError) -> OperationStatus:
    """The status of an operation whose poll raised ``err``.

    A failure that ARM reports when the operation ends comes with the status response's HTTP
    200 and the error in its body (QuotaExceeded, ZonalAllocationFailed, ...). An HTTP error
    status means the poll itself failed: 404, the operation record is gone, so its outcome is
    only in the pool's count; other codes are raised for the loop to retry."""
    status = err.status_code
    if status is not None and status < 400:
        if err.error is not None and err.error.code:
            return OperationStatus(OperationState.FAILED, error_code(err), error_message(err))
        # No error object: a Canceled operation (or a Failed one that did not say why).
        said = _body_status(err)
        code = "Canceled" if said == "canceled" else "OperationFailed"
        return OperationStatus(OperationState.FAILED, code, f"{op.kind} {op.pool}: {said}")
    if status == 404:
        return OperationStatus(
            OperationState.FAILED, "OperationNotFound", f"{op.kind} {op.pool}: status expired"
        )
    raise translate(err, f"poll {op.kind} of agent pool {op.pool}") from err


def _body_status(err: HttpResponseError) -> str:
    """The ``status`` of an operation-status body, lower-case; "unknown" when unreadable."""
    try:
        body = json.loads(err.response.text()) if err.response is not None else None
    except (ValueError, TypeError):
        body = None
    status = body.get("status") if isinstance(body, dict) else None
    return str(status).lower() if status else "unknown"
