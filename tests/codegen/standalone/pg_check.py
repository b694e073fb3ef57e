"""Run in the fresh venv: the generated PostgreSQL package against the server
(`pg_check.py DSN [PACKAGE]`: `shop` with dataclasses, `shop_pydantic` with pydantic models)."""

import asyncio
import importlib
import importlib.util
import sys
import typing
from decimal import Decimal
from pathlib import Path

import asyncpg
from sqlc_fixup_runtime import ExecResult

assert importlib.util.find_spec("lib") is None, "the project tree leaked into the fresh venv"

PACKAGE = sys.argv[2] if len(sys.argv) > 2 else "shop"
q = importlib.import_module(f"{PACKAGE}.pg_queries")
SCHEMA = Path("pg_schema.sql").read_text()


async def main(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SCHEMA)
        await q.add_shelf(conn, id=1, title="A", subtitle=None, tags=["x"], room_id=None)
        await q.add_shelf(conn, id=2, title="B", subtitle="b", tags=[], room_id=7)
        rows = await q.list_(conn)
        assert [(r.id, r.title, r.subtitle, r.tags) for r in rows] == [
            (1, "A", None, ["x"]),
            (2, "B", "b", []),
        ], rows
        assert [(r.id, r.room_id) for r in await q.shelves_in_rooms(conn)] == [(2, 7)]
        if PACKAGE == "shop_pydantic":
            import pydantic

            assert isinstance(rows[0], pydantic.BaseModel)
            assert rows[0].model_dump()["tags"] == ["x"]
        assert await q.rename(conn, id=2, title="C") == ExecResult(1, None)
        # the server's types (the types lock): avg(numeric) is Decimal, string_agg(text) str
        stats = await q.stats(conn)
        assert stats is not None
        assert stats.mean_price == Decimal("1.50"), stats
        assert stats.titles == "A,C", stats
        stats_hints = typing.get_type_hints(q.StatsRow)
        assert stats_hints == {"mean_price": Decimal | None, "titles": str | None}, stats_hints
        async with conn.transaction():
            assert await q.lock(conn, pg_advisory_xact_lock=1) is None
        hints = typing.get_type_hints(q.shelves_in_rooms)
        assert str(hints["return"]) == f"list[{PACKAGE}.pg_queries.ShelvesInRoomsRow]", hints
        assert typing.get_type_hints(q.ShelvesInRoomsRow)["room_id"] is int
        for fn in (q.add_shelf, q.list_, q.rename, q.lock, q.iter_list_):
            typing.get_type_hints(fn)
    finally:
        await conn.close()


asyncio.run(main(sys.argv[1]))
print("pg ok")
