"""The psycopg 3 (async) emitter: `conn.execute` with `%(pn)s` placeholders, `cursor.copy()`
for :copyfrom, `executemany` for :batchexec, `cursor.stream()` for the row-by-row form."""

from __future__ import annotations

from .emit import Emitter, Source, as_tuple, page_builder, row_builder
from .naming import RUNTIME
from .pgcasts import format_placeholders
from .plan import QueryPlan


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PsycopgEmitter(Emitter):
    driver = "psycopg"
    conn_type = "PsycoConn"
    stream_note = "single-row mode (cursor.stream)."

    def base_imports(self) -> set[str]:
        return {f"from {RUNTIME}_psycopg import PsycoConn"}

    def driver_sql(self, plan: QueryPlan) -> str:
        return format_placeholders(plan.sql)

    def ordered_args(self, plan: QueryPlan, holder: str = "") -> str:
        """The arguments as a dict by placeholder name (`%(p1)s`)."""
        numbers = sorted(p.number for p in plan.query.params)
        pairs = zip(numbers, self.args(plan, holder), strict=True)
        return "{" + ", ".join(f'"p{n}": {arg}' for n, arg in pairs) + "}"

    def body(self, src: Source, plan: QueryPlan) -> list[str]:
        q, const = plan.query, plan.func.upper()
        args = self.ordered_args(plan)
        run = f"cur = await conn.execute({const}, {args})"
        build = row_builder(plan, "row", "models.")
        cmd = q.cmd
        if cmd == ":one" and plan.scalar is not None and plan.scalar.annotation == "None":
            return [f"await conn.execute({const}, {args})"]
        if cmd == ":one":
            return [run, "row = await cur.fetchone()", f"return None if row is None else {build}"]
        if cmd == ":many" and plan.page_class:
            return [run, "rows = await cur.fetchall()", *page_builder(plan, "rows")]
        if cmd == ":many":
            return [run, "rows = await cur.fetchall()", f"return [{build} for row in rows]"]
        if cmd == ":exec":
            return [f"await conn.execute({const}, {args})"]
        if cmd == ":execrows":
            return [run, "return cur.rowcount"]
        if cmd == ":execresult":
            return [run, "return ExecResult(cur.rowcount, None)"]
        if cmd == ":execlastid":
            return [run, "value: int = (await cur.fetchone() or (None,))[0]", "return value"]
        item_args = self.ordered_args(plan, "item.")
        if cmd == ":copyfrom":
            schema, _, table = (q.insert_into_table or "").rpartition(".")
            target = ".".join(_ident(n) for n in (schema, table) if n)
            columns = ", ".join(_ident(p.db_name) for p in plan.params)
            copy = f"COPY {target} ({columns}) FROM STDIN"
            return [
                "async with conn.cursor() as cur:",
                f"    async with cur.copy({copy!r}) as copy:",
                "        for item in items:",
                f"            await copy.write_row({as_tuple(self.args(plan, 'item.'))})",
                "    return cur.rowcount",
            ]
        if cmd == ":batchexec":
            return [
                "async with conn.cursor() as cur:",
                f"    await cur.executemany({const}, [{item_args} for item in items])",
            ]
        one_row = cmd == ":batchone"
        fetch = "row = await cur.fetchone()" if one_row else "rows = await cur.fetchall()"
        one = f"None if row is None else {build}" if one_row else f"[{build} for row in rows]"
        return [
            "results = []",
            "for item in items:",
            f"    cur = await conn.execute({const}, {item_args})",
            f"    {fetch}",
            f"    results.append({one})",
            "return results",
        ]

    def stream_body(self, src: Source, plan: QueryPlan) -> list[str]:
        build = row_builder(plan, "row", "models.")
        return [
            "async with conn.cursor() as cur:",
            f"    async for row in cur.stream({plan.func.upper()}, {self.ordered_args(plan)}):",
            f"        yield {build}",
        ]
