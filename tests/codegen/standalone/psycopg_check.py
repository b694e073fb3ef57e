"""Run in the fresh venv: the PostgreSQL package generated for psycopg 3 with msgspec
Structs (driver: psycopg, model_type: msgspec) against the server."""

import asyncio
import importlib.util
import sys
import typing
from pathlib import Path

import msgspec
import psycopg
import shop_psycopg.pg_queries as q
from sqlc_fixup_runtime import ExecResult

assert importlib.util.find_spec("lib") is None, "the project tree leaked into the fresh venv"
assert importlib.util.find_spec("asyncpg") is not None  # installed, but not used here

SCHEMA = Path("pg_schema.sql").read_text()


async def main(dsn: str) -> None:
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await conn.execute(SCHEMA)
        await q.add_shelf(conn, id=1, title="A", subtitle=None, tags=["x"], room_id=None)
        await q.add_shelf(conn, id=2, title="B", subtitle="b", tags=[], room_id=7)
        rows = await q.list_(conn)
        assert [(r.id, r.title, r.subtitle, r.tags) for r in rows] == [
            (1, "A", None, ["x"]),
            (2, "B", "b", []),
        ], rows
        assert isinstance(rows[0], msgspec.Struct)
        assert [(r.id, r.room_id) for r in await q.shelves_in_rooms(conn)] == [(2, 7)]
        assert [r.id async for r in q.iter_list_(conn)] == [1, 2]
        assert await q.rename(conn, id=2, title="C") == ExecResult(1, None)
        async with conn.transaction():
            assert await q.lock(conn, pg_advisory_xact_lock=1) is None
        hints = typing.get_type_hints(q.shelves_in_rooms)
        assert str(hints["return"]) == "list[shop_psycopg.pg_queries.ShelvesInRoomsRow]", hints
        assert typing.get_type_hints(q.ShelvesInRoomsRow)["room_id"] is int
        for fn in (q.add_shelf, q.list_, q.rename, q.lock, q.iter_list_):
            typing.get_type_hints(fn)
    finally:
        await conn.close()


asyncio.run(main(sys.argv[1]))
print("psycopg ok")
