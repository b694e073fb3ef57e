"""The departments total kept beside the version stamp (migration 0005, ADR 0013): every
kind of write keeps `table_versions.row_count` equal to count(*), concurrent writers and
rolled-back ones included, the migration counts the rows already there, and the list's
total is that count (count(*) only where it is NULL). Each test has its own database."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from services.departments.app import create_app
from tests import pg
from tests.integration.auth_support import settings_for
from tests.servers import DatabaseFactory
from tools.migrations import migrate


async def kept_and_real(conn: asyncpg.Connection[Any]) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT row_count FROM table_versions WHERE name = 'departments'),"
        " (SELECT count(*) FROM departments)"
    )
    assert row is not None
    return row[0], row[1]


async def insert(conn: asyncpg.Connection[Any], n: int, prefix: str = "D") -> None:
    await conn.execute(
        "INSERT INTO departments (name, address)"
        " SELECT $1 || '-' || g || '-' || gen_random_uuid(), 'a' FROM generate_series(1, $2) g",
        prefix,
        n,
    )


@pytest.fixture
async def conn(migrated_db: Callable[[str], str]) -> AsyncIterator[asyncpg.Connection[Any]]:
    connection = await asyncpg.connect(migrated_db("departments"))
    yield connection
    await connection.close()


async def test_every_kind_of_write_keeps_the_count(conn: asyncpg.Connection[Any]) -> None:
    assert await kept_and_real(conn) == (0, 0)
    await insert(conn, 5)
    assert await kept_and_real(conn) == (5, 5)
    taken = await conn.fetchval("SELECT name FROM departments LIMIT 1")
    inserted = await conn.execute(  # one of two conflicts: only the new row counts
        "INSERT INTO departments (name, address) VALUES ($1, 'a'), ('fresh', 'a')"
        " ON CONFLICT (name) DO NOTHING",
        taken,
    )
    assert inserted == "INSERT 0 1"
    assert await kept_and_real(conn) == (6, 6)
    await conn.execute("UPDATE departments SET address = 'b'")
    await conn.execute("UPDATE departments SET address = 'c' WHERE false")
    assert await kept_and_real(conn) == (6, 6)
    await conn.execute("DELETE FROM departments WHERE name = 'fresh'")
    await conn.execute("DELETE FROM departments WHERE false")
    assert await kept_and_real(conn) == (5, 5)
    await conn.copy_records_to_table(
        "departments",
        records=[(uuid.uuid4(), f"copied {n}", "a") for n in range(7)],
        columns=["id", "name", "address"],
    )
    assert await kept_and_real(conn) == (12, 12)
    async with conn.transaction():
        await insert(conn, 3)
        assert await kept_and_real(conn) == (15, 15)  # the writer sees its own count
        with pytest.raises(asyncpg.UniqueViolationError):  # rolls back to the savepoint
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO departments (name, address) VALUES ($1, 'a')", taken
                )
    assert await kept_and_real(conn) == (15, 15)
    tx = conn.transaction()
    await tx.start()
    await insert(conn, 4)
    await tx.rollback()
    assert await kept_and_real(conn) == (15, 15)
    await conn.execute("TRUNCATE departments CASCADE")
    assert await kept_and_real(conn) == (0, 0)


async def test_concurrent_writers_keep_it_exact(migrated_db: Callable[[str], str]) -> None:
    dsn = migrated_db("departments")
    rng = random.Random(31)

    async def writer(n: int) -> None:
        async with pg.connected(dsn) as conn:
            for step in range(25):
                tx = conn.transaction()
                await tx.start()
                if rng.random() < 0.4:  # one row per statement: no lock-order deadlock
                    await conn.execute(
                        "DELETE FROM departments WHERE id ="
                        " (SELECT id FROM departments ORDER BY random() LIMIT 1)"
                    )
                else:
                    await insert(conn, rng.randint(1, 4), f"w{n}s{step}")
                await (tx.rollback() if rng.random() < 0.2 else tx.commit())

    await asyncio.gather(*(writer(n) for n in range(6)))
    async with pg.connected(dsn) as conn:
        kept, real = await kept_and_real(conn)
    assert real > 0
    assert kept == real


async def test_the_migration_counts_the_rows_already_there(databases: DatabaseFactory) -> None:
    dsn = databases.create("departments", "postgresql")
    before = len(migrate.status("departments", dsn)) - 1  # every migration but 0005
    migrate.up("departments", dsn, steps=before)
    async with pg.connected(dsn) as conn:
        await insert(conn, 9)
        migrate.up("departments", dsn)
        assert await kept_and_real(conn) == (9, 9)
        await insert(conn, 2)
        assert await kept_and_real(conn) == (11, 11)


async def test_the_list_total_is_the_kept_count_or_a_count(
    aiohttp_client: Any, migrated_db: Callable[[str], str]
) -> None:
    dsn = migrated_db("departments")
    conn = await asyncpg.connect(dsn)
    # the handler's reads: the cache off (row_count is set by hand below, the stamp unmoved)
    client = await aiohttp_client(create_app(settings_for(dsn, page_cache_bytes=0)))
    try:
        await insert(conn, 3)

        async def totals() -> list[int]:
            pages = ("/v1/departments?limit=2", "/v1/departments?limit=2&page=9")
            return [(await (await client.get(p)).json())["meta"]["total"] for p in pages]

        assert await totals() == [3, 3]
        await conn.execute("UPDATE table_versions SET row_count = 1000 WHERE name = 'departments'")
        assert await totals() == [1000, 1000]  # the kept count is what the list answers
        await conn.execute("UPDATE table_versions SET row_count = NULL WHERE name = 'departments'")
        assert await totals() == [3, 3]  # not kept: counted
    finally:
        await conn.close()
