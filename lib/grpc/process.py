"""A gRPC service's process: its server plus an HTTP side app on its own port.

The side app is an app of the house (lib/http/app.py: the whole middleware chain, tokens
verified through users' JWK Set): /health, /ready, /metrics, its OpenAPI document, and,
with `audit`, ADMIN's `GET /v1/audit-events` of the events its gRPC writes record (ADR
0057; the gateway routes that one path, nginx/conf.d/30-gateway.conf). It owns every
resource through cleanup_ctx, like the HTTP services. Shutdown (SIGTERM, via lib.runner):
the side port stops, then the cleanup contexts unwind in reverse: gRPC health turns
NOT_SERVING, new calls are refused and running ones get the grace period, then the
database pool closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import web

from lib.config import GrpcServiceSettings
from lib.db.pool import Database
from lib.grpc.adapter import Servable
from lib.grpc.server import GrpcServer, serve
from lib.http.app import create_app
from lib.http.keys import DB, KEYS_GATE_READY
from lib.logging import get_logger

GRPC = web.AppKey("grpc", GrpcServer)


def grpc_app(
    settings: GrpcServiceSettings,
    services: Callable[[Database], Sequence[Servable]],
    *,
    title: str,
    audit: Any = None,
) -> web.Application:
    """The side app of a gRPC service; starting it starts `services(db)` on `grpc_port`."""
    log = get_logger(f"services.{settings.service}")

    async def grpc_ctx(app: web.Application) -> AsyncIterator[None]:
        server = await serve(services(app[DB]), host=settings.host, port=settings.grpc_port)
        app[GRPC] = server
        log.info("grpc_listening", host=settings.host, port=server.port)
        yield
        await server.stop(grace=max(0.1, settings.shutdown_timeout - 1.0))
        log.info("grpc_stopped")

    app = create_app(
        settings, routes=web.RouteTableDef(), title=title, cleanup=(grpc_ctx,), audit=audit
    )
    # its gRPC calls take no token: users' key set missing must not make the process
    # unready (the audit list answers 503 until it comes)
    app[KEYS_GATE_READY] = False
    return app
