"""Run in the fresh venv: the generated MySQL package against the server
(`my_check.py DSN [PACKAGE]`: `shop` with dataclasses, `shop_attrs` with attrs classes)."""

import asyncio
import importlib
import importlib.util
import sys
import typing
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import aiomysql

assert importlib.util.find_spec("lib") is None, "the project tree leaked into the fresh venv"

PACKAGE = sys.argv[2] if len(sys.argv) > 2 else "shop"
q = importlib.import_module(f"{PACKAGE}.my_queries")
SCHEMA = Path("my_schema.sql").read_text()


async def main(dsn: str) -> None:
    url = urlsplit(dsn)
    conn = await aiomysql.connect(
        host=url.hostname, port=url.port or 3306, user=url.username or "root",
        password=url.password or "", db=url.path.lstrip("/"), autocommit=True,
    )  # fmt: skip
    try:
        async with conn.cursor() as cur:
            await cur.execute(SCHEMA)
        for id_, nick, x, y in [(1, "ann", 1, 2), (2, "bob", None, 5)]:
            result = await q.add_pair(conn, id=id_, nick=nick, x=x, y=y)
            assert result.rows_affected == 1, result
        totals = await q.totals(conn)
        assert [(r.id, r.total) for r in totals] == [(1, 3), (2, None)]
        if PACKAGE == "shop_attrs":
            import attrs

            assert attrs.asdict(totals[0]) == {"id": 1, "total": 3}
        assert await q.by_nick(conn, nick="bob") == [2]
        assert await q.by_nick(conn, nick="") == [1, 2]
        assert await q.above(conn, floor=0) == [1]
        assert typing.get_type_hints(q.TotalsRow)["total"] == int | None
        # the server's types (the types lock): AVG(int) is Decimal, GROUP_CONCAT text str
        stats = await q.stats(conn)
        assert stats is not None
        assert stats.mean_x == Decimal(1)
        assert stats.nicks == "ann,bob"
        stats_hints = typing.get_type_hints(q.StatsRow)
        assert stats_hints == {"mean_x": Decimal | None, "nicks": str | None}, stats_hints
        assert typing.get_type_hints(q.above)["floor"] is int
        for fn in (q.add_pair, q.totals, q.by_nick, q.iter_totals):
            typing.get_type_hints(fn)
    finally:
        conn.close()


asyncio.run(main(sys.argv[1]))
print("mysql ok")
