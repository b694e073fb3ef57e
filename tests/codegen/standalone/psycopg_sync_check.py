"""Run in the fresh venv: the PostgreSQL package generated for psycopg 3's sync API with
dataclasses (driver: psycopg-sync) against the server: plain functions, no event loop."""

import dataclasses
import importlib.util
import inspect
import sys
import typing
from pathlib import Path

import psycopg
import shop_psycopg_sync.pg_queries as q
from sqlc_fixup_runtime import ExecResult

assert importlib.util.find_spec("lib") is None, "the project tree leaked into the fresh venv"

SCHEMA = Path("pg_schema.sql").read_text()


def main(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        assert not inspect.iscoroutinefunction(q.add_shelf)
        q.add_shelf(conn, id=1, title="A", subtitle=None, tags=["x"], room_id=None)
        q.add_shelf(conn, id=2, title="B", subtitle="b", tags=[], room_id=7)
        rows = q.list_(conn)
        assert [(r.id, r.title, r.subtitle, r.tags) for r in rows] == [
            (1, "A", None, ["x"]),
            (2, "B", "b", []),
        ], rows
        assert dataclasses.is_dataclass(rows[0])
        assert [(r.id, r.room_id) for r in q.shelves_in_rooms(conn)] == [(2, 7)]
        assert [r.id for r in q.iter_list_(conn)] == [1, 2]
        assert q.rename(conn, id=2, title="C") == ExecResult(1, None)
        with conn.transaction():
            assert q.lock(conn, pg_advisory_xact_lock=1) is None
        hints = typing.get_type_hints(q.shelves_in_rooms)
        assert str(hints["return"]) == "list[shop_psycopg_sync.pg_queries.ShelvesInRoomsRow]"
        for fn in (q.add_shelf, q.list_, q.rename, q.lock, q.iter_list_):
            typing.get_type_hints(fn)


main(sys.argv[1])
print("psycopg sync ok")
