"""The points process: the gRPC server plus a small HTTP side app (/health, /ready,
/metrics) that owns every resource through cleanup_ctx, like the HTTP services.

Shutdown (SIGTERM, via lib.runner): the side port stops, then the cleanup contexts
unwind in reverse: gRPC health turns NOT_SERVING, new calls are refused and running ones
get the grace period, then the database pool closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from lib.grpc.server import GrpcServer, serve
from lib.http.app import database_ctx
from lib.http.health import health, metrics_handler, ready
from lib.http.keys import DB, SETTINGS
from lib.logging import get_logger
from lib.profiling import port_for, profiling_ctx
from services.points.service import PointService
from services.points.settings import PointsSettings

log = get_logger("services.points")

GRPC = web.AppKey("grpc", GrpcServer)


def create_app(settings: PointsSettings) -> web.Application:
    async def grpc_ctx(app: web.Application) -> AsyncIterator[None]:
        service = PointService(app[DB], max_list_ids=settings.max_list_ids)
        server = await serve([service], host=settings.host, port=settings.grpc_port)
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
