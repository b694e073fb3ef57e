"""Two fixes seen at run time, each generated, type-checked and run on the real engine: a
`sqlc.slice` over a nullable column takes a list, never None (SQLite's and MySQL's runtime
expand it; None raised there), and SQLite DATETIME parameters are written as SQLite writes
its own timestamps (a space, not isoformat()'s `T`), so text comparisons hold."""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
import typing
from pathlib import Path
from types import ModuleType

import aiosqlite
import pytest

from tests.codegen.conformance import support
from tests.codegen.inline_support import generate
from tests.codegen.test_runtime_mysql import connect, sql
from tests.servers import DatabaseFactory, Servers
from tools.sqlc_types import apply_schema

LITE_SCHEMA = """
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    tag        TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""
LITE_QUERIES = """
-- name: AddEvent :execlastid
INSERT INTO events (tag, created_at) VALUES (@tag, @created_at);

-- name: EventsSince :many
SELECT id FROM events WHERE created_at >= @since ORDER BY id;

-- name: EventsTagged :many
SELECT id FROM events WHERE tag IN (sqlc.slice(tags)) ORDER BY id;
"""
MY_SCHEMA = """
CREATE TABLE tagged (
    id  BIGINT AUTO_INCREMENT PRIMARY KEY,
    tag VARCHAR(20) NULL
);
"""
MY_QUERIES = """
-- name: AddTagged :execlastid
INSERT INTO tagged (tag) VALUES (sqlc.arg(tag));

-- name: TaggedIn :many
SELECT id FROM tagged WHERE tag IN (sqlc.slice(tags)) ORDER BY id;
"""
TEN = datetime.datetime(2026, 1, 2, 10, 0, 0)
ELEVEN = datetime.datetime(2026, 1, 2, 11, 0, 0)


@pytest.fixture(scope="module")
def root(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("slices_datetimes")
    for driver in ("sqlite3", "aiosqlite"):
        generate(into, servers, f"fix_lite_{driver}", engine="sqlite", schema=LITE_SCHEMA,
                 queries=LITE_QUERIES, options={"driver": driver})  # fmt: skip
    generate(into, servers, "fix_my", engine="mysql", schema=MY_SCHEMA, queries=MY_QUERIES,
             options={"driver": "aiomysql"})  # fmt: skip
    return into


def module(root: Path, package: str) -> ModuleType:
    return support.import_generated(root / f"{package}_build" / package, "q")


def test_generated_code_passes_mypy_strict(root: Path) -> None:
    for package in ("fix_lite_sqlite3", "fix_lite_aiosqlite", "fix_my"):
        result = support.mypy_strict(root / f"{package}_build" / package)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
def test_sqlite_slice_on_a_nullable_column_and_datetimes_as_sqlite_writes_them(
    root: Path, tmp_path: Path, driver: str
) -> None:
    q = module(root, f"fix_lite_{driver}")
    assert typing.get_type_hints(q.events_tagged)["tags"] == list[str]
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as setup:
        setup.executescript(LITE_SCHEMA)
        # a timestamp as SQLite writes it (CURRENT_TIMESTAMP's form): '2026-01-02 10:00:00'
        setup.execute("INSERT INTO events (tag, created_at) VALUES ('sqlite', datetime(?))",
                      ("2026-01-02 10:00:00",))  # fmt: skip
    setup.close()

    async def call(conn: object, fn: typing.Any, **kw: object) -> typing.Any:
        result = fn(conn, **kw)
        return await result if driver == "aiosqlite" else result

    async def check(conn: object) -> None:
        ours = await call(conn, q.add_event, tag="ours", created_at=ELEVEN)
        assert await call(conn, q.events_since, since=TEN) == [1, ours]
        assert await call(conn, q.events_since, since=TEN.replace(minute=30)) == [ours]
        assert await call(conn, q.events_since, since=ELEVEN) == [ours]  # equal: written alike
        assert await call(conn, q.events_tagged, tags=["sqlite", "ours"]) == [1, ours]
        assert await call(conn, q.events_tagged, tags=[]) == []
        await call(conn, q.add_event, tag=None, created_at=TEN)  # a NULL tag matches no list
        assert await call(conn, q.events_tagged, tags=["ours", "x"]) == [ours]

    if driver == "aiosqlite":

        async def run_async() -> None:
            async with aiosqlite.connect(path) as conn:
                await check(conn)
                await conn.commit()

        asyncio.run(run_async())
    else:
        conn = sqlite3.connect(path)
        asyncio.run(check(conn))
        conn.commit()
        conn.close()
    with sqlite3.connect(path) as after:  # SQLite's own comparison agrees with ours
        found = after.execute("SELECT tag FROM events WHERE created_at <= datetime(?)",
                              ("2026-01-02 11:00:00",)).fetchall()  # fmt: skip
    after.close()
    assert sorted(t for (t,) in found if t) == ["ours", "sqlite"]


async def test_mysql_slice_on_a_nullable_column(root: Path, databases: DatabaseFactory) -> None:
    q = module(root, "fix_my")
    assert typing.get_type_hints(q.tagged_in)["tags"] == list[str]
    dsn = databases.create("fix_slice", "mysql")
    apply_schema(dsn, [root / "fix_my_case" / "schema.sql"])
    conn = await connect(dsn)
    try:
        first = await q.add_tagged(conn, tag="a")
        second = await q.add_tagged(conn, tag="b")
        await q.add_tagged(conn, tag=None)
        assert await q.tagged_in(conn, tags=["a", "b", "c"]) == [first, second]
        assert await q.tagged_in(conn, tags=["b"]) == [second]
        assert await q.tagged_in(conn, tags=[]) == []  # an empty list matches no row
        assert len(await sql(conn, "SELECT id FROM tagged")) == 3
    finally:
        conn.close()
