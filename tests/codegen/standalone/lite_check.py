"""Run in the fresh venv: the SQLite package generated for sqlite3 (sync, dataclasses) and
for aiosqlite (async, msgspec) against a real SQLite file: no server, nothing else."""

import asyncio
import datetime
import importlib.util
import inspect
import sqlite3
import sys
from pathlib import Path

import aiosqlite
import shop_alite.lite_queries as aq
import shop_lite.lite_queries as q

assert importlib.util.find_spec("lib") is None, "the project tree leaked into the fresh venv"

SCHEMA = Path("lite_schema.sql").read_text()
DUE = datetime.date(2026, 1, 2)


def sync(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    assert not inspect.iscoroutinefunction(q.add_note)
    first = q.add_note(conn, title="a", body=None, pinned=True, due=DUE)
    q.add_notes(conn, [q.AddNotesParams("b"), q.AddNotesParams("c")])
    note = q.get_note(conn, id=first)
    assert note is not None
    assert (note.title, note.body, note.pinned, note.due) == ("a", None, True, DUE), note
    assert [n.title for n in q.list_notes(conn, ids=[first, first + 2])] == ["a", "c"]
    assert q.unpin(conn) == 1
    conn.commit()
    conn.close()


async def async_(path: str) -> None:
    async with aiosqlite.connect(path) as conn:
        assert inspect.iscoroutinefunction(aq.add_note)
        last = await aq.add_note(conn, title="d", body="x", pinned=False, due=None)
        note = await aq.get_note(conn, id=last)
        assert note is not None
        assert (note.title, note.body, note.pinned, note.due) == ("d", "x", False, None)
        rows = await aq.list_notes(conn, ids=[1, last])
        assert [n.title for n in rows] == ["a", "d"]


def main(path: str) -> None:
    sync(path)
    asyncio.run(async_(path))
    print("sqlite ok")


if __name__ == "__main__":
    main(sys.argv[1])
