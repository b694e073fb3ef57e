"""Slow clients straight at a service's port (what anyone who bypasses NGINX can do): a
request's head must arrive within HTTP_HEADER_TIMEOUT and its body within HTTP_BODY_TIMEOUT
(lib/http/server.py). Past either the client gets a 408 problem+json and the connection is
closed, one WARNING line is logged, and a handler whose body never arrived has written
nothing. Normal requests, kept-alive connections and a picture of several MiB sent at once
are not affected. The clients keep sending a byte every TICK while they wait, so only a
bound on the whole head or body (not on the pause between two reads) can cut them."""

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
import asyncpg
import pytest
from PIL import Image

from lib.auth.principal import Role
from tests.e2e.raw_http import parse_responses
from tests.integration.auth_support import token
from tests.integration.smtp_support import smtp_sink
from tests.reliability.stack import PASSWORD, users_env
from tools.service_process import PROCESS_MARGIN, ServiceProcess

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 1.0
# longer than the kept-alive test's idle pause (a head cut: HEADER_TIMEOUT + MARGIN at most)
KEEPALIVE_TIMEOUT = HEADER_TIMEOUT + 3.5
TICK = 0.05  # a slow client's pause between two bytes
# a due timer fires well within this on a loaded machine; a client cut by a bound on the
# pause between reads instead would never be cut (it never pauses longer than TICK)
MARGIN = 3.0
EARLY = 0.05  # the loop's timers may fire this much early (uvloop's clock resolution)


class Client(asyncio.Protocol):
    """A raw connection that keeps whatever arrives, even when a reset follows (asyncio's
    StreamReader would raise the reset instead of returning the bytes before it)."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.answered = asyncio.Event()
        self.closed = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.answered.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed.set()


async def connect(port: int) -> Client:
    _, client = await asyncio.get_running_loop().create_connection(Client, "127.0.0.1", port)
    return client


async def trickle(client: Client, data: bytes, within: float) -> tuple[float, int]:
    """Send `data` a byte every TICK until the server closes the connection; the seconds
    from the call to the close, and how many bytes were sent. Fails after `within` s."""
    assert client.transport is not None
    loop = asyncio.get_running_loop()
    began, sent = loop.time(), 0
    while not client.closed.is_set():
        if loop.time() - began > within:
            raise AssertionError(f"still open after {within} s: {bytes(client.received)!r}")
        if sent < len(data) and not client.answered.is_set():
            client.transport.write(data[sent : sent + 1])
            sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.closed.wait(), TICK)
    return loop.time() - began, sent


@pytest.fixture(scope="module")
def users_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("users")


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
            HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
            HTTP_BODY_TIMEOUT=str(BODY_TIMEOUT),
            HTTP_KEEPALIVE_TIMEOUT=str(KEEPALIVE_TIMEOUT),
        )
        service = ServiceProcess(env, tmp / "users.log", name="users")
        try:
            await service.wait_healthy()
            yield service
        finally:
            service.stop()


def account() -> dict[str, str]:
    return {
        "email": f"slow{uuid.uuid4().hex[:12]}@fixup.test",
        "password": PASSWORD,
        "first_name": "Grace",
        "last_name": "Hopper",
        "phone_number": "+1 555 0100",
        "role": "CUSTOMER",
    }


def register_head(body: bytes) -> bytes:
    return (
        b"POST /v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )


def assert_408(answer: bytes, detail: str) -> dict[str, Any]:
    [(status, headers, body)] = parse_responses(answer)
    assert status == 408, answer
    assert headers["content-type"].startswith("application/problem+json"), headers
    # the connection ends: said outright in HTTP/1.1 (a head's 408 is HTTP/1.0: no head read)
    assert answer.startswith(b"HTTP/1.0 ") or headers["connection"] == "close", headers
    assert headers["x-content-type-options"] == "nosniff"
    problem: dict[str, Any] = json.loads(body)
    assert (problem["code"], problem["title"]) == ("REQUEST_TIMEOUT", "Request timeout")
    assert problem["detail"] == detail
    assert problem["request_id"] == headers["x-request-id"]
    return problem


async def log_lines(service: ServiceProcess, needle: str) -> list[dict[str, Any]]:
    """The service's log lines containing `needle`, once there is at least one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROCESS_MARGIN
    while True:
        lines = [
            json.loads(raw)
            for raw in service.log.read_text().splitlines()
            if needle in raw and raw.startswith("{")
        ]
        if lines or loop.time() > deadline:
            return lines
        await asyncio.sleep(0.05)


def assert_one_warning(lines: list[dict[str, Any]], error: str) -> None:
    [line] = [line for line in lines if line["event"] == "request_rejected"]
    assert (line["level"], line["status"], line["error"]) == ("warning", 408, error)
    assert line["client_ip"] == "127.0.0.1"
    assert "exception" not in line


@pytest.mark.parametrize("sends", [b"X-Slow: " + b"a" * 200, b""], ids=["trickle", "nothing"])
async def test_a_slow_head_is_cut_at_the_header_timeout(
    users: ServiceProcess, sends: bytes
) -> None:
    client = await connect(users.port)
    assert client.transport is not None
    client.transport.write(b"GET /health HTTP/1.1\r\nHost: x\r\n" if sends else b"")
    seconds, sent = await trickle(client, sends, HEADER_TIMEOUT + MARGIN)
    assert HEADER_TIMEOUT - EARLY <= seconds < HEADER_TIMEOUT + MARGIN
    assert sent < len(sends) or not sends  # cut before the head was complete
    detail = "the request headers were not received within 0.5 s"
    problem = assert_408(bytes(client.received), detail)
    assert_one_warning(await log_lines(users, problem["request_id"]), "HeaderTimeout")


async def test_a_slow_body_is_a_408_and_writes_nothing(
    users: ServiceProcess, users_dsn: str
) -> None:
    body = json.dumps(account()).encode()
    client = await connect(users.port)
    assert client.transport is not None
    client.transport.write(register_head(body) + body[:10])
    seconds, sent = await trickle(client, body[10:], BODY_TIMEOUT + MARGIN)
    assert BODY_TIMEOUT - EARLY <= seconds < BODY_TIMEOUT + MARGIN
    assert 10 + sent < len(body)  # the body never arrived whole
    problem = assert_408(bytes(client.received), "the request body was not received within 1 s")
    lines = await log_lines(users, problem["request_id"])
    assert_one_warning(lines, "BodyTimeout")
    [access] = [line for line in lines if line["event"] == "request"]
    assert (access["status"], access["route"]) == (408, "/v1/auth/register")
    assert "Traceback" not in users.log.read_text()
    conn = await asyncpg.connect(users_dsn)
    try:
        email = json.loads(body)["email"]
        assert await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0
    finally:
        await conn.close()


async def test_normal_and_kept_alive_requests_are_not_cut(users: ServiceProcess) -> None:
    """Three requests on one connection; the third after an idle pause longer than the
    header timeout (idle is aiohttp's keep-alive time, not a slow head): all answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", users.port)
    try:
        for number in range(3):
            if number == 2:  # wait until a head started after ours was cut: that long idle
                slow = await connect(users.port)
                assert slow.transport is not None
                slow.transport.write(b"GET /health HTTP/1.1\r\n")
                await asyncio.wait_for(slow.closed.wait(), HEADER_TIMEOUT + MARGIN)
            body = json.dumps(account()).encode()
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
        async with http.post(f"{users.url}/v1/auth/register", json=account()) as resp:
            assert resp.status == 201, await resp.text()
            user_id = (await resp.json())["data"]["id"]
        form = aiohttp.FormData()
        form.add_field("image", picture, filename="big.png", content_type="image/png")
        headers = {"Authorization": f"Bearer {token(Role.ADMIN)}"}
        url = f"{users.url}/v1/users/{user_id}/picture"
        async with http.put(url, data=form, headers=headers) as resp:
            assert resp.status == 204, await resp.text()
    text = users.log.read_text()[logged:]
    assert "BodyTimeout" not in text
    assert "Traceback" not in text
