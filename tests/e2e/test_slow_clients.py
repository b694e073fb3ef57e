"""Slow clients, where each bound lives (ADR 0005, "Update: slow clients"):

- through NGINX, the door of every deployment: a request's head must arrive whole within
  client_header_timeout, a body may not pause longer than client_body_timeout; past either
  NGINX closes the connection and the service never sees the request. NGINX buffers a body
  before it passes it on, so a body trickled through it reaches the service whole, at once;
- straight to a service's port: the handler's read of its body is bounded by
  HTTP_BODY_TIMEOUT (lib/http/body.py: 408 problem+json, nothing written), and aiohttp
  closes a connection that has not sent a whole head within HTTP_KEEPALIVE_TIMEOUT of its
  start, as it closes an idle kept-alive one.
Normal requests, kept-alive connections and a picture of several MiB sent at once are not
affected. The slow clients keep sending a byte every TICK while they wait, so only a bound
on the whole head or body (not on the pause between two reads) can cut them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from PIL import Image

from lib.auth.principal import Role
from tests import pg
from tests.e2e.account_stack import new_account
from tests.e2e.gateway_stack import Gateway
from tests.e2e.raw_http import parse_responses
from tests.integration.auth_support import token
from tests.integration.smtp_support import smtp_sink
from tests.reliability.stack import users_env
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

GATEWAY_HEADER_TIMEOUT = 0.5  # tools.deploy.nginx --client-header-timeout
GATEWAY_BODY_TIMEOUT = 1.0  # --client-body-timeout: the longest pause between two reads
BODY_TIMEOUT = 1.0  # the service's HTTP_BODY_TIMEOUT
KEEPALIVE_TIMEOUT = 2.0  # the service's HTTP_KEEPALIVE_TIMEOUT
TICK = 0.05  # a slow client's pause between two bytes
# a due timer fires well within this on a loaded machine; a client cut by a bound on the
# pause between reads instead would never be cut (it never pauses longer than TICK)
MARGIN = 3.0
EARLY = 0.05  # a timer may fire this much early (the loops' clock resolution)


class Client(asyncio.Protocol):
    """A raw connection that keeps whatever arrives, even when a reset follows (asyncio's
    StreamReader would raise the reset instead of returning the bytes before it)."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.answered = asyncio.Event()
        self.closed = asyncio.Event()
        self.arrived = asyncio.Event()  # cleared by whoever waits for more
        self.transport: asyncio.Transport | None = None

    async def response(self, within: float) -> tuple[int, dict[str, str], bytes]:
        """The first response, once all of it (its Content-Length) has arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            head, found, rest = bytes(self.received).partition(b"\r\n\r\n")
            if found:
                [(_, headers, _)] = parse_responses(head + found)
                if len(rest) >= int(headers.get("content-length", "0")):
                    return parse_responses(bytes(self.received))[0]
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - loop.time()))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.answered.set()
        self.arrived.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed.set()


async def connect(port: int) -> Client:
    _, client = await asyncio.get_running_loop().create_connection(Client, "127.0.0.1", port)
    return client


async def trickle(client: Client, data: bytes, until: asyncio.Event, within: float) -> float:
    """Send `data` a byte every TICK (then nothing) until `until` is set; the seconds from
    the call until then. Fails after `within` s."""
    assert client.transport is not None
    loop = asyncio.get_running_loop()
    began, sent = loop.time(), 0
    while not until.is_set():
        if loop.time() - began > within:
            raise AssertionError(f"nothing after {within} s: {bytes(client.received)!r}")
        if sent < len(data) and not client.closed.is_set():
            client.transport.write(data[sent : sent + 1])
            sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), TICK)
    assert sent < len(data) or not data, "sent whole: nothing was cut"
    return loop.time() - began


@pytest.fixture(scope="module")
async def users(
    users_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("slow_clients")
    with smtp_sink() as sink:
        env = users_env(
            users_dsn,
            STORAGE_DIR=str(tmp / "storage"),
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            HTTP_BODY_TIMEOUT=str(BODY_TIMEOUT),
            HTTP_KEEPALIVE_TIMEOUT=str(KEEPALIVE_TIMEOUT),
        )
        service = ServiceProcess(env, tmp / "users.log", name="users")
        try:
            await service.wait_healthy()
            yield service
        finally:
            service.stop()


@pytest.fixture(scope="module")
async def gateway(
    users: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    tmp = tmp_path_factory.mktemp("slow_clients_gateway")
    (tmp / "docs").mkdir()
    running = Gateway(tmp, {"users": [f"127.0.0.1:{users.port}"]}, tmp / "docs")
    running.args += ["--client-header-timeout", str(GATEWAY_HEADER_TIMEOUT)]
    running.args += ["--client-body-timeout", str(GATEWAY_BODY_TIMEOUT)]
    try:
        yield await running.start()
    finally:
        running.stop()


def register_head(body: bytes, prefix: bytes = b"", request_id: str = "") -> bytes:
    rid = b"X-Request-ID: %s\r\n" % request_id.encode() if request_id else b""
    return (
        b"POST %s/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"%sContent-Length: %d\r\n\r\n" % (prefix, rid, len(body))
    )


async def registered(dsn: str, body: bytes) -> int:
    async with pg.connected(dsn) as conn:
        email = json.loads(body)["email"]
        count: int = await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
        return count


async def log_lines(text: Callable[[], str], needle: str) -> list[dict[str, Any]]:
    """The JSON lines of a log (`text` reads it) holding `needle`, once there is one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROCESS_MARGIN
    while True:
        lines = [
            json.loads(raw) for raw in text().splitlines() if needle in raw and raw.startswith("{")
        ]
        if lines or loop.time() > deadline:
            return lines
        await asyncio.sleep(0.05)


# --- through NGINX --------------------------------------------------------------------------


@pytest.mark.parametrize("sends", [b"X-Slow: " + b"a" * 200, b""], ids=["trickle", "nothing"])
async def test_nginx_closes_a_slow_head_at_its_header_timeout(
    gateway: Gateway, users: ServiceProcess, sends: bytes
) -> None:
    logged = len(users.log.read_text())
    client = await connect(gateway.port)
    assert client.transport is not None
    client.transport.write(b"GET /api/users/health HTTP/1.1\r\nHost: x\r\n" if sends else b"")
    within = GATEWAY_HEADER_TIMEOUT + MARGIN
    seconds = await trickle(client, sends, client.closed, within)
    assert GATEWAY_HEADER_TIMEOUT - EARLY <= seconds < within
    assert bytes(client.received) == b""  # nginx answers a timed-out head with a close
    assert '"path":"/health"' not in users.log.read_text()[logged:]  # never passed on


async def test_nginx_closes_a_stalled_body_and_the_service_never_sees_it(
    gateway: Gateway, users: ServiceProcess, users_dsn: str
) -> None:
    body, rid = json.dumps(new_account()).encode(), uuid.uuid4().hex
    client = await connect(gateway.port)
    assert client.transport is not None
    client.transport.write(register_head(body, b"/api/users", rid) + body[:10])
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(client.closed.wait(), GATEWAY_BODY_TIMEOUT + MARGIN)
    assert loop.time() - began >= GATEWAY_BODY_TIMEOUT - EARLY
    assert bytes(client.received) == b""  # a close, no answer
    [line] = await log_lines(gateway.access_log.read_text, rid)
    assert line["status"] == 408  # nginx's access log says why it closed
    assert line["upstream_status"] in ("", "-"), line  # never passed on
    assert rid not in users.log.read_text()
    assert await registered(users_dsn, body) == 0


async def test_a_body_trickled_through_nginx_reaches_the_service_whole(
    gateway: Gateway, users: ServiceProcess, users_dsn: str
) -> None:
    """Pauses shorter than client_body_timeout for longer than the service's own
    HTTP_BODY_TIMEOUT: nginx buffers the body, the service gets it at once and answers."""
    body = json.dumps(new_account()).encode()
    pieces = 10
    pause = (BODY_TIMEOUT + 0.5) / pieces  # the client's pace, well below nginx's bound
    assert pause < GATEWAY_BODY_TIMEOUT
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(register_head(body, b"/api/users"))
        loop = asyncio.get_running_loop()
        began = loop.time()
        size = -(-len(body) // pieces)
        for start in range(0, len(body), size):
            await asyncio.sleep(pause)
            writer.write(body[start : start + size])
        assert loop.time() - began > BODY_TIMEOUT
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROCESS_MARGIN)
    finally:
        writer.close()
    [(status, _, _)] = parse_responses(head)
    assert status == 201, head
    assert await registered(users_dsn, body) == 1


# --- straight to the service's port ---------------------------------------------------------


async def test_a_slow_body_at_the_port_is_a_408_and_writes_nothing(
    users: ServiceProcess, users_dsn: str
) -> None:
    body = json.dumps(new_account()).encode()
    client = await connect(users.port)
    assert client.transport is not None
    client.transport.write(register_head(body) + body[:10])
    within = BODY_TIMEOUT + MARGIN
    seconds = await trickle(client, body[10:], client.answered, within)
    assert BODY_TIMEOUT - EARLY <= seconds < within
    status, headers, answer = await client.response(PROCESS_MARGIN)
    assert status == 408, client.received
    assert headers["content-type"].startswith("application/problem+json"), headers
    assert headers["connection"] == "close"
    assert headers["x-content-type-options"] == "nosniff"
    problem = json.loads(answer)
    assert (problem["code"], problem["title"]) == ("REQUEST_TIMEOUT", "Request timeout")
    assert problem["detail"] == "the request body was not received within 1 s"
    assert problem["request_id"] == headers["x-request-id"]
    [access] = await log_lines(users.log.read_text, problem["request_id"])
    assert (access["event"], access["status"], access["route"]) == (
        "request",
        408,
        "/v1/auth/register",
    )
    assert "Traceback" not in users.log.read_text()
    assert await registered(users_dsn, body) == 0


async def test_a_slow_head_at_the_port_is_closed_at_the_keepalive_timeout(
    users: ServiceProcess,
) -> None:
    client = await connect(users.port)
    assert client.transport is not None
    client.transport.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    within = KEEPALIVE_TIMEOUT + MARGIN
    seconds = await trickle(client, b"X-Slow: " + b"a" * 1000, client.closed, within)
    assert KEEPALIVE_TIMEOUT - EARLY <= seconds < within
    assert bytes(client.received) == b""


async def test_normal_and_kept_alive_requests_are_not_cut(users: ServiceProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", users.port)
    try:
        for _ in range(3):
            body = json.dumps(new_account()).encode()
            writer.write(register_head(body) + body)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROCESS_MARGIN)
            [(status, headers, _)] = parse_responses(head)
            assert status == 201, head
            assert headers.get("connection", "") != "close"
            await reader.readexactly(int(headers["content-length"]))
    finally:
        writer.close()


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(
    users: ServiceProcess,
) -> None:
    """After an answer, a connection that sends nothing more is closed by the service at
    HTTP_KEEPALIVE_TIMEOUT (aiohttp's default would keep it an hour), not before."""
    client = await connect(users.port)
    assert client.transport is not None
    loop = asyncio.get_running_loop()
    client.transport.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(client.answered.wait(), PROCESS_MARGIN)
    answered = loop.time()
    [(status, headers, _)] = parse_responses(bytes(client.received))
    assert status == 200
    assert headers.get("connection", "") != "close"
    await asyncio.wait_for(client.closed.wait(), KEEPALIVE_TIMEOUT + MARGIN)
    idle = loop.time() - answered
    assert idle >= KEEPALIVE_TIMEOUT - EARLY, f"closed after {idle:.3f} s of idle"
    [(status, _, _)] = parse_responses(bytes(client.received))  # nothing sent at the close
    assert status == 200


def noise_png(width: int, height: int) -> bytes:
    """A PNG that does not compress: about width x height x 3 bytes."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    return out.getvalue()


async def test_a_big_picture_sent_at_once_is_not_cut(users: ServiceProcess) -> None:
    picture = noise_png(1400, 1000)
    assert len(picture) > 4 * 1024 * 1024  # several times what arrives in one read
    logged = len(users.log.read_text())  # the lines of this test come after
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{users.url}/v1/auth/register", json=new_account()) as resp:
            assert resp.status == 201, await resp.text()
            user_id = (await resp.json())["data"]["id"]
        form = aiohttp.FormData()
        form.add_field("image", picture, filename="big.png", content_type="image/png")
        headers = {"Authorization": f"Bearer {token(Role.ADMIN)}"}
        url = f"{users.url}/v1/users/{user_id}/picture"
        async with http.put(url, data=form, headers=headers) as resp:
            assert resp.status == 204, await resp.text()
    text = users.log.read_text()[logged:]
    assert '"status":408' not in text
    assert "Traceback" not in text
