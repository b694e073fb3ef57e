"""The HTTP server under the app: aiohttp's `web.run_app`, with its documented keywords.

aiohttp's public API only (issue 38: no subclass of its connection handler, no private
attribute), so an aiohttp upgrade needs no internals pinned:
- SIGTERM/SIGINT: in-flight requests drain for up to SHUTDOWN_TIMEOUT, then the app's
  cleanup runs (run_app's graceful shutdown); WORKERS > 1 share the port (SO_REUSEPORT).
- An idle kept-alive connection is closed after HTTP_KEEPALIVE_TIMEOUT (aiohttp's default
  is an hour).
- A request aiohttp's parser rejects (a bare LF, a bad method, broken chunked framing, an
  oversized line) never reaches a middleware in aiohttp 3.x: aiohttp answers it itself, a
  text/plain 400 (aio-libs/aiohttp#3287, fixed for 4.0 only; docs/api.md "Errors"). Its
  log line goes through `server_log`, which turns aiohttp's ERROR with a traceback (whose
  message quotes the request's bytes) into one WARNING `request_rejected`.
- Slow clients are bounded where every deployment's traffic enters, at the gateway (NGINX's
  client_header_timeout / client_body_timeout), and a body inside the service by
  lib/http/body.py (HTTP_BODY_TIMEOUT).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import http_exceptions, web

from lib.logging import get_logger

log = get_logger("lib.http")


class RejectedRequests(logging.Filter):
    """aiohttp logs a request its parser rejected as an error with the exception (which
    quotes the request); it is the client's fault, not a bug: one line without either.
    Every other record (an exception that escaped the app: a bug) passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, http_exceptions.HttpProcessingError):
            return True
        client = record.args[0] if isinstance(record.args, tuple) and record.args else None
        log.log(
            min(record.levelno, logging.WARNING),  # aiohttp's DEBUG stays DEBUG
            "request_rejected",
            status=400,  # what aiohttp answers for every parser error
            error=type(exc).__name__,
            client_ip=client,
        )
        return False


# the `logger` keyword aiohttp's connections log to (web.AppRunner's documented kwargs)
server_log = logging.getLogger("lib.http.server")
server_log.addFilter(RejectedRequests())


def serve_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    reuse_port: bool,
    shutdown_timeout: float,
    keepalive_timeout: float,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Serve `app` until SIGTERM/SIGINT, then drain in-flight requests for up to
    `shutdown_timeout` seconds and run its cleanup; an idle kept-alive connection is closed
    after `keepalive_timeout`."""
    web.run_app(
        app,
        host=host,
        port=port,
        reuse_port=reuse_port,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=keepalive_timeout,
        access_log=None,  # lib/http/middleware.py writes the access log
        print=None,
        handle_signals=True,
        loop=loop,
        logger=server_log,
    )
