"""Azure SDK exceptions -> the CloudProvider's error types, and operation failures -> codes.

Callers: ``cloud.aks`` only (with it, the one place that imports the Azure SDK). Mapping:

====================================  ==========================================================
what ARM answered                     what the loop sees
====================================  ==========================================================
429 (any call)                        ``Throttled(retry_after)`` from the Retry-After header
409 OperationNotAllowed               ``Conflict``: another operation runs; retry on a later pass
409 whose message is about quota      ``CloudError`` with ARM's code: backoff classifies it
412                                   ``PreconditionFailed`` (a Conflict): re-read, plan again
other 4xx / 5xx                       ``CloudError`` with ARM's error code (e.g. InvalidParameter)
no answer, auth failure               ``CloudError`` ConnectionFailed / AuthenticationFailed
LRO ended Failed (HTTP 200)           ``OperationStatus(FAILED, error.code, error.message)``
====================================  ==========================================================
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from autoscaler.cloud.provider import (
    CloudError,
    Conflict,
    PreconditionFailed,
    Throttled,
)

# Without a Retry-After header, wait this long after a 429 (ARM's throttling windows are
# counted in minutes; a short retry would only be throttled again).
DEFAULT_RETRY_AFTER = 30.0


def error_code(err: HttpResponseError) -> str:
    detail = err.error
    code = getattr(detail, "code", None) if detail is not None else None
    if code:
        return str(code)
    return f"HTTP{err.status_code}" if err.status_code else "Unknown"


def error_message(err: AzureError) -> str:
    detail = getattr(err, "error", None)
    message = getattr(detail, "message", None) if detail is not None else None
    return str(message or err.message or err)


def retry_after(headers: object, now: datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    get = getattr(headers, "get", None)
    text = get("Retry-After") if callable(get) else None
    if not text:
        return DEFAULT_RETRY_AFTER
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(str(text))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_quota_message(message: str) -> bool:
    return "quota" in message.lower()


def translate(err: AzureError, action: str) -> CloudError:
    """The CloudError to raise for ``err``, raised by the SDK while doing ``action``."""
    if isinstance(err, HttpResponseError) and err.status_code is not None:
        status = err.status_code
        message = f"{action}: {error_message(err)}"
        response = err.response
        if status == 429:
            return Throttled(retry_after(getattr(response, "headers", None)), message)
        code = error_code(err)
        if status == 412:
            return PreconditionFailed(code, message)
        if status == 409 and not is_quota_message(message):
            return Conflict(code, message)
        return CloudError(code, message)
    if isinstance(err, ClientAuthenticationError):
        return CloudError("AuthenticationFailed", f"{action}: {error_message(err)}")
    if isinstance(err, ServiceRequestError | ServiceResponseError):
        return CloudError("ConnectionFailed", f"{action}: {error_message(err)}")
    return CloudError(type(err).__name__, f"{action}: {error_message(err)}")
