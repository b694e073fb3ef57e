"""Nullability of MySQL/MariaDB result columns by rule (sqlglot), as codegen/nullability.py
does for PostgreSQL: tables, CTEs and derived tables, the nullable side of outer joins."""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import expressions as exp

from .nullability_rules import Catalog, Rule, any_true, one_false


def mysql_rules(sql: str, catalog: Catalog, dialect: str = "mysql") -> list[Rule] | None:
    """The rules of a MySQL (or, read as `dialect="sqlite"`, SQLite) SELECT."""
    tree = sqlglot.parse_one(sql, read=dialect)
    if not isinstance(tree, exp.Select):
        return None
    return _mysql_select(tree, catalog, {})


Columns = dict[str, Rule]


def _mysql_select(tree: exp.Select, catalog: Catalog, outer_ctes: dict[str, Columns]) -> list[Rule]:
    """Like the PostgreSQL rules: columns resolved through tables, CTEs, derived tables and
    the nullable side of outer joins."""
    ctes = dict(outer_ctes)
    with_clause = tree.args.get("with") or tree.args.get("with_")
    for cte in with_clause.expressions if with_clause is not None else ():
        if isinstance(cte.this, exp.Select):
            ctes[cte.alias_or_name] = _mysql_columns(cte.this, catalog, ctes)
    relations: dict[str, Columns] = {}
    nullable: set[str] = set()

    def add(source: exp.Expression, *, is_nullable: bool) -> None:
        found = _mysql_relation(source, catalog, ctes)
        if found is not None:
            relations[found[0]] = found[1]
            if is_nullable:
                nullable.add(found[0])

    source = tree.args.get("from") or tree.args.get("from_")
    if source is not None:
        add(source.this, is_nullable=False)
    for join in tree.args.get("joins") or ():
        side = join.args.get("side", "").upper()
        if side == "RIGHT":
            nullable.update(relations)
        add(join.this, is_nullable=side == "LEFT")

    # an aggregate query without GROUP BY gives one row even when no row matches: its bare
    # columns of this query's relations are NULL then (MariaDB and SQLite allow them); a
    # column it cannot resolve keeps no opinion
    aggregated = tree.args.get("group") is None and any(_aggregates(e) for e in tree.expressions)

    def rule(alias: str, name: str) -> Rule:
        return True if aggregated or alias in nullable else relations[alias][name]

    def column(node: exp.Column) -> Rule:
        candidates = [node.table] if node.table else list(relations)
        found = [a for a in candidates if node.name in relations.get(a, {})]
        return rule(found[0], node.name) if len(found) == 1 else None

    rules: list[Rule] = []
    for e in tree.expressions:
        star_of = e.table if isinstance(e, exp.Column) and isinstance(e.this, exp.Star) else None
        if isinstance(e, exp.Star) or star_of is not None:
            for alias in [star_of] if star_of else list(relations):
                rules += [rule(alias, name) for name in relations.get(alias or "", {})]
        else:
            rules.append(_mysql_expr(e.this if isinstance(e, exp.Alias) else e, column))
    return rules


def _aggregates(node: exp.Expression) -> bool:
    """Whether `node` holds an aggregate of this SELECT (not one inside a subquery, nor a
    window function: those keep a row per row)."""
    if isinstance(node, exp.AggFunc) or _is_total(node):
        return True
    if isinstance(node, exp.Subquery | exp.Select | exp.Window):
        return False
    return any(_aggregates(child) for child in node.iter_expressions())


def _is_total(node: exp.Expression) -> bool:
    """SQLite's TOTAL, an aggregate sqlglot does not know."""
    return isinstance(node, exp.Anonymous) and node.name.upper() == "TOTAL"


def _mysql_columns(select: exp.Select, catalog: Catalog, ctes: dict[str, Columns]) -> Columns:
    names = [e.alias_or_name for e in select.expressions]
    return dict(zip(names, _mysql_select(select, catalog, ctes), strict=False))


def _mysql_relation(
    source: exp.Expression, catalog: Catalog, ctes: dict[str, Columns]
) -> tuple[str, Columns] | None:
    if isinstance(source, exp.Table):
        if not source.db and source.name in ctes:
            return source.alias_or_name, dict(ctes[source.name])
        table = catalog.get(source.name)
        if table is None:
            return None
        return source.alias_or_name, {c: not not_null for c, not_null in table.items()}
    if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Select):
        return source.alias_or_name, _mysql_columns(source.this, catalog, ctes)
    return None


def _mysql_expr(node: exp.Expression, column: Any) -> Rule:
    if isinstance(node, exp.Column):
        return column(node)  # type: ignore[no-any-return]
    if isinstance(node, exp.Count):
        return False
    if _is_total(node):
        return False  # SQLite's TOTAL: 0.0 over no rows
    if isinstance(node, exp.AggFunc):
        return True
    if isinstance(node, exp.Coalesce):  # COALESCE, IFNULL
        return one_false(_mysql_expr(a, column) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Nullif):
        return True
    if isinstance(node, exp.Paren | exp.Cast):
        return _mysql_expr(node.this, column)
    if isinstance(node, exp.Literal | exp.Boolean | exp.CurrentTimestamp | exp.CurrentDate):
        return False
    if isinstance(node, exp.Null):
        return True
    if isinstance(node, exp.Subquery):
        return True
    if isinstance(node, exp.Is):
        return False
    if isinstance(node, exp.Case | exp.If):
        default = node.args.get("default") if isinstance(node, exp.Case) else node.args.get("false")
        if default is None:
            return True
        branches = [i.args.get("true") for i in node.args.get("ifs") or ()]
        if isinstance(node, exp.If):
            branches = [node.args.get("true")]
        return any_true(_mysql_expr(b, column) for b in [*branches, default] if b is not None)
    if isinstance(node, exp.Func | exp.Binary | exp.Unary):
        return any_true(_mysql_expr(arg, column) for arg in node.iter_expressions())
    return None
