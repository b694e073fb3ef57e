"""The transactional outbox relay of the orders process: points for completed jobs.

`POST /v1/jobs/{id}/complete` writes an outbox row in the transaction of the status change,
so an award exists exactly when its completion committed. This task delivers them: lease
due rows (FOR UPDATE SKIP LOCKED, then available_at moved past the lease) and commit, call
AddUserPoints with no connection held, the row's idempotency key (`job:<id>`) travelling
with it, then mark the row delivered, or defer it with exponential backoff. A relay that
dies mid-delivery loses its lease and the row is delivered again; the points service
applies a key once, so every award is applied exactly once, with any number of relays.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, cast

from aiohttp import web

from lib import tracing
from lib.db.pool import Database
from lib.db.scope import enter_scope, exit_scope
from lib.errors import AppError
from lib.http.keys import DB
from lib.logging import get_logger
from lib.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING
from lib.relay import Relay, Round, running
from services.orders.db import outbox as q
from services.orders.db.models import Outbox
from services.orders.settings import OrdersSettings

log = get_logger("services.orders.relay")
POINTS_TOPIC = "points.award"


def award_key(job_id: uuid.UUID) -> str:
    return f"job:{job_id}"


class PointsAdder(Protocol):
    async def add_user_points(
        self, user_id: str, delta: int, reason: str, idempotency_key: str
    ) -> int: ...


class OutboxRelay(Relay):
    name = "outbox_relay"

    def __init__(
        self,
        db: Database,
        points: PointsAdder,
        *,
        interval: float,
        retry_max: float,
        call_timeout: float,
        batch: int = 20,
        service: str = "orders",
    ) -> None:
        super().__init__(interval=interval, retry_max=retry_max, batch=batch)
        self.db, self.points = db, points
        # a leased row stays ours while the whole batch may be delivered, with margin
        self.lease = call_timeout * (batch + 1)
        self._pending = OUTBOX_PENDING.labels(service)
        self._oldest = OUTBOX_OLDEST_AGE.labels(service)

    async def report(self, conn: Any) -> None:
        backlog = await q.outbox_backlog(conn)
        self._pending.set(backlog.pending if backlog else 0)
        self._oldest.set(backlog.oldest_age_seconds if backlog else 0.0)

    async def deliver(self, row: Outbox) -> None:
        """AddUserPoints for one row; with tracing on, in a span of a trace of its own that
        links to the request which wrote the row (the outbox's traceparent)."""
        payload = cast(dict[str, Any], row.payload)  # written by complete_job
        award = self.points.add_user_points(
            payload["user_id"], int(payload["delta"]), payload["reason"], row.idempotency_key
        )  # runs when awaited: inside the span
        if not tracing.ENABLED:
            await award
            return
        span, token = tracing.start_root(
            f"outbox deliver {row.topic}", tracing.PRODUCER, tracing.link_to(row.traceparent)
        )
        try:
            await award
        except Exception as exc:  # a problem by its code; anything else by its type
            tracing.fail(span, exc.code if isinstance(exc, AppError) else type(exc).__name__)
            raise
        finally:
            tracing.end_span(span, token)

    async def run_once(self) -> Round:
        """One lease -> deliver -> mark round, in a connection scope of its own."""
        scope = enter_scope()
        try:
            async with self.db.transaction() as conn:
                rows = await q.lease_outbox(conn, lease_seconds=self.lease, batch_size=self.batch)
            delivered = 0
            for row in rows:  # no connection held while points is called
                try:
                    await self.deliver(row)
                except AppError as exc:
                    retry_in = self.backoff(row.attempts)
                    log.warning(
                        "outbox_delivery_failed", id=row.id, attempts=row.attempts,
                        retry_in=retry_in, error=exc.detail,
                    )  # fmt: skip
                    async with self.db.acquire() as conn:
                        await q.defer_outbox(
                            conn, last_error=exc.detail[:500], retry_in_seconds=retry_in,
                            id=row.id,
                        )  # fmt: skip
                    continue
                async with self.db.acquire() as conn:
                    await q.mark_outbox_delivered(conn, id=row.id)
                delivered += 1
            async with self.db.acquire() as conn:
                await self.report(conn)
            return Round(len(rows), delivered)
        finally:
            exit_scope(scope)


RELAY: web.AppKey[OutboxRelay] = web.AppKey("outbox_relay", OutboxRelay)


def relay_ctx(settings: OrdersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Starts the relay with the app (when POINTS_GRPC_ADDR is set) and stops it; a row
    in delivery at shutdown keeps its lease and is delivered again later, once."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not settings.points_grpc_addr:
            yield
            return
        from lib.clients.http import gauge_breaker
        from lib.clients.points import PointsClient
        from lib.grpc.client import ChannelPool
        from lib.resilience.breaker import CircuitBreaker

        pool = ChannelPool(settings.points_grpc_addr, size=1)
        breaker = CircuitBreaker(
            "points",
            failure_threshold=settings.points_breaker_threshold,
            reset_timeout=settings.outbox_interval,
        )
        gauge_breaker(settings.service, "points", breaker)
        points = PointsClient(pool, timeout=settings.points_timeout, breaker=breaker)
        relay = OutboxRelay(
            app[DB],
            points,
            interval=settings.outbox_interval,
            retry_max=settings.outbox_retry_max,
            call_timeout=settings.points_timeout,
            batch=settings.outbox_batch,
            service=settings.service,
        )
        app[RELAY] = relay
        try:
            async with running(relay, name="outbox-relay", stop_within=settings.shutdown_timeout):
                yield
        finally:
            await pool.close()

    return ctx
