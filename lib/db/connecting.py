"""Opening a pool: the driver by the URL's scheme, with retries while the server is down.

asyncpg for postgresql://, aiomysql for mysql://; each PostgreSQL command bounded, each new
connection too. `connect()` retries with jittered backoff so a service started before its
database waits for it (a service's process waits without limit: lib/db/waiting.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import asyncpg
import pymysql

from lib.backoff import backoff
from lib.db.pool import DEFAULT_ACQUIRE_TIMEOUT, Database, MyDatabase, PgDatabase
from lib.logging import get_logger
from lib.metrics import DB_POOL_TIMEOUTS
from lib.pooler import Pooler, pool_options
from lib.registry import Engine

log = get_logger("lib.db")

# one connection attempt at start-up (asyncpg's own default is 60 s)
DEFAULT_ATTEMPT_TIMEOUT = 10.0
# one PostgreSQL command (asyncpg's command_timeout; its own default is none)
DEFAULT_COMMAND_TIMEOUT = 5.0


async def _no_reset(conn: Any) -> None:
    """No reset query on release where no handler changes session state (+6-25% req/s)."""


async def _open(
    dsn: str,
    min_size: int,
    max_size: int,
    reset: bool,
    pooler: Pooler = "",
    *,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    connect_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
) -> Database:
    """The pool for `dsn`; connect() sets its acquire timeout and metrics label. `pooler`:
    what sits between the pool and PostgreSQL (lib/pooler.py); every command bounded by
    `command_timeout` (PostgreSQL), every new connection by `connect_timeout`."""
    given = urlsplit(dsn).scheme
    scheme = given.split("+")[0]  # a driver suffix (postgresql+asyncpg://) is allowed
    engine = engine_of(dsn)
    if engine == PgDatabase.engine:
        if scheme != given:  # asyncpg takes postgresql:// or postgres:// only
            dsn = "postgresql" + dsn[len(given) :]
        reset_hook = None if reset else _no_reset
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            reset=reset_hook,
            command_timeout=command_timeout,
            timeout=connect_timeout,  # asyncpg.connect's, for every connection of the pool
            **pool_options(pooler),
        )
        database = PgDatabase(pool)
        database.release_timeout = command_timeout
        return database
    parts = urlsplit(dsn)  # MyDatabase.engine: engine_of() refused every other scheme
    pool = await aiomysql.create_pool(
        minsize=min_size,
        maxsize=max_size,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        db=parts.path.lstrip("/"),
        autocommit=True,
        charset="utf8mb4",
        # DATETIME columns hold UTC; each statement reads what is committed when it starts,
        # as on PostgreSQL: a read after a lock sees what the lock's holder committed even
        # in a transaction that read before (lib/http/audit.py's, around every write)
        init_command="SET time_zone = '+00:00', tx_isolation = 'READ-COMMITTED'",
        connect_timeout=connect_timeout,
    )
    return MyDatabase(pool)


def engine_of(dsn: str) -> Engine:
    """The engine ("postgresql" or "mysql") the URL names; ValueError for any other."""
    scheme = urlsplit(dsn).scheme.split("+")[0]
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme in ("mysql", "mariadb"):
        return "mysql"
    raise ValueError(f"unsupported database URL scheme {scheme!r} (postgresql:// or mysql://)")


CONNECT_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.TargetServerAttributeNotMatched,  # no member writable yet: retried like a refusal
    pymysql.MySQLError,
)


async def connect(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    reset: bool = True,
    pooler: Pooler = "",
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
    service: str = "",
    attempts: int | None = 10,
    wait: float | None = None,
    attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    base_delay: float = 0.2,
    max_delay: float = 3.0,
    first_attempt: int = 1,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] | None = None,
) -> Database:
    """Open a pool, retrying with lib's backoff (lib/backoff.py) while the server is down:
    `attempts` tries in all (at least one; None: no limit), for at most `wait` seconds
    (None: no limit), each bounded by `attempt_timeout` (a black-holed server), as is every
    connection the pool opens later; `command_timeout` bounds each PostgreSQL command. Each
    failed attempt is logged (`db_connect_retry`); the last one's error is raised. `sleep`
    waits out each pause and `rng` draws its jitter (lib.backoff's): a test passes a
    recorder and a fixed draw instead."""
    deadline = None if wait is None else time.monotonic() + wait
    attempt = first_attempt  # > 1: the caller made the first ones (lib/db/waiting.py)
    while True:
        try:
            async with asyncio.timeout(attempt_timeout):
                database = await _open(
                    dsn,
                    min_size,
                    max_size,
                    reset,
                    pooler,
                    command_timeout=command_timeout,
                    connect_timeout=attempt_timeout,
                )
        except CONNECT_ERRORS as exc:
            delay = backoff(attempt, base_delay, max_delay, rng)
            last = attempts is not None and attempt - first_attempt + 1 >= attempts
            if last or (deadline is not None and time.monotonic() + delay > deadline):
                raise
            log.warning(
                "db_connect_retry",
                attempt=attempt,
                error=str(exc) or type(exc).__name__,
                delay_s=round(delay, 3),
            )
            await sleep(delay)
            attempt += 1
            continue
        database.acquire_timeout, database.service = acquire_timeout, service
        if service:
            DB_POOL_TIMEOUTS.labels(service)  # exported at 0 from the start (lib/metrics.py)
        if attempt > 1:
            log.info("db_connected", attempts=attempt)
        return database
