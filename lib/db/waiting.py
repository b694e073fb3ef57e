"""A service's database that start-up waits for, without holding start-up up.

`open_database()` returns the pool when the server answers the first attempt (the usual
case: nothing changes). Otherwise the service starts anyway with a `WaitingDatabase`: its
listener opens, /health answers 200 (the process is alive), /ready and every request that
needs the database answer 503 with Retry-After (DatabaseUnavailable), and a background task
goes on connecting with jittered backoff (`connect()`, each attempt logged as
`db_connect_retry`) for `wait` seconds (None: until the process is stopped). Once the pool
is open every lease goes to it. Giving up is logged (`db_connect_gave_up`) and calls
`on_give_up` (the app stops its process): a database that is down never makes a service
exit with a traceback, and a supervisor (honcho, systemd) never sees one die of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from lib.db.connecting import CONNECT_ERRORS, connect, engine_of
from lib.db.pool import DEFAULT_ACQUIRE_TIMEOUT, Database, DatabaseUnavailable, PoolStats
from lib.logging import get_logger
from lib.metrics import DB_POOL_TIMEOUTS

log = get_logger("lib.db")


class WaitingDatabase(Database):
    """Lends the pool `connecting` opens; until then every lease and ping is refused with
    DatabaseUnavailable (503, Retry-After)."""

    def __init__(self, engine: str, *, service: str, acquire_timeout: float) -> None:
        self.engine, self.service, self.acquire_timeout = engine, service, acquire_timeout
        self.pool: Database | None = None
        self.task: asyncio.Task[None] | None = None
        self.opened_event = asyncio.Event()  # set once the pool is open
        if service:
            DB_POOL_TIMEOUTS.labels(service)  # exported at 0 from the start (lib/metrics.py)

    def start(
        self, connecting: Callable[[], Awaitable[Database]], on_give_up: Callable[[], None]
    ) -> None:
        """Run `connecting()` in a task; its pool is lent from then on."""

        async def wait() -> None:
            began = time.monotonic()
            try:
                self.pool = await connecting()
                self.opened_event.set()
            except CONNECT_ERRORS as exc:
                log.error(
                    "db_connect_gave_up",
                    waited_s=round(time.monotonic() - began, 1),
                    error=str(exc) or type(exc).__name__,
                )
                on_give_up()

        self.task = asyncio.create_task(wait(), name="db-connect")

    def opened(self) -> Database:
        if self.pool is None:
            raise DatabaseUnavailable("the database does not answer yet (the service is starting)")
        return self.pool

    def _get(self) -> Awaitable[Any]:
        return self.opened()._get()

    def _put(self, conn: Any) -> Awaitable[None]:
        return self.opened()._put(conn)

    def _discard(self, conn: Any) -> None:
        self.opened()._discard(conn)

    def _transaction(self, conn: Any) -> AbstractAsyncContextManager[None]:
        return self.opened()._transaction(conn)

    async def ping(self) -> None:
        await self.opened().ping()

    def stats(self) -> PoolStats:
        return PoolStats(0, 0) if self.pool is None else self.pool.stats()

    async def close(self, grace: float = 5.0) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.pool is not None:
            await self.pool.close(grace)


async def open_database(
    dsn: str,
    *,
    wait: float | None,
    attempt_timeout: float,
    on_give_up: Callable[[], None],
    service: str = "",
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
    **pool: Any,
) -> Database:
    """The open pool if the server answers now, else a WaitingDatabase connecting in the
    background for `wait` seconds (None: no limit); `pool`: connect()'s pool keywords."""
    engine = engine_of(dsn)  # a URL no engine takes fails start-up: a mistake, not an outage
    options: dict[str, Any] = {
        **pool,
        "service": service,
        "acquire_timeout": acquire_timeout,
        "attempt_timeout": attempt_timeout,
    }
    began = time.monotonic()
    try:
        return await connect(dsn, attempts=1, **options)
    except CONNECT_ERRORS as exc:
        log.warning("db_connect_retry", attempt=1, error=str(exc) or type(exc).__name__)
    left = None if wait is None else max(0.0, wait - (time.monotonic() - began))
    waiting = WaitingDatabase(engine, service=service, acquire_timeout=acquire_timeout)
    waiting.start(
        lambda: connect(dsn, attempts=None, wait=left, first_attempt=2, **options), on_give_up
    )
    return waiting
