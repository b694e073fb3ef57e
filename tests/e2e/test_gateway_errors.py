"""Every error NGINX itself answers is problem+json (nginx/snippets/errors.conf), each
provoked for real against a real nginx: a request it cannot parse (400), a header too large
(494, answered 400), a directory without an index (403), no route (404), a method it
refuses (405), a body too large (413), a URI too long (414), a broken body buffer (500), an
upstream answering garbage (502) or refusing connections (503), one that cannot be reached
in time (504). The services' own problems pass through untouched. nginx has no limit_req,
so it never answers 429 itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lib import registry
from tests.e2e.gateway_stack import Gateway, departments_env, require_nginx
from tests.e2e.raw_http import exchange, parse_responses
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess

BASE = "https://fixup.dev/problems/"
SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
CONNECT_TIMEOUT = 2.0  # proxy_connect_timeout in nginx/conf.d/30-gateway.conf
MARK = "zq7marker"  # in the requests that may carry it: never in an answer


class Garbage:
    """An upstream that answers every connection with a status line and then a header
    line that is not HTTP (bytes without any status line nginx would pass on as HTTP/0.9)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def start(self) -> Garbage:
        async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\n\x01 not a header\r\n\r\n")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(answer, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so a connect
    neither succeeds nor is refused - it times out, like a host that is gone."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    try:
        for _ in range(2):  # backlog 0 still queues one: fill it (and the SYN queue's slot)
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@dataclass
class Edge:
    gateway: Gateway
    service: ServiceProcess
    temp_dir: Path


@pytest.fixture(scope="module")
async def edge(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Edge]:
    require_nginx()
    tmp = tmp_path_factory.mktemp("gateway-errors")
    docs = tmp / "docs"
    (docs / "no-index").mkdir(parents=True)
    (docs / "index.html").write_text("<!doctype html><title>docs</title>")
    service = ServiceProcess(departments_env(migrated_db("departments")), tmp / "departments.log")
    garbage = await Garbage().start()
    down = free_port()
    with black_hole() as hole:
        gateway = Gateway(
            tmp,
            {  # every REST service of the registry down but these three
                **{s.name: [f"127.0.0.1:{down}"] for s in registry.gateway_services()},
                "departments": [f"127.0.0.1:{service.port}"],
                "users": [f"127.0.0.1:{garbage.port}"],
                "orders": [f"127.0.0.1:{hole}"],
            },
            docs,
        )
        try:
            await service.wait_healthy()
            await gateway.start()
            yield Edge(gateway, service, gateway.runtime / "tmp")
        finally:
            gateway.stop()
            service.stop()
            await garbage.stop()


async def fetch(
    edge: Edge, method: str, path: str, *, headers: dict[str, str] | None = None,
    data: bytes | None = None, base: str | None = None,
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, (base or edge.gateway.url) + path, headers=headers or {}, data=data
        ) as resp,
    ):
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


async def raw(edge: Edge, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """What aiohttp's client will not send: written to the socket as it is."""
    [answer] = parse_responses(await exchange(edge.gateway.port, request))
    return answer


def assert_problem(
    answer: tuple[int, dict[str, str], bytes], status: int, code: str, slug: str
) -> dict[str, Any]:
    got_status, headers, body = answer
    assert got_status == status, (got_status, body)
    assert headers["content-type"] == "application/problem+json", headers
    for name, value in SECURITY.items():
        assert headers.get(name) == value, (name, headers)
    assert MARK.encode() not in body
    problem: dict[str, Any] = json.loads(body)
    assert set(problem) == {"type", "title", "status", "detail", "code", "request_id"}
    assert problem["type"] == BASE + slug
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["request_id"] == headers["x-request-id"]
    return problem


@pytest.mark.parametrize(
    ("request_bytes", "request_id"),
    [
        (b"GET /api/departments/health HTTP/1.1\r\n\r\n", None),  # HTTP/1.1 without Host
        (  # a valid request id sent before the second Host: kept in the answer
            b"GET /api/departments/health HTTP/1.1\r\nX-Request-ID: bad.req.1\r\nHost: a\r\n"
            b"Host: " + MARK.encode() + b"\r\n\r\n",
            "bad.req.1",
        ),
        (b"GET /" + MARK.encode() + b"\x01 HTTP/1.1\r\nHost: a\r\n\r\n", None),
        (
            b"GET /api/departments/health HTTP/1.1\r\nHost: a\r\nContent-Length: "
            + MARK.encode()
            + b"\r\n\r\n",
            None,
        ),
    ],
    ids=["no Host", "two Hosts", "control byte in the URI", "bad Content-Length"],
)
async def test_400_a_request_nginx_cannot_parse(
    edge: Edge, request_bytes: bytes, request_id: str | None
) -> None:
    problem = assert_problem(await raw(edge, request_bytes), 400, "BAD_REQUEST", "bad-request")
    assert problem["detail"] == "the request is not valid HTTP"
    if request_id is not None:
        assert problem["request_id"] == request_id


@pytest.mark.parametrize("size", [9 * 1024, 40 * 1024], ids=["one header", "all headers"])
async def test_494_a_header_too_large_is_a_400(edge: Edge, size: int) -> None:
    headers = {f"X-Big-{i}": MARK * (1000 // len(MARK)) for i in range(size // 1024)}
    if size < 10 * 1024:
        headers = {"X-Big": MARK * (size // len(MARK))}
    answer = await fetch(edge, "GET", "/api/departments/health", headers=headers)
    problem = assert_problem(answer, 400, "BAD_REQUEST", "bad-request")
    assert problem["detail"] == "a request header is too large"


async def test_403_a_directory_without_an_index(edge: Edge) -> None:
    assert_problem(await fetch(edge, "GET", "/docs/no-index/"), 403, "FORBIDDEN", "forbidden")


@pytest.mark.parametrize(
    "path", ["/", "/nope", f"/api/{MARK}/v1/x", "/api/departments", "/docs/missing.js"]
)
async def test_404_no_route(edge: Edge, path: str) -> None:
    assert_problem(await fetch(edge, "GET", path), 404, "NOT_FOUND", "not-found")


@pytest.mark.parametrize(
    ("method", "path"), [("TRACE", "/api/departments/health"), ("POST", "/docs/index.html")]
)
async def test_405_a_method_nginx_refuses(edge: Edge, method: str, path: str) -> None:
    answer = await fetch(edge, method, path)
    assert_problem(answer, 405, "METHOD_NOT_ALLOWED", "method-not-allowed")


async def test_413_a_body_too_large(edge: Edge) -> None:
    answer = await fetch(edge, "POST", "/api/departments/v1/departments", data=b"x" * (2 << 20))
    assert_problem(answer, 413, "PAYLOAD_TOO_LARGE", "payload-too-large")
    # the picture upload allows 6m: 5 MiB passes NGINX (users answers garbage -> 503, not 413)
    path = f"/api/users/v1/users/{uuid.uuid4()}/picture"
    answer = await fetch(edge, "PUT", path, data=b"x" * (5 << 20))
    assert answer[0] == 503, answer
    answer = await fetch(edge, "PUT", path, data=b"x" * (7 << 20))
    assert_problem(answer, 413, "PAYLOAD_TOO_LARGE", "payload-too-large")


async def test_414_a_uri_too_long(edge: Edge) -> None:
    answer = await fetch(edge, "GET", "/api/departments/health?q=" + MARK * 1000)
    assert_problem(answer, 414, "URI_TOO_LONG", "uri-too-long")


async def test_500_the_body_buffer_cannot_be_written(edge: Edge) -> None:
    """A body larger than client_body_buffer_size goes to client_body_temp_path; with that
    directory gone (a full or broken disk, say), nginx fails the request itself."""
    body_dir = edge.temp_dir / "client_body"
    shutil.rmtree(body_dir)
    body_dir.write_text("not a directory")  # even root cannot create a file below this
    try:
        answer = await fetch(
            edge, "POST", "/api/departments/v1/departments", data=b"x" * (256 * 1024)
        )
    finally:
        body_dir.unlink()
        body_dir.mkdir()
    problem = assert_problem(answer, 500, "INTERNAL_ERROR", "internal-error")
    assert problem["detail"] == "An unexpected error occurred."


@pytest.mark.parametrize(
    "path", ["/api/users/v1/users", "/api/catalog/v1/services"], ids=["502 garbage", "503 down"]
)
async def test_502_503_an_upstream_that_fails_is_a_503(edge: Edge, path: str) -> None:
    answer = await fetch(edge, "GET", path, headers={"X-Request-ID": "up.1"})
    problem = assert_problem(answer, 503, "SERVICE_UNAVAILABLE", "service-unavailable")
    assert answer[1]["retry-after"] == "5"
    assert problem["request_id"] == "up.1"
    assert problem["title"] == "Service unavailable"
    assert problem["detail"] == "the upstream service is unavailable"
    # nginx itself is fine: the next request to a live service still works
    assert (await fetch(edge, "GET", "/api/departments/health"))[0] == 200


async def test_504_an_upstream_that_cannot_be_reached_in_time(edge: Edge) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await fetch(edge, "GET", "/api/orders/v1/orders")
    assert loop.time() - started >= CONNECT_TIMEOUT * 0.9  # it waited for the connect
    assert_problem(answer, 504, "SERVICE_UNAVAILABLE", "service-unavailable")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/departments/7b0c8f52-3e1d-4a6b-9c2f-5d8e1a4b7c30"),  # the service's 404
        ("DELETE", "/health"),  # the service's 405
        ("GET", "/v1/departments?limit=0"),  # the service's 400
    ],
)
async def test_a_services_own_problem_passes_through(edge: Edge, method: str, path: str) -> None:
    rid = {"X-Request-ID": f"pass.{uuid.uuid4().hex}"}
    via = await fetch(edge, method, "/api/departments" + path, headers=rid)
    direct = await fetch(edge, method, path, headers=rid, base=edge.service.url)
    assert via[0] == direct[0] >= 400
    assert via[1]["content-type"] == direct[1]["content-type"] == "application/problem+json"
    assert json.loads(via[2]) == json.loads(direct[2])  # the service's detail, not nginx's
    for name in ("allow",):
        assert via[1].get(name) == direct[1].get(name)
