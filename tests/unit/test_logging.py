"""lib.logging.configure_logging: one JSON object per line, shared field names."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from lib.logging import configure_logging, get_logger
from tests.logging_support import logging_restored

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """A path to configure into; afterwards every logging global is as it was."""
    with logging_restored():
        yield tmp_path / "service.log"


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text.endswith("\n")
    return [orjson.loads(line) for line in text.splitlines()]


def test_structlog_event_is_one_json_line(log_file: Path) -> None:
    configure_logging("users", "INFO", str(log_file))
    structlog.contextvars.bind_contextvars(request_id="req-1")
    before = datetime.now(UTC)
    get_logger("lib.test").info("order_created", order_id="o-1", amount=3)
    after = datetime.now(UTC)
    [line] = lines(log_file)
    assert line == {
        "service": "users",
        "event": "order_created",
        "level": "info",
        "ts": line["ts"],
        "request_id": "req-1",
        "order_id": "o-1",
        "amount": 3,
    }
    assert TS.match(line["ts"]), line["ts"]
    ts = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= ts <= after + timedelta(seconds=1)


def test_request_id_follows_the_context(log_file: Path) -> None:
    configure_logging("users", "INFO", str(log_file))
    log = get_logger()
    structlog.contextvars.bind_contextvars(request_id="a")
    log.info("first")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="b", user_id="u-9")
    log.warning("second")
    structlog.contextvars.clear_contextvars()
    log.error("third")
    first, second, third = lines(log_file)
    assert (first["event"], first["request_id"], first["level"]) == ("first", "a", "info")
    assert (second["request_id"], second["user_id"], second["level"]) == ("b", "u-9", "warning")
    assert "request_id" not in third
    assert third["level"] == "error"


def test_level_filters_structlog_events(log_file: Path) -> None:
    configure_logging("users", "WARNING", str(log_file))
    log = get_logger()
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.critical("c")
    assert [(line["event"], line["level"]) for line in lines(log_file)] == [
        ("w", "warning"),
        ("c", "critical"),
    ]


def test_stdlib_logging_goes_through_as_json(log_file: Path) -> None:
    configure_logging("orders", "INFO", str(log_file))
    structlog.contextvars.bind_contextvars(request_id="req-2")
    logging.getLogger("x").warning("disk %s full", "/var")
    logging.getLogger("x").debug("not shown")
    [line] = lines(log_file)
    assert line == {
        "service": "orders",
        "event": "disk /var full",
        "level": "warning",
        "logger": "x",
        "ts": line["ts"],
        "request_id": "req-2",
    }
    assert TS.match(line["ts"])


def test_exceptions_are_rendered_into_the_line(log_file: Path) -> None:
    configure_logging("users", "INFO", str(log_file))
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger().exception("structlog_failed")
        logging.getLogger("asyncpg").exception("stdlib_failed")
    first, second = lines(log_file)
    for line, event in ((first, "structlog_failed"), (second, "stdlib_failed")):
        assert line["event"] == event
        assert line["level"] == "error"
        assert "Traceback (most recent call last)" in line["exception"]
        assert "ValueError: boom" in line["exception"]


def test_values_json_cannot_encode_become_strings(log_file: Path) -> None:
    configure_logging("users", "INFO", str(log_file))

    class Thing:
        def __str__(self) -> str:
            return "a thing"

    get_logger().info("odd", thing=Thing(), path=Path("/tmp/x"))
    [line] = lines(log_file)
    assert (line["thing"], line["path"]) == ("a thing", "/tmp/x")


def test_reconfiguring_appends_and_replaces_handlers(log_file: Path) -> None:
    configure_logging("users", "INFO", str(log_file))
    get_logger().info("one")
    # configure_logging does not close the file it opened before (a leak on reconfigure)
    first_stream = logging.getLogger().handlers[0].stream  # type: ignore[attr-defined]
    configure_logging("users", "INFO", str(log_file))
    first_stream.close()
    get_logger().info("two")
    logging.getLogger("x").warning("three")
    assert [line["event"] for line in lines(log_file)] == ["one", "two", "three"]  # no dupes
    assert len(logging.getLogger().handlers) == 1
    assert logging.getLogger("aiohttp.access").disabled is True
