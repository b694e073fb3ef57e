"""One small interface over asyncpg and aiomysql pools, chosen by the DSN's scheme.

`Database.acquire()` lends a connection, `Database.transaction()` lends one inside a
transaction (committed on success, rolled back on any exception), `ping()` checks the
server for /ready, `stats()` feeds the pool gauge. `connect()` retries with backoff so a
service started before its database waits for it instead of crashing.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import asyncpg
import pymysql

from lib.db import compat  # noqa: F401  (fixes aiomysql's bytes escaping on import)
from lib.logging import get_logger

log = get_logger("lib.db")


@dataclass(frozen=True, slots=True)
class PoolStats:
    size: int
    idle: int

    @property
    def in_use(self) -> int:
        return self.size - self.idle


class Database(ABC):
    engine: str

    @abstractmethod
    def acquire(self) -> AbstractAsyncContextManager[Any]: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    @abstractmethod
    async def ping(self) -> None: ...

    @abstractmethod
    def stats(self) -> PoolStats: ...

    @abstractmethod
    async def close(self, grace: float = 5.0) -> None:
        """Close gracefully, or terminate the connections after `grace` seconds."""


class PgDatabase(Database):
    engine = "postgresql"

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool

    def acquire(self) -> AbstractAsyncContextManager[Any]:
        return self.pool.acquire()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    def stats(self) -> PoolStats:
        return PoolStats(self.pool.get_size(), self.pool.get_idle_size())

    async def close(self, grace: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), grace)
        except TimeoutError:
            self.pool.terminate()


class MyDatabase(Database):
    engine = "mysql"

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def acquire(self) -> AbstractAsyncContextManager[Any]:
        result: AbstractAsyncContextManager[Any] = self.pool.acquire()
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn:
            await conn.begin()
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def ping(self) -> None:
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT 1")

    def stats(self) -> PoolStats:
        return PoolStats(int(self.pool.size), int(self.pool.freesize))

    async def close(self, grace: float = 5.0) -> None:
        self.pool.close()
        try:
            await asyncio.wait_for(self.pool.wait_closed(), grace)
        except TimeoutError:
            self.pool.terminate()
            await self.pool.wait_closed()


async def _no_reset(conn: Any) -> None:
    """asyncpg runs a reset query on every release; skip it where no handler changes
    session state (measured: 6-25% more req/s)."""


async def _open(dsn: str, min_size: int, max_size: int, reset: bool) -> Database:
    scheme = urlsplit(dsn).scheme.split("+")[0]
    if scheme in ("postgresql", "postgres"):
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, reset=None if reset else _no_reset
        )
        return PgDatabase(pool)
    if scheme in ("mysql", "mariadb"):
        parts = urlsplit(dsn)
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
            init_command="SET time_zone = '+00:00'",  # DATETIME columns hold UTC
        )
        return MyDatabase(pool)
    raise ValueError(f"unsupported database URL scheme {scheme!r} (postgresql:// or mysql://)")


CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, pymysql.MySQLError)


async def connect(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    reset: bool = True,
    attempts: int = 10,
    base_delay: float = 0.2,
    max_delay: float = 3.0,
) -> Database:
    """Open a pool, retrying with jittered exponential backoff while the server is down."""
    for attempt in range(1, attempts + 1):
        try:
            return await _open(dsn, min_size, max_size, reset)
        except CONNECT_ERRORS as exc:
            if attempt == attempts:
                raise
            delay = random.random() * min(max_delay, base_delay * 2**attempt)
            log.warning(
                "db_connect_retry", attempt=attempt, error=str(exc), delay_s=round(delay, 3)
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
