"""The aiomysql emitter: cursors, PyMySQL placeholders, slices, executemany."""

from __future__ import annotations

from .emit import Emitter, Source, as_tuple, page_builder, row_builder
from .naming import RUNTIME
from .plan import QueryPlan


class AiomysqlEmitter(Emitter):
    driver = "aiomysql"
    conn_type = "MyConn"
    stream_note = "unbuffered (SSCursor)."

    def base_imports(self) -> set[str]:
        return {f"from {RUNTIME} import MyConn"}

    def execute(self, src: Source, plan: QueryPlan, args: list[str]) -> str:
        const = plan.func.upper()
        if "/*SLICE:" in plan.sql:
            src.imports.add(f"from {RUNTIME} import expand_slices")
            return f"await cur.execute(*expand_slices({const}, {as_tuple(args)}))"
        return f"await cur.execute({const}, {as_tuple(args)})"

    def body(self, src: Source, plan: QueryPlan) -> list[str]:
        cmd, const = plan.query.cmd, plan.func.upper()
        build = row_builder(plan, "row", "models.")
        lines = ["async with conn.cursor() as cur:"]
        if cmd in (":one", ":many", ":exec", ":execrows", ":execresult", ":execlastid"):
            lines.append("    " + self.execute(src, plan, self.args(plan)))
        tail = {
            ":one": ["row = await cur.fetchone()", f"return None if row is None else {build}"],
            ":many": ["rows = await cur.fetchall()", f"return [{build} for row in rows]"]
            if not plan.page_class
            else ["rows = await cur.fetchall()", *page_builder(plan, "rows")],
            ":exec": [],
            ":execrows": ["affected: int = cur.rowcount", "return affected"],
            ":execresult": [
                "affected: int = cur.rowcount",
                "last: int | None = cur.lastrowid or None",
                "return ExecResult(affected, last)",
            ],
            ":execlastid": ["last: int = cur.lastrowid", "return last"],
        }.get(cmd)
        if tail is not None:
            return lines + [f"    {t}" for t in tail]
        item_args = as_tuple(self.args(plan, "item."))
        if cmd in (":copyfrom", ":batchexec"):
            # PyMySQL rewrites an INSERT ... VALUES executemany into multi-row INSERTs.
            run = [f"await cur.executemany({const}, [{item_args} for item in items])"]
            # rowcount stays -1 when executemany gets no rows
            ret = ["return max(int(cur.rowcount), 0)"] if cmd == ":copyfrom" else []
            return lines + [f"    {t}" for t in run + ret]
        one_row = cmd == ":batchone"
        one = f"None if row is None else {build}" if one_row else f"[{build} for row in rows]"
        fetch = "row = await cur.fetchone()" if one_row else "rows = await cur.fetchall()"
        execute = self.execute(src, plan, self.args(plan, "item."))
        return ["results = []", *lines, "    for item in items:", f"        {execute}",
                f"        {fetch}", f"        results.append({one})", "return results"]  # fmt: skip

    def stream_body(self, src: Source, plan: QueryPlan) -> list[str]:
        src.imports.add("import aiomysql")
        build = row_builder(plan, "row", "models.")
        return [
            "async with conn.cursor(aiomysql.SSCursor) as cur:",
            "    " + self.execute(src, plan, self.args(plan)),
            "    while (row := await cur.fetchone()) is not None:",
            f"        yield {build}",
        ]
