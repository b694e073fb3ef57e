"""The HTTP server under the app: what aiohttp answers before the middleware chain runs.

A request aiohttp's parser rejects (a bare LF in a header, a bad method, invalid chunked
framing, an oversized line) never reaches a middleware: aiohttp answers it itself, in
text/plain, echoing the raw request bytes, and logs an ERROR with a traceback (aiohttp
issue #3287: there is no hook for it). `ProblemRequestHandler` overrides the one method
aiohttp calls for those answers, `RequestHandler.handle_error`, so they are problem+json
like every other error (docs/api.md "Errors"): security headers, a fresh request id,
nothing of the request echoed, one log line. `serve_app` is `web.run_app` with that
handler (run_app builds its own runner, so it cannot take one).

aiohttp bounds neither how long a client may take to send a request's head nor its body
(only an idle keep-alive connection times out): a client trickling one byte every few
seconds holds a connection and a handler task for ever. The same handler bounds both,
as NGINX does in front (`HTTP_HEADER_TIMEOUT`, `HTTP_BODY_TIMEOUT`, ADR 0005):
- the head: from a connection's start, or a request's first byte on a kept-alive one, to
  its last header line; past it the connection's last answer is a 408 problem+json;
- the body: from the end of the head to its last byte; past it every read of the body
  raises `BodyTimeout` (a 408 through the middleware chain, the connection closed), so a
  handler that reads its body first (lib/http/body.py) never reaches its database.
Time the server itself holds the client back (its read buffer full, the handler not
reading yet) is not the client's: the deadline starts over then.
tests/unit/test_http_server.py pins the aiohttp internals this leans on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, cast

from aiohttp import http_exceptions, web
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import _ErrInfo

from lib.errors import AppError, RequestTimeout
from lib.http.keys import REQUEST_ID
from lib.http.middleware import set_security_headers
from lib.http.problems import HTTP_CODES, internal_error, problem
from lib.logging import get_logger

log = get_logger("lib.http")

# what was wrong, said without the request's bytes (aiohttp's messages quote them)
_DETAILS: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.BadHttpMethod, "the request method is not a valid HTTP token"),
    (http_exceptions.BadStatusLine, "the request line is not valid HTTP/1.1"),
    (http_exceptions.LineTooLong, "the request line or a header field is too long"),
    (http_exceptions.InvalidHeader, "a request header is not valid"),
    (http_exceptions.PayloadEncodingError, "the request body's framing is not valid"),
    (http_exceptions.InvalidURLError, "the request target is not a valid URL"),
)
_DEFAULT_DETAIL = "the request is not valid HTTP/1.1"


class HeaderTimeout(RequestTimeout):
    """The request's head did not arrive within HTTP_HEADER_TIMEOUT."""


class BodyTimeout(RequestTimeout):
    """The request's body did not arrive within HTTP_BODY_TIMEOUT."""


def parse_error_detail(exc: BaseException | None) -> str:
    if isinstance(exc, AppError):  # ours: its detail names no byte of the request
        return exc.detail
    for kind, detail in _DETAILS:
        if isinstance(exc, kind):
            return detail
    return _DEFAULT_DETAIL


class ProblemRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering its own errors with problem+json and
    bounding how long a client may take to send a request (the module's docstring)."""

    __slots__ = ("_body_timeout", "_body_timer", "_head_started", "_head_timer", "_header_timeout")

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float = 10.0,
        body_timeout: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._head_started: float | None = None  # the loop time a partial head began
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_started = self._loop.time()  # a new connection owes a request at once
        self._arm_head()

    def data_received(self, data: bytes) -> None:
        http = not self._upgraded and self._payload_parser is None  # not a WebSocket's frames
        if http and data and self._head_started is None and self._body_timer is None:
            self._head_started = self._loop.time()  # the first byte of a request's head
        heads = self._request_count
        super().data_received(data)
        if self._request_count == heads:  # no head completed: only arm when one is partial
            if self._head_started is not None and self._head_timer is None:
                self._arm_head()
            return
        self._head_started = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        # only the last message can still be receiving its body (the parser moves on after one)
        payload = self._messages[-1][1] if self._messages else EMPTY_PAYLOAD
        if not payload.is_eof() and not self._upgraded and self._body_timer is None:
            self._arm_body(payload)

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)

    def _arm_head(self) -> None:
        assert self._head_started is not None
        when = self._head_started + self._header_timeout
        self._head_timer = self._loop.call_at(when, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._close or self._force_close or self.transport is None:
            return
        if self._buffer_paused:  # the server holds back complete heads: not the client's time
            self._head_started = self._loop.time()
            self._arm_head()
            return
        # the error path aiohttp takes for a head it cannot parse: handle_error answers it
        exc = HeaderTimeout(
            f"the request headers were not received within {self._header_timeout:g} s"
        )
        self._messages.append((_ErrInfo(status=408, exc=exc, message=""), EMPTY_PAYLOAD))
        self._request_count += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self.close()  # no further byte is parsed; the 408 is the connection's last answer

    def _arm_body(self, payload: StreamReader) -> None:
        when = self._loop.time() + self._body_timeout
        self._body_timer = self._loop.call_at(when, self._body_expired, payload)
        payload.on_eof(self._body_received)

    def _body_received(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_expired(self, payload: StreamReader) -> None:
        self._body_timer = None
        if payload.is_eof() or self._force_close or self.transport is None:
            return
        if self._reading_paused:  # a full buffer the handler has not read yet: ours
            self._arm_body(payload)
            return
        request = self._current_request
        peer = self.peername
        log.warning(
            "request_rejected",
            request_id=request.get(REQUEST_ID) if request is not None else None,
            status=408,
            error=BodyTimeout.__name__,
            client_ip=peer[0] if isinstance(peer, tuple) else peer,
        )
        if self._request_in_progress:  # its next read raises: the chain answers 408
            payload.set_exception(
                BodyTimeout(f"the request body was not received within {self._body_timeout:g} s")
            )
            self._lingering_time = 0.0  # after that answer, nothing more is read
        else:  # answered already: aiohttp is reading the rest to discard it; it stops now
            payload.set_exception(TimeoutError())
        self.close()  # the connection ends after the answer in progress

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,  # aiohttp's text, which quotes the request: unused
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a response has begun, drop it
            raise ConnectionError("the response has begun: no error response can follow")
        rid = str(uuid.uuid4())  # the headers, X-Request-ID included, were never parsed
        error = type(exc).__name__ if exc is not None else None
        if isinstance(exc, AppError):  # escaped an app without lib's chain (BodyTimeout)
            status = exc.status
        if status >= 500:  # an exception escaped the middleware chain: a bug, with its trace
            log.error("unhandled_error", request_id=rid, status=status, error=error, exc_info=exc)
            response = internal_error(rid)
        else:  # the client's fault: one line, no traceback, no bytes of the request
            log.warning(
                "request_rejected",
                request_id=rid,
                status=status,
                error=error,
                client_ip=request.remote,
            )
            code, title = HTTP_CODES.get(status, HTTP_CODES[400])
            response = problem(status, code, title, parse_error_detail(exc), rid)
        response.headers["X-Request-ID"] = rid
        set_security_headers(cast(web.Request, request), response)
        response.force_close()  # aiohttp's rule: the connection's framing is lost
        return response


class ProblemServer(web.Server):
    """web.Server whose connections are ProblemRequestHandlers (as web.Server.__call__)."""

    def __call__(self) -> web.RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """web.AppRunner serving through ProblemServer: the app's own server (startup run,
    app frozen, handler arguments applied) with the handler class swapped."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = ProblemServer  # adds no state: only the connection class differs
        return server


def serve_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    reuse_port: bool,
    shutdown_timeout: float,
    header_timeout: float,
    body_timeout: float,
    keepalive_timeout: float,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Serve `app` until SIGTERM/SIGINT, then drain in-flight requests for up to
    `shutdown_timeout` seconds and run its cleanup: web.run_app's contract. A request's
    head must arrive within `header_timeout` seconds, its body within `body_timeout`; an idle
    kept-alive connection is closed after `keepalive_timeout`."""
    asyncio.set_event_loop(loop)
    runner = ProblemAppRunner(
        app,
        handle_signals=True,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        header_timeout=header_timeout,  # through web.Server to each ProblemRequestHandler
        body_timeout=body_timeout,
        keepalive_timeout=keepalive_timeout,  # aiohttp's own (RequestHandler's keyword)
    )

    async def main() -> None:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
            await asyncio.Event().wait()  # until a signal raises GracefulExit out of the loop
        finally:
            await runner.cleanup()

    task = loop.create_task(main())
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not task.done():
            task.cancel()  # the cleanup in main's finally runs now: drain, then on_cleanup
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
        _cancel_leftovers(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks the app left behind end here, not as 'Task was destroyed' at close."""
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
