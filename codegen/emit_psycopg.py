"""The psycopg 3 emitters, async and sync (`driver: psycopg-sync`): the values of
templates/psycopg.tmpl, which the sync one reads without `async` and `await`
(`conn.execute` with `%(pn)s` placeholders, `cursor.copy()` for :copyfrom, `executemany`
for :batchexec, `cursor.stream()` for the row-by-row form)."""

from __future__ import annotations

from .emit import Emitter, Source, as_tuple
from .pgcasts import format_placeholders
from .plan import QueryPlan


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PsycopgEmitter(Emitter):
    driver = "psycopg"
    conn_type = "PsycoConn"
    conn_module = ".psycopg_conn"

    def driver_sql(self, plan: QueryPlan) -> str:
        return format_placeholders(plan.sql)

    def ordered_args(self, plan: QueryPlan, holder: str = "") -> str:
        """The arguments as a dict by placeholder name (`%(p1)s`)."""
        numbers = sorted(p.number for p in plan.query.params)
        pairs = zip(numbers, self.args(plan, holder), strict=True)
        return "{" + ", ".join(f'"p{n}": {arg}' for n, arg in pairs) + "}"

    def values(self, src: Source, plan: QueryPlan, const: str = "") -> dict[str, str]:
        schema, _, table = (plan.query.insert_into_table or "").rpartition(".")
        target = ".".join(_ident(n) for n in (schema, table) if n)
        columns = ", ".join(_ident(p.db_name) for p in plan.params)
        return {
            **super().values(src, plan, const),
            "args": self.ordered_args(plan),
            "item_args": self.ordered_args(plan, "item."),
            "item_tuple": as_tuple(self.args(plan, "item.")),
            "copy": repr(f"COPY {target} ({columns}) FROM STDIN"),
        }


class PsycopgSyncEmitter(PsycopgEmitter):
    """psycopg 3's sync API (`driver: psycopg-sync`): plain functions on a
    `psycopg.Connection`, the same SQL, row classes and conversions as the async emitter."""

    driver = "psycopg-sync"
    conn_type = "PsycoSyncConn"
    def_prefix = "def "
    stream_type = "Iterator[{}]"
