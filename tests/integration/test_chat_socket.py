"""The chat WebSocket session (services/chat/ws.py) in detail, against real PostgreSQL: the
handshake's every refusal with its detail, the subprotocol parsing, the frames a client
sends and the error frames it gets back, the per-user limit, and every close from the
server's side with its code, reason and metric (expired, revoked by the sweep, too slow,
shutting down, a binary frame), close_all waiting for every close, the sockets' user on
their log lines and their tasks' own contexts. The conversation is a row of the chat database (no
catalog or orders needed), pub/sub is the in-process one: fast and self-contained, the
killing tests of the mutation run for ws.py (docs/mutation.md). The same paths across
real services and Redis: tests/integration/test_chat_ws.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import struct
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from socket import SO_LINGER, SOL_SOCKET
from typing import Any

import aiohttp
import orjson
import pytest
import structlog
import structlog.testing
from aiohttp import web
from prometheus_client import REGISTRY
from pydantic import SecretStr

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from lib.errors import ServiceUnavailable
from lib.http.keys import REVOCATIONS
from services.chat import ws
from services.chat.app import create_app as chat_app
from services.chat.deps import HUB
from tests import pg
from tests.integration.auth_support import KEYS, wall_ms
from tests.integration.chat_support import (
    StalledClient,
    chat_settings,
    closes,
    eventually,
    open_now,
    sockets_open,
    token_of,
)
from tests.integration.orders_support import Caller, caller
from tests.logging_support import capture_logs, logging_restored
from tests.servers import Servers

RECEIVE = 10.0  # bound on every wait for a frame (they come in milliseconds)
ORIGIN = "http://localhost:8080"  # the default CORS_ALLOW_ORIGINS


@dataclass
class Talk:
    id: str
    customer: Caller
    provider: Caller

    @property
    def path(self) -> str:
        return f"/v1/conversations/{self.id}/ws"


@pytest.fixture
async def talk(chat_dsn: str) -> Talk:
    customer, provider = caller(Role.CUSTOMER), caller(Role.PROVIDER)
    made = await pg.fetchval(
        chat_dsn,
        "INSERT INTO conversations (order_id, customer_id, provider_id)"
        " VALUES ($1, $2, $3) RETURNING id",
        uuid.uuid4(),
        customer.id,
        provider.id,
    )
    return Talk(str(made), customer, provider)


Factory = Callable[..., Awaitable[Any]]


@pytest.fixture
def factory(aiohttp_client: Any, chat_dsn: str, redis_prefix: str) -> Factory:
    async def make(**overrides: Any) -> Any:
        return await aiohttp_client(chat_app(chat_settings(chat_dsn, redis_prefix, **overrides)))

    return make


@pytest.fixture
async def chat(factory: Factory) -> Any:
    return await factory()


def upgrade(protocols: str | None = None, **headers: str) -> dict[str, str]:
    """The headers of a WebSocket handshake, sent as a plain GET (to read a refusal)."""
    made = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    if protocols is not None:
        made["Sec-WebSocket-Protocol"] = protocols
    return made


async def refusal(chat: Any, path: str, headers: dict[str, str]) -> tuple[int, str]:
    resp = await chat.get(path, headers=headers)
    assert resp.content_type == "application/problem+json", await resp.text()
    return resp.status, (await resp.json())["detail"]


async def open_socket(chat: Any, talk: Talk, who: Caller, **kw: Any) -> Any:
    return await chat.ws_connect(talk.path, protocols=("fixup.bearer", token_of(who)), **kw)


async def next_json(socket: Any) -> dict[str, Any]:
    message = await socket.receive(timeout=RECEIVE)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    payload: dict[str, Any] = orjson.loads(message.data)
    return payload


async def closed_with(socket: Any) -> tuple[int, str]:
    message = await socket.receive(timeout=RECEIVE)
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    return message.data, message.extra


async def started_sessions(chat: Any, count: int) -> list[ws.Session]:
    """The server's sessions of the `count` sockets open (started: their pumps run)."""
    sessions = chat.app[ws.SOCKETS]

    async def started() -> bool:
        return len(sessions) == count and all(s.pump is not None for s in sessions)

    await eventually(started, f"{count} sockets' sessions started")
    return list(sessions)


async def only_session(chat: Any) -> ws.Session:
    """The server's session of the one socket open (started: its pump runs)."""
    (session,) = await started_sessions(chat, 1)
    return session


def send(body: str) -> str:
    return orjson.dumps({"type": "send", "body": body}).decode()


async def test_the_handshake_refusals(chat: Any, talk: Talk) -> None:
    customer = talk.customer
    mine = token_of(customer)
    needs = "offer the subprotocols 'fixup.bearer' and the access token"
    for offered in ("fixup.bearer", f"fixup.bearer, {mine}, {mine}", "fixup.bearer, , "):
        assert await refusal(chat, talk.path, upgrade(offered)) == (401, needs)
    assert await refusal(chat, talk.path, upgrade()) == (401, "authentication required")
    assert await refusal(chat, talk.path, upgrade(mine)) == (401, "authentication required")
    past = datetime.now(UTC) - timedelta(minutes=5)
    expired, _ = TokenSigner(KEYS[0], 60, clock=lambda: past).issue(
        customer.id, Role.CUSTOMER, True
    )
    status, _ = await refusal(chat, talk.path, upgrade(f"fixup.bearer, {expired}"))
    assert status == 401
    cookie = f"fixup_access={mine}"
    needs_origin = "a cookie-authenticated WebSocket needs an allowed Origin"
    assert await refusal(chat, talk.path, upgrade(Cookie=cookie)) == (403, needs_origin)
    evil = upgrade(Cookie=cookie, Origin="https://evil.test")
    assert await refusal(chat, talk.path, evil) == (403, needs_origin)
    stranger = token_of(caller(Role.CUSTOMER))
    assert (await refusal(chat, talk.path, upgrade(f"fixup.bearer, {stranger}")))[0] == 404
    other = f"/v1/conversations/{uuid.uuid4()}/ws"
    assert (await refusal(chat, other, upgrade(f"fixup.bearer, {mine}")))[0] == 404
    malformed = "/v1/conversations/nope/ws"
    assert (await refusal(chat, malformed, upgrade(f"fixup.bearer, {mine}")))[0] == 400
    assert (await refusal(chat, talk.path, upgrade(Authorization="Bearer nope")))[0] == 401
    plain = await chat.get(talk.path, headers=customer.headers)  # no upgrade asked
    assert (plain.status, plain.content_type) == (400, "application/problem+json")
    assert (await plain.json())["detail"] == (
        "this route speaks WebSocket only (Upgrade: websocket)"
    )
    # a token revoked since it was signed
    await chat.app[REVOCATIONS].revoke(customer.id, wall_ms())
    assert await refusal(chat, talk.path, upgrade(f"fixup.bearer, {mine}")) == (
        401,
        "token revoked",
    )


async def test_a_service_without_a_key_refuses_every_token(factory: Factory, talk: Talk) -> None:
    chat = await factory(jwt_public_key=SecretStr(""))  # no verifier: no token is accepted
    offered = upgrade(f"fixup.bearer, {token_of(talk.customer)}")
    assert await refusal(chat, talk.path, offered) == (401, "this service does not accept tokens")


async def test_the_ways_in(chat: Any, talk: Talk) -> None:
    customer, provider = talk.customer, talk.provider
    # the handshake's response, as aiohttp's client tracing hands it over
    handshakes: list[aiohttp.ClientResponse] = []

    async def ended(_: aiohttp.ClientSession, __: Any, end: aiohttp.TraceRequestEndParams) -> None:
        handshakes.append(end.response)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(ended)
    # the subprotocols, spaced and with an empty one, win over an Authorization header
    offered = f" fixup.bearer ,, {token_of(provider)} "
    async with aiohttp.ClientSession(trace_configs=[trace]) as traced:
        socket = await traced.ws_connect(
            chat.make_url(talk.path),
            headers={
                "Sec-WebSocket-Protocol": offered,
                "X-Request-ID": "ws-in-1",
                **customer.headers,
            },
            compress=15,  # the client offers permessage-deflate
        )
        [handshake] = handshakes  # the trace saw the handshake's response, once
        assert handshake.status == 101
        assert handshake.headers["Sec-WebSocket-Protocol"] == "fixup.bearer"  # echoed
        assert handshake.headers["X-Request-ID"] == "ws-in-1"
        assert "Sec-WebSocket-Extensions" not in handshake.headers  # deflate declined
        assert socket.compress == 0
        await socket.send_str(send("who am I"))
        assert (await next_json(socket))["data"]["author_id"] == str(provider.id)
        await socket.close()
    # the cookie from an allowed Origin; an Authorization header needs none
    socket = await chat.ws_connect(
        talk.path, headers={"Cookie": f"fixup_access={token_of(customer)}", "Origin": ORIGIN}
    )
    assert socket.protocol is None
    await socket.send_str(send("by cookie"))
    assert (await next_json(socket))["data"]["author_id"] == str(customer.id)
    await socket.close()
    socket = await chat.ws_connect(talk.path, headers=provider.headers)
    await socket.send_str(send("by header"))
    assert (await next_json(socket))["data"]["author_id"] == str(provider.id)
    await socket.close()
    sessions = chat.app[ws.SOCKETS]

    async def all_gone() -> bool:
        return not sessions

    await eventually(all_gone, "every closed socket's session dropped")


async def test_frames_and_their_errors(chat: Any, talk: Talk) -> None:
    opened = open_now()
    mine = await open_socket(chat, talk, talk.customer)
    theirs = await open_socket(chat, talk, talk.provider)
    await sockets_open(opened + 2)
    await mine.send_str(send("  hello  "))
    got = [await next_json(mine), await next_json(theirs)]
    assert got[0] == got[1]
    assert got[0]["type"] == "message"
    assert (got[0]["data"]["body"], got[0]["data"]["author_id"]) == ("hello", str(talk.customer.id))
    for frame, expected in [
        ("{not json", (400, "BAD_REQUEST", "the frame is not valid JSON", None)),
        (
            '{"type": "send", "body": "x", "extra": 1}',
            (
                400,
                "VALIDATION_ERROR",
                "the frame is invalid",
                [{"field": "extra", "message": "unknown field"}],
            ),
        ),
    ]:
        await theirs.send_str(frame)
        error = await next_json(theirs)
        assert error["type"] == "error", frame
        details = error["error"]
        assert (
            details["status"],
            details["code"],
            details["detail"],
            details.get("errors"),
        ) == expected
    for frame in (send("   "), send("a\x00b"), '{"type": "shout", "body": "x"}', "[1, 2]"):
        await theirs.send_str(frame)
        error = (await next_json(theirs))["error"]
        assert (error["status"], error["code"]) == (400, "VALIDATION_ERROR"), frame
    await theirs.send_str(send("after the errors"))
    for socket in (mine, theirs):  # the customer saw none of the errors: this comes next
        assert (await next_json(socket))["data"]["body"] == "after the errors"
    await mine.close()
    await sockets_open(opened + 1)
    # a frame above 64 KiB: closed (1009, too big)
    await theirs.send_str(send("x" * (64 * 1024)))
    code, _ = await closed_with(theirs)
    assert code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await sockets_open(opened)


async def test_a_binary_frame_closes_with_1003(chat: Any, talk: Talk) -> None:
    before = closes("unsupported")
    socket = await open_socket(chat, talk, talk.customer)
    await socket.send_bytes(b"binary")
    assert await closed_with(socket) == (1003, "text frames only")
    assert closes("unsupported") == before + 1


async def test_an_unexpected_failure_is_a_500_frame(
    chat: Any, talk: Talk, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ws, "store", broken)
    with capture_bound_logs() as logs:
        socket = await open_socket(chat, talk, talk.customer)
        await socket.send_str(send("hi"))
        error = await next_json(socket)
    assert error == {
        "type": "error",
        "error": {
            "status": 500,
            "code": "INTERNAL_ERROR",
            "detail": "An unexpected error occurred.",
        },
    }
    failed = [entry for entry in logs if entry["event"] == "chat_send_failed"]
    assert [(e["log_level"], e["error"]) for e in failed] == [("error", "RuntimeError('boom')")]
    # the token came as a subprotocol (no Authorization for the auth middleware to read):
    # the socket's log lines name its user all the same
    assert failed[0]["user_id"] == str(talk.customer.id)
    await socket.close()


async def test_the_per_user_limit_counts_frames_with_requests(factory: Factory, talk: Talk) -> None:
    chat = await factory(rate_limit_user_rate=0.001, rate_limit_user_burst=2)
    listed = await chat.get("/v1/conversations", headers=talk.customer.headers)
    assert listed.status == 200  # a request takes one of the user's two
    socket = await open_socket(chat, talk, talk.customer)  # not counted: no header
    await socket.send_str(send("one"))
    assert (await next_json(socket))["data"]["body"] == "one"
    await socket.send_str(send("two"))
    error = (await next_json(socket))["error"]
    assert (error["status"], error["code"]) == (429, "RATE_LIMIT_EXCEEDED")
    await socket.close()


async def test_the_token_expiry_closes_with_4001(chat: Any, talk: Talk) -> None:
    before, opened = closes("expired"), open_now()
    short, _ = TokenSigner(KEYS[0], 1).issue(talk.provider.id, Role.PROVIDER, True)
    socket = await chat.ws_connect(talk.path, protocols=("fixup.bearer", short))
    assert await closed_with(socket) == (4001, "token expired")
    assert closes("expired") == before + 1
    await sockets_open(opened)  # the server let go of it


async def test_a_token_expired_by_the_start_closes_at_once(chat: Any, talk: Talk) -> None:
    """The expiry timer is the token's time left, none when it ran out between the
    handshake and the start."""
    await open_socket(chat, talk, talk.customer)
    session = await only_session(chat)
    gone = replace(session.principal, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    late = ws.Session(session.request, session.ws, gone)
    loop = asyncio.get_running_loop()
    late.start()
    try:
        assert late.expiry is not None
        assert late.expiry.when() <= loop.time()  # due now, not a moment later
    finally:
        await late.finish()  # cancels it before it runs: the real session keeps its socket


async def test_pings(factory: Factory, talk: Talk) -> None:
    chat = await factory(ws_ping_interval=0.2)
    socket = await open_socket(chat, talk, talk.customer, autoping=False)
    frame = await socket.receive(timeout=RECEIVE)
    assert frame.type == aiohttp.WSMsgType.PING
    await socket.pong(frame.data)
    await socket.close()


async def test_a_full_queue_closes_with_4008(factory: Factory, talk: Talk) -> None:
    chat = await factory(ws_send_queue=3)
    before = closes("slow")
    socket = await open_socket(chat, talk, talk.customer)
    session = await only_session(chat)
    assert session.socket.limit == 3
    for n in range(4):  # faster than any pump: nothing is sent between these
        session.socket.push(b'{"n": %d}' % n)
    assert await closed_with(socket) == (4008, "too slow: send queue full")
    assert closes("slow") == before + 1
    await sockets_open(0)


async def test_shutdown_closes_every_socket_with_1001(chat: Any, talk: Talk) -> None:
    before = closes("shutdown")
    sockets = [await open_socket(chat, talk, who) for who in (talk.customer, talk.provider)]
    sessions = await started_sessions(chat, 2)
    # the clients read (and so answer the close) while the server closes
    reads = [asyncio.create_task(closed_with(socket)) for socket in sockets]
    await ws.close_all(chat.app)
    # close_all returns when every close is over: the drain comes after it
    assert [s.closer is not None and s.closer.done() for s in sessions] == [True, True]
    for read in reads:
        assert await read == (1001, "server shutting down")
    assert closes("shutdown") == before + 2
    await ws.close_all(chat.app)  # again: each is closed once
    assert closes("shutdown") == before + 2


async def test_shutdown_survives_a_close_cancelled_meanwhile(chat: Any, talk: Talk) -> None:
    """A close cancelled while close_all waits (its handler cancelled) ends close_all
    neither early nor with an error: the other closes are still waited for."""
    sockets = [await open_socket(chat, talk, who) for who in (talk.customer, talk.provider)]
    sessions = await started_sessions(chat, 2)
    shutting = asyncio.create_task(ws.close_all(chat.app))
    await asyncio.sleep(0)  # one turn: close_all starts both closes and waits for them
    await asyncio.sleep(0)  # another: each close runs up to its wait for the reading loop
    first, second = (s.closer for s in sessions)
    assert first is not None
    assert second is not None
    assert (first.done(), second.done(), shutting.done()) == (False, False, False)
    first.cancel()
    for socket in sockets:  # the peers answer: the other close ends
        assert await closed_with(socket) == (1001, "server shutting down")
    await asyncio.wait({shutting}, timeout=RECEIVE)
    assert (shutting.done(), shutting.cancelled()) == (True, False)  # no CancelledError
    shutting.result()
    assert first.cancelled()
    assert (second.done(), second.cancelled()) == (True, False)


async def test_the_sweep_closes_revoked_sockets(chat: Any, talk: Talk) -> None:
    app = chat.app
    before = closes("revoked")
    assert await ws.sweep_revoked(app) == 0  # no socket: nothing asked
    revoked = [await open_socket(chat, talk, talk.customer) for _ in range(2)]
    kept = await open_socket(chat, talk, talk.provider)
    assert await ws.sweep_revoked(app) == 0
    await app[REVOCATIONS].revoke(talk.customer.id, wall_ms())
    assert await ws.sweep_revoked(app) == 2
    for socket in revoked:
        assert await closed_with(socket) == (4001, "token revoked")
    assert closes("revoked") == before + 2
    await kept.send_str(send("still here"))
    assert (await next_json(kept))["data"]["body"] == "still here"
    await kept.close()


async def test_the_sweep_runs_by_itself_and_survives_a_failure(
    factory: Factory, talk: Talk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep is a task of its own, named, in a context of its own: nothing bound
    where the app started is on its log lines."""
    failures: list[int] = []
    with capture_bound_logs() as logs:
        structlog.contextvars.bind_contextvars(started_by="the test")
        chat = await factory(ws_revocation_check=0.05)
        sweeps = [t for t in asyncio.all_tasks() if t.get_name() == "chat-revocation-sweep"]
        assert len(sweeps) == 1
        revocations = chat.app[REVOCATIONS]
        real = revocations.revoked

        async def once_unavailable(principals: Any) -> Any:
            if not failures:
                failures.append(1)
                raise ServiceUnavailable("redis away")
            return await real(principals)

        socket = await open_socket(chat, talk, talk.customer)
        monkeypatch.setattr(revocations, "revoked", once_unavailable)
        await revocations.revoke(talk.customer.id, wall_ms())
        assert await closed_with(socket) == (4001, "token revoked")
    warned = [e for e in logs if e["event"] == "chat_revocation_sweep_failed"]
    assert [(e["log_level"], e["detail"]) for e in warned] == [("warning", "redis away")]
    assert "started_by" not in warned[0]


async def test_a_closing_socket_sends_nothing_more_and_closes_once(chat: Any, talk: Talk) -> None:
    before = (closes("expired"), closes("shutdown"))
    socket = await open_socket(chat, talk, talk.customer)
    session = await only_session(chat)
    session.socket.push(b'{"type": "late"}')  # queued, not sent yet
    session.shut(4001, "token expired", "expired")
    session.shut(1001, "server shutting down", "shutdown")  # closing already: nothing
    assert await closed_with(socket) == (4001, "token expired")  # nothing before it
    assert (closes("expired"), closes("shutdown")) == (before[0] + 1, before[1])


async def test_a_peer_that_does_not_read_is_let_go(factory: Factory, talk: Talk) -> None:
    """Its writes back up: the close waits WS_CLOSE_TIMEOUT, not for the peer."""
    chat = await factory(ws_send_queue=2, ws_close_timeout=0.3)
    stalled = StalledClient(chat.port, talk.path, token_of(talk.customer))
    try:
        await stalled.handshake()
        session = await only_session(chat)
        big = b'{"pad": "' + b"x" * (4 << 20) + b'"}'
        session.socket.push(big)

        async def sending() -> bool:
            return not session.socket.frames  # the pump took it: its write is stuck

        await eventually(sending, "the pump writing to the stalled peer")
        for _ in range(3):  # 2 queue up, the third overflows: closed 4008
            session.socket.push(big)
        assert session.closer is not None
        await asyncio.wait_for(session.closer, RECEIVE)  # gave up, without an error
        texts, code = await stalled.frames_until_close()  # what was written reaches it
        assert (texts, code) == (1, 4008)
    finally:
        stalled.close()
    await sockets_open(0)


async def test_a_close_frame_that_cannot_be_written_is_given_up(
    factory: Factory, talk: Talk
) -> None:
    """The pump is idle but the peer stopped reading with the server's buffer over its
    high-water mark: the close frame's own write waits, and WS_CLOSE_TIMEOUT bounds that
    wait too (aiohttp's close timeout only bounds the wait for the peer's answer)."""
    chat = await factory(ws_close_timeout=0.3)
    stalled = StalledClient(chat.port, talk.path, token_of(talk.customer))
    try:
        await stalled.handshake()
        session = await only_session(chat)
        transport = session.request.transport
        assert transport is not None
        session.socket.push(b'{"pad": "' + b"x" * (4 << 20) + b'"}')

        async def sending() -> bool:
            return not session.socket.frames  # the pump took it: its write is stuck

        await eventually(sending, "the pump writing to the stalled peer")
        # a high-water mark over the backlog, and the peer reads a little: writing resumes
        # at the next chance to write, so the pump's write returns and it goes idle
        transport.set_write_buffer_limits(high=64 << 20)
        loop = asyncio.get_running_loop()
        while session.socket.wake.is_set():  # cleared by the pump once it waits for frames
            assert await asyncio.wait_for(loop.sock_recv(stalled.sock, 65536), RECEIVE)
        transport.set_write_buffer_limits()  # asyncio's defaults: paused again
        assert transport.get_write_buffer_size() > 64 * 1024
        session.shut(4001, "token expired", "expired")
        assert session.closer is not None
        await asyncio.wait_for(session.closer, RECEIVE)  # gave up, without an error
    finally:
        stalled.close()
    await sockets_open(0)


async def test_a_close_cancelled_meanwhile_stays_cancelled(chat: Any, talk: Talk) -> None:
    """Cancelled while it waits (its handler cancelled: the server stopping), the close
    ends cancelled: a cancellation is never swallowed."""
    socket = await open_socket(chat, talk, talk.customer)
    session = await only_session(chat)
    session.shut(1001, "server shutting down", "shutdown")
    closer = session.closer
    assert closer is not None
    await asyncio.sleep(0)  # one turn: the close runs up to its wait for the reading loop
    assert not closer.done()
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert closer.cancelled()
    await socket.close()
    await sockets_open(0)


@contextlib.contextmanager
def capture_bound_logs() -> Iterator[list[dict[str, Any]]]:
    """Every log entry with the context variables each was logged under merged in."""
    capture = structlog.testing.LogCapture()
    with logging_restored():
        structlog.configure(
            processors=[structlog.contextvars.merge_contextvars, capture],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )
        yield capture.entries


async def test_the_sockets_tasks_run_outside_the_requests_context(chat: Any, talk: Talk) -> None:
    """The pump is a task of its own context: never the request's (its database scope,
    its bound request id)."""
    stalled = StalledClient(chat.port, talk.path, token_of(talk.customer))
    with capture_bound_logs() as logs:
        try:
            await stalled.handshake()
            session = await only_session(chat)
            session.socket.push(b'{"pad": "' + b"x" * (4 << 20) + b'"}')

            async def sending() -> bool:
                return not session.socket.frames  # the pump took it: its write is stuck

            await eventually(sending, "the pump writing to the stalled peer")
            stalled.sock.setsockopt(SOL_SOCKET, SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            stalled.close()  # a reset: the pump's write fails
        await sockets_open(0)
    failed = [e for e in logs if e["event"] == "chat_socket_write_failed"]
    assert len(failed) == 1, logs
    assert "request_id" not in failed[0]  # the request's would have it (the middleware's)
    assert failed[0]["error"] == "ConnectionError('Connection lost')"  # the write's, by repr


async def test_a_failed_upgrade_leaves_nothing_behind(
    chat: Any, talk: Talk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade itself fails after the room was joined: the room is left, the session
    (never started) finishes quietly, and the error is the upgrade's."""

    async def failing(*_: Any) -> Any:
        raise RuntimeError("the upgrade failed")

    monkeypatch.setattr(web.WebSocketResponse, "prepare", failing)
    with capture_logs() as logs:
        status, _ = await refusal(
            chat, talk.path, upgrade(f"fixup.bearer, {token_of(talk.customer)}")
        )
    assert status == 500
    errors = [e["error"] for e in logs if e["event"] == "unhandled_error"]
    assert errors == ["RuntimeError('the upgrade failed')"]
    assert chat.app[HUB].rooms == {}
    assert chat.app[ws.SOCKETS] == set()


async def test_a_non_ascii_subprotocol_header_is_refused_by_name(chat: Any, talk: Talk) -> None:
    """Subprotocols are ASCII tokens (RFC 6455): anything else is a 400 naming the header,
    before any token is read."""
    offered = upgrade(f"fixup.bearer, {token_of(talk.customer)}é")
    resp = await chat.get(talk.path, headers=offered)
    assert (resp.status, resp.content_type) == (400, "application/problem+json")
    problem = await resp.json()
    assert (problem["code"], problem["detail"], problem["errors"]) == (
        "VALIDATION_ERROR",
        "invalid Sec-WebSocket-Protocol",
        [{"field": "Sec-WebSocket-Protocol", "message": "comma-separated ASCII tokens"}],
    )


def fact(name: str, **labels: str) -> float:
    """A chat fact counter's value for this service (lib.db.facts)."""
    return REGISTRY.get_sample_value(name, {"service": "chat", **labels}) or 0.0


async def test_a_sent_frame_is_counted_stored_and_delivered(chat: Any, talk: Talk) -> None:
    """chat_messages_total{via="websocket"} once per frame stored, and
    chat_messages_delivered_total once per socket written to, under this service's name."""
    stored = fact("chat_messages_total", via="websocket")
    delivered = fact("chat_messages_delivered_total")
    mine = await open_socket(chat, talk, talk.customer)
    theirs = await open_socket(chat, talk, talk.provider)
    await started_sessions(chat, 2)
    await mine.send_str(send("counted"))
    for socket in (mine, theirs):
        assert (await next_json(socket))["data"]["body"] == "counted"

    async def counted() -> bool:
        return (
            fact("chat_messages_total", via="websocket") == stored + 1
            and fact("chat_messages_delivered_total") == delivered + 2
        )

    await eventually(counted, "one message stored, two frames delivered, counted as chat's")
    for socket in (mine, theirs):
        await socket.close()


async def test_redis_without_its_revocations_asks_the_record_with_the_sockets_token(
    factory: Factory,
    talk: Talk,
    servers: Servers,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis without its marker (a prefix of its own, no users keeper): the handshake's
    check and the sweep ask users' record with the token the socket was opened with, so a
    revocation only the record holds still closes the socket (4001)."""
    chat = await factory(
        redis_url=servers.redis_url,
        revocation_prefix=f"{redis_prefix}lost:{uuid.uuid4().hex[:8]}:",
        revocation_cache_ttl=0,  # every check and every sweep reads again
    )
    asked: list[tuple[uuid.UUID, str]] = []
    record_says = [0]  # the record's not-before of the customer (ms; 0: none)

    async def record(subject: uuid.UUID, token: str) -> int:
        asked.append((subject, token))
        return record_says[0]

    monkeypatch.setattr(chat.app[REVOCATIONS], "fallback", record)
    mine = token_of(talk.customer)
    socket = await open_socket(chat, talk, talk.customer)
    assert asked == [(talk.customer.id, mine)]  # the handshake's check
    await only_session(chat)
    record_says[0] = wall_ms()  # revoked in the record only
    assert await ws.sweep_revoked(chat.app) == 1
    assert asked == [(talk.customer.id, mine)] * 2  # the sweep asked with the same token
    assert await closed_with(socket) == (4001, "token revoked")
