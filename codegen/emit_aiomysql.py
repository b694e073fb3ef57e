"""The aiomysql emitter: the values of templates/aiomysql.tmpl (cursors, PyMySQL
placeholders, slices, executemany)."""

from __future__ import annotations

from .emit import Emitter, Source, as_tuple
from .naming import RUNTIME
from .plan import QueryPlan


class AiomysqlEmitter(Emitter):
    driver = "aiomysql"
    conn_type = "MyConn"

    def base_imports(self) -> set[str]:
        return {f"from {RUNTIME} import MyConn"}

    def execute(self, src: Source, const: str, plan: QueryPlan, args: list[str]) -> str:
        if "/*SLICE:" in plan.sql:
            src.imports.add(f"from {RUNTIME} import expand_slices")
            return f"await cur.execute(*expand_slices({const}, {as_tuple(args)}))"
        return f"await cur.execute({const}, {as_tuple(args)})"

    def values(self, src: Source, plan: QueryPlan, const: str = "") -> dict[str, str]:
        batch = plan.query.cmd in (":batchone", ":batchmany")
        common = super().values(src, plan, const)
        const = common["const"]
        return {
            **common,
            "execute": "" if batch else self.execute(src, const, plan, self.args(plan)),
            "item_execute": (
                self.execute(src, const, plan, self.args(plan, "item.")) if batch else ""
            ),
            "item_args": as_tuple(self.args(plan, "item.")),
        }
