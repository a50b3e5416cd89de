"""Process logging for ``surge run``: one JSON object per line (for log pipelines) or plain text.

Callers: ``control.serve`` calls ``setup_logging`` once at start with the configured format
(``--log-format`` / ``SURGE_LOG_FORMAT`` / ``logging.format``) and level. Modules log through
``logging.getLogger(__name__)``; structured fields go in ``extra={"fields": {...}}`` and appear
as keys of the JSON object (or ``key=value`` after the text message).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

FIELDS = "fields"
_HANDLER = "surge"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = getattr(record, FIELDS, None)
    return dict(extra) if isinstance(extra, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if fields:
            head, sep, tail = text.partition("\n")  # keep a traceback below the fields
            pairs = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
            text = f"{head} {pairs}{sep}{tail}"
        return text


def setup_logging(log_format: str, level: str = "info", stream: IO[str] | None = None) -> None:
    """Route the root logger to ``stream`` (stderr) in ``log_format`` ("json" or "text")."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # a second setup
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # The SDKs log every request at INFO; the controller's own lines are what matter.
    for noisy in ("azure", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
