"""The SQLite emitters, sync (`driver: sqlite3`, the standard library) and async
(`driver: aiosqlite`): the values of templates/sqlite3.tmpl and aiosqlite.tmpl (`?`
placeholders bound in text order, sqlc.slice expanded at run time, executemany)."""

from __future__ import annotations

from .emit import SliceExpanding


class Sqlite3Emitter(SliceExpanding):
    driver = "sqlite3"
    conn_type = "SqliteConn"
    conn_module = ".sqlite_conn"
    def_prefix = "def "
    stream_type = "Iterator[{}]"
    expander = "expand_sqlite_slices"


class AiosqliteEmitter(Sqlite3Emitter):
    """aiosqlite: the same SQL, row classes and conversions, awaited."""

    driver = "aiosqlite"
    conn_type = "AiosqliteConn"
    conn_module = ".aiosqlite_conn"
    def_prefix = "async def "
    stream_type = "AsyncGenerator[{}, None]"
