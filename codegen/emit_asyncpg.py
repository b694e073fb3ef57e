"""The asyncpg emitter: fetch/fetchrow/execute, COPY, prepared batches."""

from __future__ import annotations

from .emit import Emitter, Source, as_tuple, page_builder, row_builder
from .naming import RUNTIME
from .plan import QueryPlan


class AsyncpgEmitter(Emitter):
    driver = "asyncpg"
    conn_type = "PgConn"
    stream_note = "needs a transaction."

    def base_imports(self) -> set[str]:
        return {f"from {RUNTIME} import PgConn"}

    def body(self, src: Source, plan: QueryPlan) -> list[str]:
        q, const = plan.query, plan.func.upper()
        args = "".join(f", {a}" for a in self.args(plan))
        build = row_builder(plan, "row", "models.")
        cmd = q.cmd
        if cmd == ":one" and plan.scalar is not None and plan.scalar.annotation == "None":
            return [f"await conn.fetchrow({const}{args})"]  # a void result: nothing to return
        if cmd == ":one":
            return [
                f"row = await conn.fetchrow({const}{args})",
                f"return None if row is None else {build}",
            ]
        if cmd == ":many" and plan.page_class:
            return [f"rows = await conn.fetch({const}{args})", *page_builder(plan, "rows")]
        if cmd == ":many":
            return [f"rows = await conn.fetch({const}{args})", f"return [{build} for row in rows]"]
        if cmd == ":exec":
            return [f"await conn.execute({const}{args})"]
        if cmd == ":execrows":
            src.imports.add(f"from {RUNTIME} import status_rows")
            return [f"return status_rows(await conn.execute({const}{args}))"]
        if cmd == ":execresult":
            src.imports.add(f"from {RUNTIME} import status_rows")
            return [f"return ExecResult(status_rows(await conn.execute({const}{args})), None)"]
        if cmd == ":execlastid":
            return [f"value: int = await conn.fetchval({const}{args})", "return value"]
        item_args = as_tuple(self.args(plan, "item."))
        if cmd == ":copyfrom":
            src.imports.add(f"from {RUNTIME} import status_rows")
            columns = ", ".join(repr(p.db_name) for p in plan.params)
            schema, _, table = (q.insert_into_table or "").rpartition(".")
            return [
                "status = await conn.copy_records_to_table(",
                f"    {table!r},",
                *([f"    schema_name={schema!r},"] if schema else []),
                f"    records=[{item_args} for item in items],",
                f"    columns=[{columns}],",
                ")",
                "return status_rows(status)",
            ]
        if cmd == ":batchexec":
            return [f"await conn.executemany({const}, [{item_args} for item in items])"]
        one_row = cmd == ":batchone"
        fetch = "fetchrow" if one_row else "fetch"
        one = f"None if row is None else {build}" if one_row else f"[{build} for row in rows]"
        var = "row" if one_row else "rows"
        return [
            f"stmt = await conn.prepare({const})",
            "results = []",
            "for item in items:",
            f"    {var} = await stmt.{fetch}(*{item_args})",
            f"    results.append({one})",
            "return results",
        ]

    def stream_body(self, src: Source, plan: QueryPlan) -> list[str]:
        args = "".join(f", {a}" for a in self.args(plan))
        build = row_builder(plan, "row", "models.")
        return [f"async for row in conn.cursor({plan.func.upper()}{args}):", f"    yield {build}"]
