"""The conversation's WebSocket (docs/api.md, "chat"; ADR 0011).

Everything that can fail is decided before the upgrade, as plain HTTP with problem+json:
the token (subprotocols `fixup.bearer` + the token; or the Authorization header; or the
access cookie from an allowed Origin) -> 401/403, a caller who does not take part -> 404.
The room's subscription is live before the 101, so every message committed after the
handshake reaches the socket (earlier ones: GET .../messages?after=<last cursor>).

Then three things run per socket: the handler reads the client's frames; a pump task
writes the socket's bounded queue to it; timers close it with 4001 when the token
expires, and aiohttp pings every WS_PING_INTERVAL seconds (no pong: closed). A queue
that overflows closes the socket with 4008: a client that does not read cannot make the
process buffer without limit.

A token revoked while its socket is open (account deleted, password changed or reset):
one sweep per process checks every open socket's token against the revocation records
every WS_REVOCATION_CHECK seconds (one Redis read for all of them) and closes the
revoked ones with 4001. A sweep rather than a pub/sub event: nothing to lose while a
connection is down, and the same records every HTTP request is checked against. Redis
unreachable: the sweep leaves the sockets open (their tokens passed when they opened;
users can write no new revocation meanwhile) and the next sweep checks again. Redis
without its revocations (restarted empty, flushed: no marker, lib.auth.revocation): the
sweep asks users' record with each socket's token, so a socket revoked just before the
loss is still closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from aiohttp import WSMsgType, web
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from lib.auth.principal import Principal
from lib.errors import AppError, BadRequest, FieldError, Forbidden, Unauthorized, ValidationFailed
from lib.forwarding import ACCESS_COOKIE
from lib.http.body import field_errors
from lib.http.guards import authenticated, path_uuid
from lib.http.jsonio import dumps
from lib.http.keys import AUTH, CLOCK, DB, LIMITS, PRINCIPAL, REVOCATIONS, principal_of, request_id
from lib.http.openapi import operation
from lib.http.openapi_io import Header
from lib.logging import get_logger
from lib.resilience.ratelimit import enforce
from services.chat import schemas as s
from services.chat.deps import CHAT_SETTINGS, HUB
from services.chat.facts import DELIVERED, MESSAGES
from services.chat.handlers import PARTICIPANT, ROLES, participant_conversation
from services.chat.hub import Socket
from services.chat.messages import store

routes = web.RouteTableDef()
log = get_logger("services.chat")
SUBPROTOCOL = "fixup.bearer"
MAX_FRAME = 64 * 1024  # a "send" of 4000 characters is at most ~16 KiB of JSON
CLOSE_EXPIRED, CLOSE_SLOW = 4001, 4008
SOCKETS_OPEN = Gauge(
    "chat_websockets_open", "WebSockets open.", ["service"], multiprocess_mode="livesum"
)
SOCKETS_CLOSED = Counter(
    "chat_websockets_closed_total",
    "WebSockets closed by the server, by reason (expired, revoked, slow, unsupported, shutdown).",
    ["service", "reason"],
)
SOCKETS: web.AppKey[set[Session]] = web.AppKey("sockets")  # closed 1001 on shutdown


async def socket_principal(request: web.Request) -> Principal:
    """Who opens the socket; 401/403 before the upgrade."""
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    if not header.isascii():  # subprotocols are tokens (RFC 6455), a JWT is ASCII too
        raise ValidationFailed(
            "invalid Sec-WebSocket-Protocol",
            errors=[FieldError("Sec-WebSocket-Protocol", "comma-separated ASCII tokens")],
        )
    offered = [p.strip() for p in header.split(",") if p.strip()]
    if SUBPROTOCOL in offered:
        tokens = [p for p in offered if p != SUBPROTOCOL]
        if len(tokens) != 1:
            raise Unauthorized(f"offer the subprotocols {SUBPROTOCOL!r} and the access token")
        verifier = request.app[AUTH]
        if verifier is None:
            raise Unauthorized("this service does not accept tokens")
        principal = await verifier.authenticate(tokens[0])
        await request.app[REVOCATIONS].check(principal, tokens[0])
        request[PRINCIPAL] = principal
        structlog.contextvars.bind_contextvars(user_id=str(principal.user_id))
        return principal
    found = principal_of(request)  # the auth middleware: Authorization or the cookie
    if found is None:
        raise Unauthorized("authentication required")
    allowed = request.app[CHAT_SETTINGS].cors_allow_origins
    by_cookie = "Authorization" not in request.headers  # only a page of ours may use it
    if by_cookie and request.headers.get("Origin") not in allowed:
        raise Forbidden("a cookie-authenticated WebSocket needs an allowed Origin")
    return found


def presented_token(request: web.Request) -> str:
    """The access token the socket was opened with: the subprotocol's, else the
    Authorization header's, else the access cookie's (socket_principal's order)."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if SUBPROTOCOL in offered:
        return next((p for p in offered if p and p != SUBPROTOCOL), "")
    header = request.headers.get("Authorization", "")
    if header:
        return header.partition(" ")[2].strip()
    return request.cookies.get(ACCESS_COOKIE, "").strip()


class Session:
    """One open socket: its queue (the hub's Socket), the pump and the close."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, principal: Principal):
        settings = request.app[CHAT_SETTINGS]
        self.request, self.ws, self.principal = request, ws, principal
        self.token = presented_token(request)  # the sweep asks the record with it
        self.service = settings.service
        self.close_timeout = settings.ws_close_timeout
        self.socket = Socket(settings.ws_send_queue, self._overflow)
        self.pump: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
        self.expiry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        # contexts of their own: these tasks never share the request's database scope
        self.pump = asyncio.create_task(self._pump(), context=contextvars.Context())
        now = self.request.app[CLOCK]()  # the database's clock, as the verifier's (ADR 0028)
        left = self.principal.expires_at.timestamp() - now
        self.expiry = asyncio.get_running_loop().call_later(
            max(0.0, left), self.shut, CLOSE_EXPIRED, "token expired", "expired"
        )

    async def _pump(self) -> None:
        frames, wake = self.socket.frames, self.socket.wake
        delivered = DELIVERED.counter.labels(self.service)
        try:
            while True:
                while frames:
                    await self.ws.send_frame(frames.popleft(), WSMsgType.TEXT)
                    delivered.inc()
                wake.clear()
                await wake.wait()
        except (ConnectionError, RuntimeError) as exc:  # the peer went away meanwhile
            log.debug("chat_socket_write_failed", error=repr(exc))

    def _overflow(self) -> None:
        self.shut(CLOSE_SLOW, "too slow: send queue full", "slow")

    def shut(self, code: int, reason: str, label: str) -> None:
        """Close from the server's side (from any task or a timer)."""
        if self.closer is not None or self.ws.closed:
            return
        SOCKETS_CLOSED.labels(self.service, label).inc()
        if self.pump is not None:
            self.pump.cancel()
        self.closer = asyncio.create_task(self._close(code, reason), context=contextvars.Context())

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self.close_timeout):  # a peer that does not read
                await self.ws.close(code=code, message=reason.encode())
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task is cancelled (its handler is)
            # not this task: aiohttp's drain waiter, which it shares with the pump that
            # `shut` cancelled while it waited for a peer that does not read; the close
            # frame is written, and the peer gets it if it ever reads
        except Exception:  # the peer went away meanwhile: nothing left to close
            pass

    async def finish(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if self.pump is not None:
            self.pump.cancel()
        if self.closer is not None:
            await self.closer

    def error(self, exc: AppError) -> None:
        """A frame the client sent was refused: say why, on this socket only."""
        error: dict[str, Any] = {"status": exc.status, "code": exc.code, "detail": exc.detail}
        if exc.errors:
            error["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
        self.socket.push(dumps({"type": "error", "error": error}))


async def on_text(session: Session, conversation_id: uuid.UUID, text: str) -> None:
    """`{"type": "send", "body": ...}`: stored like a POST, then pushed to every socket."""
    request = session.request
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadRequest("the frame is not valid JSON") from None
    try:
        frame = s.SendFrame.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed("the frame is invalid", errors=field_errors(exc)) from None
    limits = request.app.get(LIMITS)
    if limits is not None:  # the HTTP per-user limit, applied the same way
        await enforce(limits.user, f"user:{session.principal.user_id}")
    async with request.app[DB].transaction() as conn:
        row = await store(conn, conversation_id, session.principal.user_id, frame.body)
        MESSAGES.count(session.service, via="websocket")
    await request.app[HUB].publish(row)


@routes.get("/v1/conversations/{id}/ws")
@operation(
    "Open the conversation's WebSocket",
    tags=["messages"],
    roles=ROLES,
    owner=PARTICIPANT,
    authenticate=socket_principal,  # the token may come as a subprotocol
    status=101,
    headers=(
        Header(
            "Sec-WebSocket-Protocol",
            f"`{SUBPROTOCOL}, <access token>` to authenticate with a subprotocol.",
        ),
    ),
    errors=(400, 403, 404),
    description=(
        "Auth: offer the subprotocols `fixup.bearer` and the access token (the server "
        "echoes `fixup.bearer`), or send the `fixup_access` cookie from an allowed Origin "
        "(else 403), or an Authorization header. A bad token: 401 and a caller who does "
        "not take part: 404, both before the upgrade.\n\n"
        'Server -> client: `{"type": "message", "data": <Message>}` for every new message '
        '(the sender\'s own included); `{"type": "error", "error": {status, code, detail, '
        'errors?}}` for a refused frame. Client -> server: `{"type": "send", "body": "..."}` '
        "(rules of POST .../messages). The server pings every 20 s; close codes: 4001 the "
        "token expired or was revoked (account deleted, password changed or reset), "
        "4008 too slow to read (send queue full), 1001 shutting down, 1003 a binary frame. "
        "Every message committed after the handshake arrives; to catch up on earlier "
        "ones: GET .../messages?after=<cursor of the last message seen>."
    ),
)
async def conversation_socket(request: web.Request) -> web.StreamResponse:
    principal = authenticated(request)  # socket_principal ran in the operation's guard
    conversation_id = path_uuid(request)
    async with request.app[DB].acquire() as conn:
        await participant_conversation(conn, principal, conversation_id)
    settings = request.app[CHAT_SETTINGS]
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        heartbeat=settings.ws_ping_interval,
        compress=False,  # a deflate context per socket costs far more than the frames save
        max_msg_size=MAX_FRAME,
        timeout=settings.ws_close_timeout,
    )
    if not ws.can_prepare(request).ok:
        raise BadRequest("this route speaks WebSocket only (Upgrade: websocket)")
    ws.headers["X-Request-ID"] = request_id(request)  # the 101 is sent before middleware sees it
    session = Session(request, ws, principal)
    hub = request.app[HUB]
    await hub.join(conversation_id, session.socket)
    sessions = request.app[SOCKETS]
    try:
        await ws.prepare(request)
        sessions.add(session)
        SOCKETS_OPEN.labels(settings.service).inc()
        session.start()
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    try:
                        await on_text(session, conversation_id, message.data)
                    except AppError as exc:
                        session.error(exc)
                    except Exception as exc:
                        log.exception("chat_send_failed", error=repr(exc))
                        session.error(AppError("An unexpected error occurred."))
                elif message.type is WSMsgType.BINARY:
                    session.shut(1003, "text frames only", "unsupported")
        finally:
            SOCKETS_OPEN.labels(settings.service).dec()
    finally:
        sessions.discard(session)
        await hub.leave(conversation_id, session.socket)
        await session.finish()
    return ws


async def close_all(app: web.Application) -> None:
    """on_shutdown: tell every client to reconnect elsewhere (1001) before the drain."""
    sessions: set[Session] = app[SOCKETS]
    for session in list(sessions):
        session.shut(1001, "server shutting down", "shutdown")
    closing = [s.closer for s in sessions if s.closer is not None]
    await asyncio.gather(*closing, return_exceptions=True)


async def sweep_revoked(app: web.Application) -> int:
    """Close (4001) every open socket whose token is revoked now; how many were."""
    sessions: set[Session] = app[SOCKETS]
    if not sessions:
        return 0
    by_principal: dict[Principal, list[Session]] = {}
    tokens: dict[Principal, str] = {}
    for session in sessions:
        by_principal.setdefault(session.principal, []).append(session)
        tokens[session.principal] = session.token
    revoked = await app[REVOCATIONS].revoked(tokens)
    for principal in revoked:
        for session in by_principal[principal]:
            session.shut(CLOSE_EXPIRED, "token revoked", "revoked")
    return sum(len(by_principal[p]) for p in revoked)


async def revocation_sweep(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: `sweep_revoked` every WS_REVOCATION_CHECK seconds while the app runs."""

    async def loop() -> None:
        interval = app[CHAT_SETTINGS].ws_revocation_check
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep_revoked(app)
            except AppError as exc:  # Redis away: check again next time
                log.warning("chat_revocation_sweep_failed", detail=exc.detail)

    task = asyncio.create_task(loop(), name="chat-revocation-sweep", context=contextvars.Context())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
