"""lib.http.server in-process: the aiohttp internals it leans on (an upgrade that changes
them fails here), an exception escaping the whole middleware chain, and the request
deadlines' corner cases. The parser's errors against a real service process:
tests/e2e/test_malformed_requests.py; slow clients: tests/e2e/test_slow_clients.py."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import _ErrInfo

from lib.http.server import ProblemAppRunner, ProblemRequestHandler, ProblemServer
from tests.logging_support import logging_to
from tests.servers import free_port


def test_handle_error_keeps_aiohttps_signature() -> None:
    ours = inspect.signature(ProblemRequestHandler.handle_error)
    theirs = inspect.signature(web.RequestHandler.handle_error)
    assert list(ours.parameters) == list(theirs.parameters)
    assert [p.default for p in ours.parameters.values()] == [
        p.default for p in theirs.parameters.values()
    ]


def test_server_builds_its_handlers_as_aiohttp_does() -> None:
    """ProblemServer.__call__ repeats web.Server.__call__ with another class: the latter
    must still build RequestHandler(self, loop=self._loop, **self._kwargs)."""
    source = inspect.getsource(web.Server.__call__)
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in source


def test_the_internals_the_request_deadlines_lean_on() -> None:
    """The deadlines (ProblemRequestHandler's timers) read and set these: renamed or
    gone, a deadline would silently stop working."""
    slots = {*web.RequestHandler.__slots__, *BaseProtocol.__slots__}
    used = {"_messages", "_request_count", "_waiter", "_close", "_force_close", "_upgraded"}
    used |= {"_payload_parser", "_reading_paused", "_buffer_paused", "_request_in_progress"}
    used |= {"_current_request", "_lingering_time", "_loop"}
    assert used <= slots, used - slots
    # a timed-out head is queued as aiohttp queues an unparsable one, answered by handle_error
    assert [f.name for f in _ErrInfo.__attrs_attrs__] == ["status", "exc", "message"]
    received = inspect.getsource(web.RequestHandler.data_received)
    assert "self._request_count += 1" in received
    assert "self._messages.append((msg, payload))" in received
    start = inspect.getsource(web.RequestHandler.start)
    assert "request_handler = self._make_error_handler(message)" in start
    # after a timed-out body: no lingering read (0), or one that ends on a TimeoutError
    assert "lingering_time = self._lingering_time" in start
    assert "if not self._force_close and lingering_time:" in start
    assert "except (asyncio.CancelledError, asyncio.TimeoutError):" in start
    assert "self._request_in_progress = True" in inspect.getsource(
        web.RequestHandler._handle_request
    )
    assert "self._eof_callbacks.clear()" in inspect.getsource(StreamReader.set_exception)


def test_the_deadlines_reach_the_handler_from_the_runner() -> None:
    """serve_app passes them as AppRunner keywords: web.Server hands its keywords on."""
    assert "self._app._make_handler(loop=loop, **self._kwargs)" in inspect.getsource(
        web.AppRunner._make_server
    )
    parameters = inspect.signature(ProblemRequestHandler).parameters
    assert (parameters["header_timeout"].default, parameters["body_timeout"].default) == (
        10.0,
        15.0,
    )


@web.middleware
async def escaping(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    if request.path == "/boom":
        raise RuntimeError("escaped the chain")
    return await handler(request)


async def ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def echo_length(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await request.read())))


RELEASE = web.AppKey("release", asyncio.Event)


async def echo_socket(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        await socket.send_str(message.data)
    return socket


async def read_when_released(request: web.Request) -> web.Response:
    await request.app[RELEASE].wait()
    return await echo_length(request)


HEAD_TIMEOUT, BODY_TIMEOUT = 0.3, 0.5
MARGIN = 5.0  # a due timer fires well within this, even on a loaded machine


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Path, web.AppRunner]]:
    log = tmp_path / "svc.log"
    with logging_to("unit", str(log)):
        app = web.Application(middlewares=[escaping], client_max_size=8 * 1024 * 1024)
        app.router.add_get("/socket", echo_socket)
        app.router.add_get("/{tail:.*}", ok)
        app.router.add_post("/unread", ok)
        app.router.add_post("/read", echo_length)
        app.router.add_post("/later", read_when_released)
        app[RELEASE] = asyncio.Event()
        runner = ProblemAppRunner(
            app, access_log=None, header_timeout=HEAD_TIMEOUT, body_timeout=BODY_TIMEOUT
        )
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            assert isinstance(runner.server, ProblemServer)
            yield f"127.0.0.1:{port}", log, runner
        finally:
            await runner.cleanup()


async def raw(address: str, request: bytes) -> bytes:
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_connections_are_problem_handlers(
    served: tuple[str, Path, web.AppRunner],
) -> None:
    address, _, runner = served
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"ok"), 10)
        assert runner.server is not None
        [connection] = runner.server.connections
        assert type(connection) is ProblemRequestHandler
    finally:
        writer.close()


async def test_an_exception_escaping_the_chain_is_a_500_problem(
    served: tuple[str, Path, web.AppRunner],
) -> None:
    address, log, _ = served
    answer = await raw(address, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500"), answer
    assert b"Content-Type: application/problem+json" in head
    assert b"X-Content-Type-Options: nosniff" in head
    problem = json.loads(body)
    assert problem["code"] == "INTERNAL_ERROR"
    assert problem["detail"] == "An unexpected error occurred."
    assert b"escaped the chain" not in answer
    [line] = [
        json.loads(text) for text in log.read_text().splitlines() if problem["request_id"] in text
    ]
    assert (line["level"], line["event"], line["error"]) == (
        "error",
        "unhandled_error",
        "RuntimeError",
    )
    assert "escaped the chain" in line["exception"]  # a bug: its traceback is logged


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long after the call it closed."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    answer = await asyncio.wait_for(reader.read(), seconds)
    return answer, loop.time() - began


async def test_a_head_stalled_midway_is_a_408_then_closed(
    served: tuple[str, Path, web.AppRunner],
) -> None:
    address, log, _ = served
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer, seconds = await closed_within(reader, HEAD_TIMEOUT + MARGIN)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 408"), answer
    assert b"Content-Type: application/problem+json" in head
    assert b"X-Content-Type-Options: nosniff" in head
    problem = json.loads(body)
    assert (problem["code"], problem["status"]) == ("REQUEST_TIMEOUT", 408)
    assert problem["detail"] == "the request headers were not received within 0.3 s"
    assert seconds < HEAD_TIMEOUT + MARGIN
    [line] = [json.loads(t) for t in log.read_text().splitlines() if problem["request_id"] in t]
    assert (line["level"], line["event"], line["status"], line["error"]) == (
        "warning",
        "request_rejected",
        408,
        "HeaderTimeout",
    )


async def test_a_body_not_read_by_an_answered_handler_ends_quietly(
    served: tuple[str, Path, web.AppRunner],
) -> None:
    """The handler answered without reading the body (as a 401 does): aiohttp reads the
    rest to discard it; the deadline ends that read without an ERROR and closes."""
    address, log, _ = served
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        answer, _ = await closed_within(reader, BODY_TIMEOUT + MARGIN)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert answer.endswith(b"ok")
    text = log.read_text()
    assert "Traceback" not in text
    assert "Unhandled exception" not in text
    [line] = [json.loads(t) for t in text.splitlines() if "BodyTimeout" in t]
    assert (line["level"], line["status"], line["request_id"]) == ("warning", 408, None)


async def post(
    address: str, path: str, body: bytes, length: int | None = None
) -> tuple[asyncio.StreamReader, Any]:
    """A POST of `length` bytes (the body's by default), of which `body` is sent."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    length = len(body) if length is None else length
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), length)
    )
    writer.write(body)  # not drained: the server reads it when it reads it
    return reader, writer


async def test_a_fast_body_the_handler_reads_late_is_not_cut(
    served: tuple[str, Path, web.AppRunner],
) -> None:
    """Several MiB at once to a handler that reads only later: the read buffer fills and
    pauses the socket, so past the body deadline the server, not the client, is the one
    holding the body back; it still arrives whole. The deadline passing is seen on a second
    connection whose body stalls after this one's head (its 408 comes later)."""
    address, _, runner = served
    body = b"x" * (6 * 1024 * 1024)
    reader, writer = await post(address, "/later", body)
    stalled_reader, stalled_writer = await post(address, "/read", b"{", length=100)
    try:
        assert runner.server is not None
        stalled, _ = await closed_within(stalled_reader, BODY_TIMEOUT + MARGIN)
        assert stalled.startswith(b"HTTP/1.1 408"), stalled
        runner.app[RELEASE].set()
        answer = await asyncio.wait_for(reader.readuntil(str(len(body)).encode()), MARGIN)
    finally:
        writer.close()
        stalled_writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


async def test_a_websocket_outlives_both_deadlines(
    served: tuple[str, Path, web.AppRunner],
) -> None:
    """After the upgrade the connection carries frames, not requests: no deadline applies.
    Both have passed once a body stalled after the handshake is answered 408."""
    address, _, _ = served
    async with aiohttp.ClientSession() as http, http.ws_connect(f"http://{address}/socket") as ws:
        stalled_reader, stalled_writer = await post(address, "/read", b"{", length=100)
        try:
            stalled, _ = await closed_within(stalled_reader, BODY_TIMEOUT + MARGIN)
        finally:
            stalled_writer.close()
        assert stalled.startswith(b"HTTP/1.1 408"), stalled
        await ws.send_str("still here")
        assert await asyncio.wait_for(ws.receive_str(), MARGIN) == "still here"
