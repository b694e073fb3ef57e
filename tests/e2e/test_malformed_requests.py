"""Raw malformed HTTP sent straight to a service's port (what any process on the host or a
misconfigured proxy can do): aiohttp's parser rejects it before any middleware runs, and
the answer is still problem+json with the security headers and a request id, echoing
nothing of the request, logged as one WARNING line without a traceback (lib/http/server.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.raw_http import exchange, parse_responses
from tests.servers import free_port
from tools.service_process import PROCESS_MARGIN, ServiceProcess

MARK = b"zq7marker"  # in every malformed part: the answer must not contain it
SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
CASES = {
    "bare LF in a header": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-" + MARK + b": a\nb\r\n\r\n",
        "the request is not valid HTTP/1.1",
    ),
    "bare LF line ends": (
        b"GET /health?" + MARK + b" HTTP/1.1\nHost: x\n\n",
        "the request line is not valid HTTP/1.1",
    ),
    "bad method": (b"G(" + MARK + b" /health HTTP/1.1\r\nHost: x\r\n\r\n", None),
    "invalid chunk size": (
        b"POST /v1/departments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + MARK + b"\r\n{}\r\n0\r\n\r\n",
        None,
    ),
    "unknown transfer coding": (
        b"POST /v1/departments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
        + MARK
        + b"\r\n\r\n",
        None,
    ),
    "oversized header": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + MARK * 1000 + b"\r\n\r\n",
        "the request line or a header field is too long",
    ),
    "oversized request line": (
        b"GET /" + MARK * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "the request line or a header field is too long",
    ),
    "bytes that are not UTF-8": (b"GET /health HTTP/1.1\r\n\xff" + MARK + b"\r\n\r\n", None),
    "TLS on the plain port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + MARK, None),
}


@pytest.fixture(scope="module")
async def service(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceProcess]:
    env = {
        "DEPARTMENTS_DATABASE_URL": migrated_db("departments"),
        "DEPARTMENTS_PORT": str(free_port()),
        "DB_POOL_MIN": "1",
        "RATE_LIMIT_IP_RATE": "1000",
        "RATE_LIMIT_IP_BURST": "1000",
        "REDIS_URL": "",
        "WORKERS": "1",
    }
    running = ServiceProcess(env, tmp_path_factory.mktemp("malformed") / "departments.log")
    try:
        await running.wait_healthy()
        yield running
    finally:
        running.stop()


async def log_lines_of(service: ServiceProcess, request_id: str) -> list[dict[str, Any]]:
    """The service's log lines naming `request_id`, once there is at least one."""
    deadline = asyncio.get_running_loop().time() + PROCESS_MARGIN
    while True:
        lines = [
            json.loads(raw)
            for raw in service.log.read_text().splitlines()
            if request_id in raw and raw.startswith("{")
        ]
        if lines or asyncio.get_running_loop().time() > deadline:
            return lines
        await asyncio.sleep(0.05)


def assert_problem(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert status == 400, body
    assert headers["content-type"].startswith("application/problem+json"), headers
    for name, value in SECURITY.items():
        assert headers.get(name) == value, (name, headers)
    assert MARK not in body
    problem: dict[str, Any] = json.loads(body)
    assert set(problem) == {"type", "title", "status", "detail", "code", "request_id"}
    assert problem["type"] == "https://fixup.dev/problems/bad-request"
    assert (problem["status"], problem["code"], problem["title"]) == (
        400,
        "BAD_REQUEST",
        "Bad request",
    )
    assert problem["request_id"] == headers["x-request-id"]
    return problem


@pytest.mark.parametrize("case", CASES)
async def test_parser_errors_are_problem_json(service: ServiceProcess, case: str) -> None:
    raw, detail = CASES[case]
    [(status, headers, body)] = parse_responses(await exchange(service.port, raw))
    problem = assert_problem(status, headers, body)
    if detail is not None:
        assert problem["detail"] == detail
    [line] = await log_lines_of(service, problem["request_id"])
    assert line["level"] == "warning", line
    assert line["event"] == "request_rejected"
    assert line["status"] == 400
    assert line["service"] == "departments"
    assert "exception" not in line
    assert "exc_info" not in line
    assert MARK.decode() not in json.dumps(line)


async def test_a_bad_request_after_a_good_one_on_the_same_connection(
    service: ServiceProcess,
) -> None:
    """The problem is not only for a connection's first request (aiohttp special-cases
    that one for a bad method)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
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
    [(status, headers, body)] = parse_responses(rest)
    problem = assert_problem(status, headers, body)
    [line] = await log_lines_of(service, problem["request_id"])
    assert (line["level"], line["error"]) == ("warning", "BadHttpMethod")


async def test_the_log_has_no_traceback_and_no_request_bytes(
    service: ServiceProcess, tmp_path: Path
) -> None:
    for raw, _ in CASES.values():
        await exchange(service.port, raw)
    await service.wait_healthy()  # the process is alive and still serving
    text = service.log.read_text()
    assert "Traceback" not in text
    assert MARK.decode() not in text
    levels = {json.loads(raw)["level"] for raw in text.splitlines() if raw.startswith("{")}
    assert "error" not in levels, text
