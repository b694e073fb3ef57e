"""Nullability of result columns by rule, where sqlc's inference is wrong.

sqlc marks min/max/avg/sum NOT NULL, but on an empty set they return NULL. We parse the
query (pglast for PostgreSQL, sqlglot for MySQL) and decide per select-list entry:
True = may be NULL, False = never NULL, None = no opinion (keep sqlc's answer).
"""

from __future__ import annotations

from typing import Any

import sqlglot
from pglast import ast, parse_sql
from sqlglot import expressions as exp

NULLABLE_AGGREGATES = {
    "min", "max", "avg", "sum", "array_agg", "string_agg", "json_agg", "jsonb_agg",
    "json_object_agg", "jsonb_object_agg", "bool_and", "bool_or", "every", "bit_and",
    "bit_or", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
    "group_concat",
}  # fmt: skip
NOT_NULL_FUNCS = {"count", "now", "gen_random_uuid", "coalesce_not_null"}


def target_rules(engine: str, sql: str) -> list[bool | None] | None:
    """One rule per select-list entry of the outermost SELECT/RETURNING, None if unparsable."""
    try:
        return _pg_rules(sql) if engine == "postgresql" else _mysql_rules(sql)
    except Exception:
        return None


def _pg_rules(sql: str) -> list[bool | None] | None:
    stmt = parse_sql(sql)[0].stmt
    if isinstance(stmt, ast.SelectStmt):
        targets = stmt.targetList
    else:  # INSERT/UPDATE/DELETE ... RETURNING (an UPDATE's targetList is its SET clause)
        returning = getattr(stmt, "returningClause", None)
        targets = returning.exprs if returning is not None else None
    if targets is None:
        return None
    return [_pg_expr(t.val) for t in targets]


def _pg_expr(node: Any) -> bool | None:
    if isinstance(node, ast.FuncCall):
        name = (node.funcname or ())[-1].sval.lower()
        if node.over is not None:
            return True if name in NULLABLE_AGGREGATES else None
        if name in NULLABLE_AGGREGATES:
            return True
        if name in NOT_NULL_FUNCS:
            return False
        return _strict([_pg_expr(arg) for arg in node.args or ()])
    if isinstance(node, ast.CoalesceExpr):
        rules = [_pg_expr(arg) for arg in node.args or ()]
        return False if any(r is False for r in rules) else None
    if isinstance(node, ast.TypeCast):
        return _pg_expr(node.arg)
    if isinstance(node, ast.A_Const):
        return bool(node.isnull)
    if isinstance(node, ast.SubLink) and node.subLinkType == 4:  # EXPR_SUBLINK: scalar subquery
        return True
    if isinstance(node, ast.A_Expr):  # operators: NULL in, NULL out
        return _strict([_pg_expr(side) for side in (node.lexpr, node.rexpr) if side is not None])
    return None


def _strict(args: list[bool | None]) -> bool | None:
    """A strict function or operator (most are) is NULL when an argument may be NULL."""
    return True if any(arg is True for arg in args) else None


def _mysql_rules(sql: str) -> list[bool | None] | None:
    tree = sqlglot.parse_one(sql, read="mysql")
    if not isinstance(tree, exp.Select):
        return None
    return [_mysql_expr(e.this if isinstance(e, exp.Alias) else e) for e in tree.expressions]


def _mysql_expr(node: exp.Expression) -> bool | None:
    if isinstance(node, exp.Count):
        return False
    if isinstance(node, exp.AggFunc):
        return True
    if isinstance(node, exp.Coalesce):
        rules = [_mysql_expr(a) for a in [node.this, *node.expressions]]
        return False if any(r is False for r in rules) else None
    if isinstance(node, exp.Cast):
        return _mysql_expr(node.this)
    if isinstance(node, exp.Literal):
        return False
    if isinstance(node, exp.Null):
        return True
    if isinstance(node, exp.Subquery):
        return True
    if isinstance(node, exp.Func | exp.Binary):
        return _strict([_mysql_expr(arg) for arg in node.iter_expressions()])
    return None
