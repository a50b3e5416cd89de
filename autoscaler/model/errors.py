"""The one error type for bad input, raised at public boundaries (snapshot, config, CLI).

Callers: quantity parsing, snapshot and config loaders; the CLI turns it into exit code 2.
Expected planning outcomes (nothing fits, pool at max) are never errors: they are statuses.
"""

from __future__ import annotations


class ValidationError(ValueError):
    """Bad input: ``path`` names the field (a JSON path such as ``$.pods[3].containers[0]``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
