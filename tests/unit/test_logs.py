"""Log lines as JSON objects or text, with structured fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from autoscaler.control.logs import setup_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_one_object_per_line_with_the_fields(restore_root: None) -> None:
    stream = io.StringIO()
    setup_logging("json", "info", stream)
    logging.getLogger("surge.test").info("pass: %s", "spot1 0->2 started",
                                         extra={"fields": {"pending": 6, "trigger": "batch"}})
    logging.getLogger("surge.test").debug("not shown at info")
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert {k: entry[k] for k in ("level", "logger", "message", "pending", "trigger")} == {
        "level": "info", "logger": "surge.test", "message": "pass: spot1 0->2 started",
        "pending": 6, "trigger": "batch"}
    assert entry["time"].endswith("+00:00")


def test_text_logs_put_the_fields_after_the_message(restore_root: None) -> None:
    stream = io.StringIO()
    setup_logging("text", "debug", stream)
    logging.getLogger("surge.test").warning("lost leadership", extra={"fields": {"term": 3}})
    line = stream.getvalue().strip()
    assert line.endswith("WARNING surge.test: lost leadership term=3")


def test_setting_up_twice_keeps_one_handler(restore_root: None) -> None:
    stream = io.StringIO()
    setup_logging("json", "info", io.StringIO())
    setup_logging("json", "info", stream)
    logging.getLogger("surge.test").info("once")
    assert len(stream.getvalue().splitlines()) == 1
    assert sum(1 for h in logging.getLogger().handlers if h.get_name() == "surge") == 1
