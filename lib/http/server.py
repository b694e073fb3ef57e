"""The HTTP server under the app: what aiohttp answers before the middleware chain runs.

A request aiohttp's parser rejects (a bare LF in a header, a bad method, invalid chunked
framing, an oversized line) never reaches a middleware: aiohttp answers it itself, in
text/plain, echoing the raw request bytes, and logs an ERROR with a traceback (aiohttp
issue #3287: there is no hook for it). `ProblemRequestHandler` overrides the one method
aiohttp calls for those answers, `RequestHandler.handle_error`, so they are problem+json
like every other error (docs/api.md "Errors"): security headers, a fresh request id,
nothing of the request echoed, one log line. `serve_app` is `web.run_app` with that
handler (run_app builds its own runner, so it cannot take one).
tests/unit/test_http_server.py pins the aiohttp internals this leans on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import cast

from aiohttp import http_exceptions, web

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


def parse_error_detail(exc: BaseException | None) -> str:
    for kind, detail in _DETAILS:
        if isinstance(exc, kind):
            return detail
    return _DEFAULT_DETAIL


class ProblemRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering its own errors with problem+json."""

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
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Serve `app` until SIGTERM/SIGINT, then drain in-flight requests for up to
    `shutdown_timeout` seconds and run its cleanup: web.run_app's contract."""
    asyncio.set_event_loop(loop)
    runner = ProblemAppRunner(
        app, handle_signals=True, access_log=None, shutdown_timeout=shutdown_timeout
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
