"""Which `:one` queries always yield exactly one row, so that their function returns
`Row`, never `Row | None`: an aggregate without GROUP BY (`SELECT count(*) FROM t`) gives
one row even over no row. Read on the parse tree: pglast for PostgreSQL, sqlglot for
MySQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import SetOperation

from .nullability import NULLABLE_AGGREGATES

# set-returning functions: beside an aggregate in the select list, the rows are theirs
SET_RETURNING = {
    "generate_series", "generate_subscripts", "unnest", "json_array_elements",
    "json_array_elements_text", "jsonb_array_elements", "jsonb_array_elements_text",
    "json_each", "json_each_text", "jsonb_each", "jsonb_each_text", "json_object_keys",
    "jsonb_object_keys", "json_to_recordset", "jsonb_to_recordset", "jsonb_path_query",
    "json_populate_recordset", "jsonb_populate_recordset", "regexp_matches",
    "regexp_split_to_table", "string_to_table", "pg_listening_channels",
}  # fmt: skip


def one_row(engine: str, sql: str) -> bool:
    """Whether the statement always yields exactly one row: a SELECT whose select list
    aggregates, without GROUP BY, HAVING, LIMIT or OFFSET (which may leave no row), not a
    set operation, and (PostgreSQL) without a set-returning function beside its
    aggregates. False when unsure: the :one stays `Row | None`."""
    try:
        if engine == "postgresql":
            return _pg_one_row(parse_sql(sql)[0].stmt)
        return _sqlglot_one_row(sql, "sqlite" if engine == "sqlite" else "mysql")
    except Exception:
        return False


def _pg_one_row(stmt: Any) -> bool:
    if not isinstance(stmt, ast.SelectStmt) or stmt.op != SetOperation.SETOP_NONE:
        return False
    clauses = (stmt.valuesLists, stmt.groupClause, stmt.havingClause, stmt.limitCount)
    if any(clauses) or stmt.limitOffset or stmt.lockingClause:
        return False
    calls = [c for t in stmt.targetList or () for c in _pg_calls(t.val)]
    names = [str((c.funcname or ())[-1].sval).lower() for c in calls]
    aggregates = {"count", *NULLABLE_AGGREGATES}
    aggregated = any(n in aggregates and c.over is None for n, c in zip(names, calls, strict=True))
    return aggregated and not SET_RETURNING & set(names)


def _pg_calls(node: Any) -> Iterator[ast.FuncCall]:
    """The function calls in an expression, not those of a subquery."""
    if isinstance(node, list | tuple):
        for item in node:
            yield from _pg_calls(item)
    elif isinstance(node, ast.Node) and not isinstance(node, ast.SubLink | ast.SelectStmt):
        if isinstance(node, ast.FuncCall):
            yield node
        for attribute in node:
            yield from _pg_calls(getattr(node, attribute))


def _sqlglot_one_row(sql: str, dialect: str) -> bool:
    """MySQL's and SQLite's: no set-returning function in a select list there."""
    import sqlglot  # loads only for MySQL and SQLite, as in codegen/nullability.py
    from sqlglot import expressions as exp

    from .nullability_mysql import aggregates

    tree = sqlglot.parse_one(sql, read=dialect)
    if not isinstance(tree, exp.Select):
        return False
    if any(tree.args.get(k) for k in ("group", "having", "limit", "offset")):
        return False
    return any(aggregates(e) for e in tree.expressions)
