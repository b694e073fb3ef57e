"""A gRPC service's process: its server plus an HTTP side app for health and metrics.

The side app (/health, /ready, /metrics) owns every resource through cleanup_ctx, like
the HTTP services. Shutdown (SIGTERM, via lib.runner): the side port stops, then the
cleanup contexts unwind in reverse: gRPC health turns NOT_SERVING, new calls are refused
and running ones get the grace period, then the database pool closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from lib.config import GrpcServiceSettings
from lib.db.pool import Database
from lib.grpc.adapter import Servable
from lib.grpc.server import GrpcServer, serve
from lib.http.app import database_ctx
from lib.http.health import health, metrics_handler, ready
from lib.http.keys import DB, SETTINGS
from lib.http.profiling import port_for, profiling_ctx
from lib.logging import get_logger

GRPC = web.AppKey("grpc", GrpcServer)


def grpc_app(
    settings: GrpcServiceSettings, services: Callable[[Database], Sequence[Servable]]
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

    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(grpc_ctx)
    if settings.profiling_enabled:
        app.cleanup_ctx.append(profiling_ctx(port_for(settings.service, settings.profiling_port)))
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_handler())
    return app
