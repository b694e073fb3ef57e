"""Nullability of MySQL/MariaDB result columns by rule (sqlglot), as codegen/nullability.py
does for PostgreSQL: tables, CTEs and derived tables, the nullable side of outer joins.
Read as `dialect="sqlite"`, functions and operators follow SQLite's rules
(codegen/nullability_sqlite.py)."""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import expressions as exp

from .nullability_rules import Catalog, Rule, any_true, one_false
from .nullability_sqlite import number, sqlite_decides, sqlite_expr

Columns = dict[str, Rule]
Walk = Callable[[exp.Expression], Rule]
# in a GROUP BY group there is a row: these are set when their argument is (on MySQL)
SET_IN_GROUP = (exp.Min, exp.Max, exp.Sum, exp.Avg, exp.GroupConcat)


def mysql_rules(sql: str, catalog: Catalog, dialect: str = "mysql") -> list[Rule] | None:
    """The rules of a MySQL (or, read as `dialect="sqlite"`, SQLite) SELECT, or of an
    INSERT/UPDATE/DELETE ... RETURNING."""
    tree = sqlglot.parse_one(sql, read=dialect)
    if isinstance(tree, exp.Insert | exp.Update | exp.Delete):
        return _returning(tree, catalog, dialect)
    if not isinstance(tree, exp.Query):
        return None
    return _query(tree, catalog, {}, dialect)


def _query(tree: exp.Query, catalog: Catalog, ctes: dict[str, Columns], dialect: str) -> list[Rule]:
    if isinstance(tree, exp.Select):
        return _mysql_select(tree, catalog, ctes, dialect)
    if isinstance(tree, exp.SetOperation):
        left = _query(tree.left, catalog, ctes, dialect)
        if not isinstance(tree, exp.Union):  # EXCEPT, INTERSECT: rows of the left side
            return left
        right = _query(tree.right, catalog, ctes, dialect)
        return [any_true(pair) for pair in zip(left, right, strict=False)]
    if isinstance(tree, exp.Subquery) and isinstance(tree.this, exp.Query):
        return _query(tree.this, catalog, ctes, dialect)
    return []


def _returning(tree: exp.Expression, catalog: Catalog, dialect: str) -> list[Rule] | None:
    """RETURNING reads the written row of the statement's table."""
    returning = tree.args.get("returning")
    table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    found = _mysql_relation(table, catalog, {}, dialect)
    if returning is None or found is None:
        return None
    alias, columns = found
    select = exp.Select(expressions=returning.expressions)
    return _rules(select, {alias: columns}, set(), dialect, grouped=False)


def _mysql_select(
    tree: exp.Select, catalog: Catalog, outer_ctes: dict[str, Columns], dialect: str
) -> list[Rule]:
    """Like the PostgreSQL rules: columns resolved through tables, CTEs, derived tables and
    the nullable side of outer joins."""
    ctes = dict(outer_ctes)
    with_clause = tree.args.get("with") or tree.args.get("with_")
    for cte in with_clause.expressions if with_clause is not None else ():
        if isinstance(cte.this, exp.Query):
            ctes[cte.alias_or_name] = _mysql_columns(cte.this, catalog, ctes, dialect)
    relations: dict[str, Columns] = {}
    nullable: set[str] = set()

    def add(source: exp.Expression, *, is_nullable: bool) -> None:
        found = _mysql_relation(source, catalog, ctes, dialect)
        if found is not None:
            relations[found[0]] = found[1]
            if is_nullable:
                nullable.add(found[0])

    source = tree.args.get("from") or tree.args.get("from_")
    if source is not None:
        add(source.this, is_nullable=False)
    for join in tree.args.get("joins") or ():
        side = join.args.get("side", "").upper()
        if side in ("RIGHT", "FULL"):
            nullable.update(relations)
        add(join.this, is_nullable=side in ("LEFT", "FULL"))

    # an aggregate query without GROUP BY gives one row even when no row matches: its bare
    # columns of this query's relations are NULL then (MariaDB and SQLite allow them); so
    # are the grouped columns of a WITH ROLLUP total; a column it cannot resolve keeps no
    # opinion
    group = tree.args.get("group")
    rollup = group is not None and bool(group.args.get("rollup") or group.args.get("cube"))
    aggregated = rollup or (group is None and any(aggregates(e) for e in tree.expressions))
    if aggregated:
        nullable.update(relations)
    grouped = group is not None and not rollup
    return _rules(tree, relations, nullable, dialect, grouped=grouped)


def _rules(
    tree: exp.Select,
    relations: dict[str, Columns],
    nullable: set[str],
    dialect: str,
    *,
    grouped: bool,
) -> list[Rule]:
    def rule(alias: str, name: str) -> Rule:
        return True if alias in nullable else relations[alias][name]

    def column(node: exp.Column) -> Rule:
        candidates = [node.table] if node.table else list(relations)
        found = [a for a in candidates if node.name in relations.get(a, {})]
        return rule(found[0], node.name) if len(found) == 1 else None

    def walk(node: exp.Expression) -> Rule:
        return _mysql_expr(node, column, walk, dialect, grouped)

    rules: list[Rule] = []
    for e in tree.expressions:
        star_of = e.table if isinstance(e, exp.Column) and isinstance(e.this, exp.Star) else None
        if isinstance(e, exp.Star) or star_of is not None:
            for alias in [star_of] if star_of else list(relations):
                rules += [rule(alias, name) for name in relations.get(alias or "", {})]
        else:
            rules.append(walk(e.this if isinstance(e, exp.Alias) else e))
    return rules


def aggregates(node: exp.Expression) -> bool:
    """Whether `node` holds an aggregate of this SELECT (not one inside a subquery, nor a
    window function: those keep a row per row)."""
    if isinstance(node, exp.AggFunc) or _is_total(node):
        return True
    if isinstance(node, exp.Subquery | exp.Select | exp.Window):
        return False
    return any(aggregates(child) for child in node.iter_expressions())


def _is_total(node: exp.Expression) -> bool:
    """SQLite's TOTAL, an aggregate sqlglot does not know."""
    return isinstance(node, exp.Anonymous) and node.name.upper() == "TOTAL"


def _mysql_columns(
    select: exp.Query, catalog: Catalog, ctes: dict[str, Columns], dialect: str
) -> Columns:
    names = [e.alias_or_name for e in select.selects]
    return dict(zip(names, _query(select, catalog, ctes, dialect), strict=False))


def _mysql_relation(
    source: exp.Expression, catalog: Catalog, ctes: dict[str, Columns], dialect: str
) -> tuple[str, Columns] | None:
    if isinstance(source, exp.Table):
        if not source.db and source.name in ctes:
            return source.alias_or_name, dict(ctes[source.name])
        table = catalog.get(source.name)
        if table is None:
            return None
        return source.alias_or_name, {c: not not_null for c, not_null in table.items()}
    if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Query):
        return source.alias_or_name, _mysql_columns(source.this, catalog, ctes, dialect)
    return None


def _mysql_expr(
    node: exp.Expression,
    column: Callable[[exp.Column], Rule],
    walk: Walk,
    dialect: str,
    grouped: bool,
) -> Rule:
    if isinstance(node, exp.Column):
        return column(node)
    if dialect == "sqlite" and sqlite_decides(node):
        return sqlite_expr(node, walk, grouped)
    if isinstance(node, exp.Count):
        return False
    if isinstance(node, exp.Filter):  # an aggregate over the rows a FILTER keeps: maybe none
        return not isinstance(node.this, exp.Count)
    if grouped and isinstance(node, SET_IN_GROUP):
        return walk(node.this)
    if isinstance(node, exp.AggFunc):
        return True
    if isinstance(node, exp.Div | exp.IntDiv | exp.Mod):  # MariaDB: x / 0, x DIV 0, x % 0,
        divisor = number(node.expression)  # MOD(x, 0) are NULL (a warning, not an error)
        if divisor is None or divisor == 0:
            return True
    if isinstance(node, exp.Coalesce):  # COALESCE, IFNULL
        return one_false(walk(a) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Nullif):
        return True
    if isinstance(node, exp.Paren | exp.Cast):
        return walk(node.this)
    if isinstance(node, exp.Literal | exp.Boolean | exp.CurrentTimestamp | exp.CurrentDate):
        return False
    if isinstance(node, exp.Null | exp.Subquery):
        return True
    if isinstance(node, exp.Is | exp.Exists):
        return False
    if isinstance(node, exp.Case | exp.If):
        default = node.args.get("default") if isinstance(node, exp.Case) else node.args.get("false")
        if default is None:
            return True
        branches = [i.args.get("true") for i in node.args.get("ifs") or ()]
        if isinstance(node, exp.If):
            branches = [node.args.get("true")]
        return any_true(walk(b) for b in [*branches, default] if b is not None)
    if isinstance(node, exp.Func | exp.Binary | exp.Unary | exp.Predicate):
        return any_true(walk(arg) for arg in node.iter_expressions())
    return None
