"""The app factory every HTTP service uses: middleware chain, shared resources, common routes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from lib.auth.revocation import Revocations
from lib.auth.tokens import TokenVerifier
from lib.config import ServiceSettings
from lib.db.audit import AuditQueries
from lib.db.clock import OFFSET_REFRESH, DatabaseClock
from lib.db.clock import RETRY as CLOCK_RETRY
from lib.db.connecting import engine_of
from lib.db.waiting import open_database
from lib.http import middleware as mw
from lib.http.audit import AUDIT, audit_routes, check_audited
from lib.http.body import MAX_BODY
from lib.http.conditional import PAGE_CACHE, PageCache, check_conditional_routes
from lib.http.health import add_common_routes
from lib.http.keys import AUTH, CLOCK, DB, LIMITS, REDIS, REVOCATIONS, SETTINGS
from lib.http.profiling import port_for, profiling_ctx
from lib.http.revocation_record import RevocationRecord
from lib.http.token_keys import verifying_keys
from lib.logging import get_logger
from lib.metrics import DB_POOL, start_http_series, start_page_cache_series
from lib.redis_client import connect_redis
from lib.resilience.ratelimit import Limits, RateLimitStore, make_rate_limiter

log = get_logger("lib.http")
POOL_GAUGE_INTERVAL = 5.0
CLOCK_CHANGE = 0.5  # s: a new offset further from the last one is logged

CleanupCtx = Callable[[web.Application], Any]


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """The pool, open or being opened: a database that is down delays nothing and ends
    nothing (lib/db/waiting.py); DB_CONNECT_WAIT > 0 bounds the wait, then the process
    stops as on SIGTERM."""
    settings = app[SETTINGS]
    db = await open_database(
        settings.pool_url,  # DATABASE_URL, or PgBouncer's address (POOLER, ADR 0037)
        wait=settings.db_connect_wait or None,
        attempt_timeout=settings.db_connect_timeout,
        command_timeout=settings.db_command_timeout,
        on_give_up=lambda: os.kill(os.getpid(), signal.SIGTERM),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        reset=settings.db_pool_reset,
        pooler=settings.pooler if settings.pooled else "",
        acquire_timeout=settings.db_acquire_timeout,
        service=settings.service,
    )
    app[DB] = db

    async def report_pool() -> None:
        while True:
            stats = db.stats()
            DB_POOL.labels(settings.service, "in_use").set(stats.in_use)
            DB_POOL.labels(settings.service, "idle").set(stats.idle)
            await asyncio.sleep(POOL_GAUGE_INTERVAL)

    reporter = asyncio.create_task(report_pool())
    yield
    reporter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reporter
    await db.close(grace=min(5.0, settings.shutdown_timeout))


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    link = connect_redis(settings)  # REDIS_URL's server, or the master through Sentinel
    client = link.client if link is not None else None
    app[REDIS] = client
    record = (
        RevocationRecord(
            settings.revocation_record_url,
            timeout=settings.revocation_record_timeout,
            failures=settings.revocation_record_failures,
            retry=settings.revocation_retry,
        )
        if client is not None and settings.revocation_record_url
        else None
    )
    app[REVOCATIONS] = Revocations(
        client,
        prefix=settings.revocation_prefix,
        max_age=settings.access_token_ttl,
        cache_ttl=settings.revocation_cache_ttl,
        timeout=settings.revocation_timeout,
        retry=settings.revocation_retry,
        fallback=record,
    )
    yield
    if record is not None:
        await record.close()
    if link is not None:
        await link.aclose()


def clock_ctx(clock: DatabaseClock) -> CleanupCtx:
    """cleanup_ctx: the verifier's clock measured against the app's database at start-up
    and kept fresh (lib/db/clock.py); the database away: the last offset is kept."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def measure() -> None:
            before = clock.offset if clock.measured else None
            try:
                offset = await clock.measure(app[DB])
            except Exception as exc:
                log.warning("database_clock_unavailable", error=repr(exc))
                return
            if before is None or abs(offset - before) > CLOCK_CHANGE:
                log.info("database_clock_offset", offset_s=round(offset, 3))

        async def refresh() -> None:
            while True:
                await asyncio.sleep(OFFSET_REFRESH if clock.measured else CLOCK_RETRY)
                await measure()

        await measure()
        task = asyncio.create_task(refresh(), name="database-clock")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


async def limits_ctx(app: web.Application) -> AsyncIterator[None]:
    """The per-IP and per-user limits, and the store a service makes its own limits from."""
    settings = app[SETTINGS]
    client = app.get(REDIS)
    store = (
        RateLimitStore(
            client,
            prefix=f"{settings.rate_limit_prefix}{settings.service}:",
            service=settings.service,
            timeout=settings.rate_limit_redis_timeout,
            retry_after=settings.rate_limit_redis_retry,
        )
        if client is not None
        else None
    )
    app[LIMITS] = Limits(
        ip=make_rate_limiter(
            "ip", settings.rate_limit_ip_rate, settings.rate_limit_ip_burst, store
        ),
        user=make_rate_limiter(
            "user", settings.rate_limit_user_rate, settings.rate_limit_user_burst, store
        ),
        store=store,
    )
    yield


def create_app(
    settings: ServiceSettings,
    *,
    routes: web.RouteTableDef,
    title: str,
    version: str = "1.0.0",
    cleanup: tuple[CleanupCtx, ...] = (),
    audit: Any = None,
) -> web.Application:
    """An aiohttp app with the full middleware chain and /health, /ready, /metrics, OpenAPI.

    `cleanup` adds the service's own resources after the shared ones (db, redis, limits).
    `audit`: the generated `services.<svc>.db.audit` of a service with a database: its
    writes record their events, and ADMIN lists them (lib/http/audit.py, ADR 0057).
    """
    app = web.Application(middlewares=mw.chain(settings), client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    leeway = settings.token_clock_leeway
    clock = DatabaseClock()  # the database's time: token times are judged by it
    app[CLOCK] = clock
    # the pages of conditional GETs, in this process only (ADR 0056); 0 bytes: off
    size = settings.page_cache_bytes
    app[PAGE_CACHE] = PageCache(size, settings.service) if size else None
    keys, keys_ctx = verifying_keys(settings, clock)
    app[AUTH] = TokenVerifier(keys, leeway, now=clock) if keys is not None else None
    if keys_ctx is not None:
        app.cleanup_ctx.append(keys_ctx)
    if settings.database_url:
        app.cleanup_ctx.append(database_ctx)
        app.cleanup_ctx.append(clock_ctx(clock))
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(limits_ctx)
    if settings.profiling_enabled:  # opt-in, loopback only
        app.cleanup_ctx.append(profiling_ctx(port_for(settings.service, settings.profiling_port)))
    app.cleanup_ctx.extend(cleanup)
    add_common_routes(app, settings.service, title, version)
    app.add_routes(routes)
    if settings.database_url:
        queries: AuditQueries | None = audit
        app[AUDIT] = queries
        if audit is not None:
            app.add_routes(audit_routes(audit, engine_of(settings.database_url)))
        app.on_startup.insert(0, check_audited)  # before any context opens: nothing to close
    check_conditional_routes(app)  # a route that cannot be answered safely: no start
    app.on_startup.append(start_request_series)
    return app


async def start_request_series(app: web.Application) -> None:
    """The request metrics of every route at 0 before the first request (lib/metrics.py);
    at start-up, when the services' own routes are all added."""
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "*")
    }
    start_http_series(app[SETTINGS].service, sorted(routes))
    start_page_cache_series(app[SETTINGS].service)
