"""Raw malformed HTTP, through NGINX and straight to a service's port (what any process on
the host or a misconfigured proxy can do; docs/api.md "Errors").

Through NGINX (every deployment's door) none reaches the service as sent: NGINX answers it
itself (problem+json) or, for bare LF line ends it accepts, passes on a well-formed request.
Straight to the port, aiohttp's parser rejects it before any middleware runs and answers
its own text/plain 400 (aio-libs/aiohttp#3287: no public hook in 3.x); the service logs one
WARNING line without a traceback or a byte of the request (lib/http/server.py), except for
a bad method as a connection's first request, which aiohttp logs at DEBUG only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.e2e.gateway_stack import Gateway, departments_env
from tests.e2e.raw_http import exchange, parse_responses
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

MARK = b"zq7marker"  # in every malformed part: NGINX's answers and every log must not hold it
SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
PATH = b"/api/departments"  # NGINX's prefix, stripped on the way to the service
# case -> (the request, as sent to the service's port; the error class its WARNING names,
# None when aiohttp logs it at DEBUG; NGINX's status for it, the request sent under PATH)
CASES: dict[str, tuple[bytes, str | None, int]] = {
    "bare LF in a header": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-" + MARK + b": a\nb\r\n\r\n",
        "BadHttpMessage",
        200,  # NGINX takes LF as a line end and drops the line without a colon
    ),
    "bare LF line ends": (
        b"GET /health HTTP/1.1\nHost: x\nX-" + MARK + b": a\n\n",
        "BadStatusLine",
        200,  # a header, not the query: the service's access log would hold that
    ),
    "bad method": (b"G(" + MARK + b" /health HTTP/1.1\r\nHost: x\r\n\r\n", None, 400),
    "invalid chunk size": (
        b"POST /v1/departments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + MARK + b"\r\n{}\r\n0\r\n\r\n",
        "BadHttpMessage",
        400,
    ),
    "unknown transfer coding": (
        b"POST /v1/departments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
        + MARK
        + b"\r\n\r\n",
        "BadHttpMessage",
        501,  # nginx's own text/html page: snippets/errors.conf maps no 501
    ),
    "oversized header": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + MARK * 1000 + b"\r\n\r\n",
        "LineTooLong",
        400,
    ),
    "oversized request line": (
        b"GET /" + MARK * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "LineTooLong",
        414,
    ),
    "bytes that are not UTF-8": (
        b"GET /health HTTP/1.1\r\n\xff" + MARK + b"\r\n\r\n",
        "BadHttpMessage",
        400,
    ),
    "TLS on the plain port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + MARK, None, 400),
}


def via_gateway(raw: bytes) -> bytes:
    """The same request for NGINX: its target under PATH."""
    for target in (b" /health", b" /v1/", b" /" + MARK):
        if target in raw:
            return raw.replace(target, b" " + PATH + target[1:], 1)
    return raw  # no target (TLS)


@pytest.fixture(scope="module")
async def service(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceProcess]:
    env = departments_env(migrated_db("departments"))
    running = ServiceProcess(env, tmp_path_factory.mktemp("malformed") / "departments.log")
    try:
        await running.wait_healthy()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def gateway(
    service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    tmp = tmp_path_factory.mktemp("malformed_gateway")
    (tmp / "docs").mkdir()
    running = Gateway(tmp, {"departments": [f"127.0.0.1:{service.port}"]}, tmp / "docs")
    try:
        yield await running.start()
    finally:
        running.stop()


def rejected(service: ServiceProcess) -> list[dict[str, object]]:
    return [
        line
        for raw in service.log.read_text().splitlines()
        if raw.startswith("{") and (line := json.loads(raw))["event"] == "request_rejected"
    ]


async def first_answer(port: int, raw: bytes) -> bytes:
    """The first response to `raw` (NGINX keeps the connection after a good one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROCESS_MARGIN)
        [(_, headers, _)] = parse_responses(head)
        length = int(headers.get("content-length", "0"))
        return head + await asyncio.wait_for(reader.readexactly(length), PROCESS_MARGIN)
    finally:
        writer.close()


@pytest.mark.parametrize("case", CASES)
async def test_through_nginx_none_reaches_the_service_as_sent(
    gateway: Gateway, service: ServiceProcess, case: str
) -> None:
    raw, _, status = CASES[case]
    before = len(rejected(service))
    answer = await first_answer(gateway.port, via_gateway(raw))
    [(got, headers, body)] = parse_responses(answer)
    assert got == status, answer
    assert MARK not in answer
    if status in (400, 414):  # NGINX's own problem (snippets/errors.conf)
        assert headers["content-type"] == "application/problem+json", headers
        for name, value in SECURITY.items():
            assert headers.get(name) == value, (name, headers)
        assert json.loads(body)["request_id"] == headers["x-request-id"]
    assert len(rejected(service)) == before  # the service's parser saw none of them


@pytest.mark.parametrize("case", CASES)
async def test_straight_to_the_port_aiohttp_answers_400_and_one_line_is_logged(
    service: ServiceProcess, case: str
) -> None:
    raw, error, _ = CASES[case]
    before = rejected(service)
    # aiohttp writes its log line before its answer, and closes the connection after it
    [(status, headers, _)] = parse_responses(await exchange(service.port, raw))
    assert status == 400
    assert headers["content-type"].startswith("text/plain"), headers  # aiohttp's, not ours
    new = rejected(service)[len(before) :]
    if error is None:  # a connection's first bad method: aiohttp's DEBUG, below LOG_LEVEL
        assert new == []
        return
    [line] = new
    assert (line["level"], line["status"], line["error"]) == ("warning", 400, error)
    assert line["service"] == "departments"
    assert line["client_ip"] == "127.0.0.1"
    assert "exception" not in line


async def test_a_bad_method_after_a_good_request_is_logged(service: ServiceProcess) -> None:
    """aiohttp lowers only a connection's first bad method to DEBUG (most likely not HTTP
    at all); after a good request it is a client's fault like any other."""
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    before = rejected(service)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROCESS_MARGIN)
        [(status, headers, _)] = parse_responses(head)  # the head; its body is read next
        assert status == 200
        await reader.readexactly(int(headers["content-length"]))
        writer.write(b"G(" + MARK + b" /health HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = await asyncio.wait_for(reader.read(), PROCESS_MARGIN)
    finally:
        writer.close()
    [(status, _, _)] = parse_responses(rest)
    assert status == 400
    [line] = rejected(service)[len(before) :]
    assert (line["level"], line["error"]) == ("warning", "BadHttpMethod")


async def test_the_log_has_no_traceback_and_no_request_bytes(
    service: ServiceProcess, tmp_path: Path
) -> None:
    for raw, _, _ in CASES.values():
        await exchange(service.port, raw)
    await service.wait_healthy()  # the process is alive and still serving
    text = service.log.read_text()
    assert "Traceback" not in text
    assert MARK.decode() not in text
    levels = {json.loads(raw)["level"] for raw in text.splitlines() if raw.startswith("{")}
    assert "error" not in levels, text
