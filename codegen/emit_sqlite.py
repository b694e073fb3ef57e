"""The SQLite emitters, sync (`driver: sqlite3`, the standard library) and async
(`driver: aiosqlite`): the values of templates/sqlite3.tmpl and aiosqlite.tmpl (`?`
placeholders bound in text order, sqlc.slice expanded at run time, executemany)."""

from __future__ import annotations

from .emit import Emitter, Source, as_tuple
from .naming import RUNTIME
from .plan import QueryPlan


class Sqlite3Emitter(Emitter):
    driver = "sqlite3"
    conn_type = "SqliteConn"
    def_prefix = "def "
    stream_type = "Iterator[{}]"

    def base_imports(self) -> set[str]:
        return {f"from {RUNTIME}.sqlite_conn import SqliteConn"}

    def call(self, src: Source, const: str, plan: QueryPlan, args: list[str]) -> str:
        """execute()'s arguments: the SQL and its values (a slice's `?` expanded)."""
        if "/*SLICE:" in plan.sql:
            src.imports.add(f"from {RUNTIME} import expand_sqlite_slices")
            return f"*expand_sqlite_slices({const}, {as_tuple(args)})"
        return f"{const}, {as_tuple(args)}"

    def values(self, src: Source, plan: QueryPlan, const: str = "") -> dict[str, str]:
        common = super().values(src, plan, const)
        return {
            **common,
            "call": self.call(src, common["const"], plan, self.args(plan)),
            "item_call": self.call(src, common["const"], plan, self.args(plan, "item.")),
            "item_args": as_tuple(self.args(plan, "item.")),
        }


class AiosqliteEmitter(Sqlite3Emitter):
    """aiosqlite: the same SQL, row classes and conversions, awaited."""

    driver = "aiosqlite"
    conn_type = "AiosqliteConn"
    def_prefix = "async def "
    stream_type = "AsyncGenerator[{}, None]"

    def base_imports(self) -> set[str]:
        return {f"from {RUNTIME}.aiosqlite_conn import AiosqliteConn"}
