"""What a test reads or writes beside the service under test: a connection of its own,
closed on the way out, or one statement on one (asyncpg's own methods, by DSN)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async with connected(dsn) as conn:
        return await conn.fetch(query, *args)


async def fetchrow(dsn: str, query: str, *args: Any) -> asyncpg.Record | None:
    async with connected(dsn) as conn:
        return await conn.fetchrow(query, *args)


async def fetchval(dsn: str, query: str, *args: Any) -> Any:
    async with connected(dsn) as conn:
        return await conn.fetchval(query, *args)


async def execute(dsn: str, query: str, *args: Any) -> str:
    async with connected(dsn) as conn:
        return await conn.execute(query, *args)
