"""lib.http.server in-process: what aiohttp's connections log through `server_log` (the
documented `logger` keyword). A request its parser rejects is one WARNING line; an
exception that escaped the app keeps aiohttp's ERROR with the traceback. The answers
themselves against a real service process: tests/e2e/test_malformed_requests.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from lib.http.server import server_log
from tests.logging_support import logging_to
from tools.local.ports import free_port

MARK = "zq7marker"  # in the malformed request: no log line may hold it


async def boom(_: web.Request) -> web.Response:
    raise RuntimeError(f"escaped the app {MARK}")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    log = tmp_path / "svc.log"
    with logging_to("unit", str(log)):
        app = web.Application()  # no middleware chain: an exception escapes to aiohttp
        app.router.add_get("/boom", boom)
        runner = web.AppRunner(app, access_log=None, logger=server_log)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield port, log
        finally:
            await runner.cleanup()


async def raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in log.read_text().splitlines()]


async def test_a_request_the_parser_rejects_is_one_warning_line(
    served: tuple[int, Path],
) -> None:
    port, log = served
    answer = await raw(port, f"GET / HTTP/1.1\r\nHost: x\r\nX-{MARK}: a\nb\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 400 "), answer  # aiohttp's own answer (#3287)
    [line] = lines(log)
    assert (line["level"], line["event"], line["status"]) == ("warning", "request_rejected", 400)
    assert (line["error"], line["client_ip"]) == ("BadHttpMessage", "127.0.0.1")
    assert "exception" not in line
    assert MARK not in log.read_text()


async def test_an_exception_that_escaped_the_app_keeps_its_error_and_traceback(
    served: tuple[int, Path],
) -> None:
    port, log = served
    answer = await raw(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 "), answer
    [line] = lines(log)
    assert line["level"] == "error"
    assert line["event"] == "Error handling request from 127.0.0.1"
    assert f"RuntimeError: escaped the app {MARK}" in line["exception"]
