"""The users service: settings and the app factory; the routes of handlers.py (the users)
and of each concern's module (registration, sessions, reauth, session_list, passwords,
pictures, export)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from lib.config import load_settings
from lib.erasure import erasure_ctx
from lib.http.app import CleanupCtx
from lib.http.app import create_app as base_app
from services.users import (
    export,
    facts,
    jwks,
    passkeys,
    passwords,
    pictures,
    reauth,
    registration,
    revocations,
    session_list,
    sessions,
    totp,
)
from services.users.auth_kit import auth_ctx
from services.users.db import audit, erasures
from services.users.handlers import departments_ctx, erase, routes
from services.users.mail_relay import mail_ctx
from services.users.pictures import storage_ctx
from services.users.points import POINTS, PointsLookup
from services.users.revocation_keeper import keeper_ctx
from services.users.settings import SERVICE, UsersSettings

TITLE = "Fixup users"
PointsFactory = Callable[[UsersSettings], AsyncIterator[PointsLookup | None]]


def create_app(
    settings: UsersSettings | None = None, *, points: PointsFactory | None = None
) -> web.Application:
    """`points` opens (and closes) the points client; default: gRPC to POINTS_GRPC_ADDR."""
    settings = settings or load_settings(UsersSettings, SERVICE)
    factory = points or grpc_points

    async def points_ctx(app: web.Application) -> AsyncIterator[None]:
        async for client in factory(settings):
            app[POINTS] = client
            yield

    cleanup: tuple[CleanupCtx, ...] = (
        points_ctx,
        auth_ctx(settings),
        mail_ctx(settings),
        storage_ctx(settings),
        departments_ctx(settings),
        export.export_ctx(settings),
        revocations.record_ctx,
        keeper_ctx(settings),
        erasure_ctx(settings, erasures, erase, stop_within=settings.shutdown_timeout),
    )
    app = base_app(settings, routes=routes, title=TITLE, audit=audit, cleanup=cleanup)
    concerns = (
        registration,
        sessions,
        reauth,
        session_list,
        passwords,
        passkeys,
        totp,
        pictures,
        revocations,
        jwks,
        export,
    )
    for concern in concerns:
        app.add_routes(concern.routes)
    for counter in facts.ALL:
        counter.start(settings.service)
    return app


async def grpc_points(settings: UsersSettings) -> AsyncIterator[PointsLookup | None]:
    """The pooled gRPC client of the points service, behind a circuit breaker."""
    from lib.clients.http import gauge_breaker
    from lib.clients.points import PointsClient
    from lib.grpc.client import ChannelPool
    from lib.resilience.breaker import CircuitBreaker

    if not settings.points_grpc_addr:
        yield None
        return
    pool = ChannelPool(settings.points_grpc_addr, size=settings.points_grpc_pool_size)
    breaker = CircuitBreaker(
        "points",
        failure_threshold=settings.points_breaker_threshold,
        reset_timeout=settings.points_breaker_reset,
    )
    gauge_breaker(settings.service, "points", breaker)
    try:
        yield PointsClient(pool, timeout=settings.points_timeout, breaker=breaker)
    finally:
        await pool.close()
