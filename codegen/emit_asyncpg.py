"""The asyncpg emitter: the values of templates/asyncpg.tmpl (fetch/fetchrow/execute, COPY,
prepared batches)."""

from __future__ import annotations

from .emit import Emitter, Source, as_tuple
from .plan import QueryPlan


class AsyncpgEmitter(Emitter):
    driver = "asyncpg"
    conn_type = "PgConn"

    def values(self, src: Source, plan: QueryPlan, const: str = "") -> dict[str, str]:
        schema, _, table = (plan.query.insert_into_table or "").rpartition(".")
        return {
            **super().values(src, plan, const),
            "args": "".join(f", {a}" for a in self.args(plan)),
            "item_args": as_tuple(self.args(plan, "item.")),
            "table": repr(table),
            "schema_name": f"schema_name={schema!r}," if schema else "",
            "columns": ", ".join(repr(p.db_name) for p in plan.params),
        }
