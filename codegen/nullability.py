"""Nullability of result columns by rule, where sqlc's inference is wrong.

sqlc calls nearly every function, cast and operator NOT NULL and min/max/avg/sum too,
though they return NULL on NULL input or on an empty set. We parse the query (pglast for
PostgreSQL, sqlglot for MySQL), resolve column references through the FROM clause (tables
of the catalog, CTEs, derived tables, the nullable side of outer joins) and decide per
result column: True = may be NULL, False = never NULL, None = no opinion (keep sqlc's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import (
    A_Expr_Kind,
    BoolExprType,
    JoinType,
    NullTestType,
    SetOperation,
    SubLinkType,
)

from .nullability_rules import Catalog, Rule, any_true, one_false

__all__ = ["Catalog", "Rule", "target_rules"]


NULLABLE_AGGREGATES = {
    "min", "max", "avg", "sum", "array_agg", "string_agg", "json_agg", "jsonb_agg",
    "json_object_agg", "jsonb_object_agg", "bool_and", "bool_or", "every", "bit_and",
    "bit_or", "bit_xor", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop",
    "var_samp", "group_concat", "xmlagg", "mode", "percentile_cont", "percentile_disc",
    "corr", "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "any_value",
}  # fmt: skip
# NULL although every argument is set: an empty array, a missing key, a first row.
NULLABLE_FUNCS = {
    "nullif", "lag", "lead", "first_value", "last_value", "nth_value", "array_length",
    "array_upper", "array_lower", "array_ndims", "array_position", "regexp_match",
    "json_extract_path", "json_extract_path_text", "jsonb_extract_path",
    "jsonb_extract_path_text", "jsonb_path_query_first", "json_value", "json_query",
    "to_regclass", "to_regtype", "current_setting", "substring", "jsonb_array_length",
}  # fmt: skip
# Never NULL, whatever the arguments.
NOT_NULL_FUNCS = {
    "count", "now", "gen_random_uuid", "concat", "random", "row_number", "rank",
    "dense_rank", "percent_rank", "cume_dist", "ntile", "clock_timestamp",
    "statement_timestamp", "transaction_timestamp", "timeofday", "pg_backend_pid",
    "version", "uuid_generate_v4", "num_nulls", "num_nonnulls",
}  # fmt: skip
JSON_OPERATORS = {"->", "->>", "#>", "#>>"}
# NULL only over no row (or only NULL inputs): in a GROUP BY group there is a row
EMPTY_SET_NULL = {
    "min", "max", "sum", "avg", "bool_and", "bool_or", "every", "bit_and", "bit_or",
    "bit_xor", "string_agg",
}  # fmt: skip
NEVER_NULL_IN_GROUP = {"array_agg", "json_agg", "jsonb_agg"}  # NULL inputs become elements
DEFAULT_FRAME = 1058  # RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW: holds the row


def target_rules(engine: str, sql: str, catalog: Catalog | None = None) -> list[Rule] | None:
    """One rule per result column of the outermost SELECT/RETURNING, None if unparsable."""
    try:
        if engine == "postgresql":
            return _pg_statement(parse_sql(sql)[0].stmt, Scope(catalog or {}, {}))
        from .nullability_mysql import mysql_rules  # sqlglot loads only for MySQL, SQLite

        return mysql_rules(sql, catalog or {}, dialect="sqlite" if engine == "sqlite" else "mysql")
    except Exception:
        return None


# --- PostgreSQL ---------------------------------------------------------------------------


@dataclass
class Relation:
    columns: dict[str, Rule]
    nullable: bool = False  # the nullable side of an outer join: every column may be NULL
    narrowed: set[str] = field(default_factory=set)  # `WHERE c IS NOT NULL` (AND-ed)

    def rule(self, column: str) -> Rule:
        if column not in self.columns:
            raise KeyError(column)
        if column in self.narrowed:
            return False
        return True if self.nullable else self.columns[column]


@dataclass
class Scope:
    catalog: Catalog
    ctes: dict[str, Relation]
    relations: dict[str, Relation] = field(default_factory=dict)
    parent: Scope | None = None
    grouped: bool = False  # the SELECT has a GROUP BY: each group holds a row

    def child(self) -> Scope:
        return Scope(self.catalog, dict(self.ctes), {}, self)

    def own(self, names: list[str]) -> Relation | None:
        """The relation of this scope (not an outer one) that a column reference names."""
        if len(names) >= 2:
            return self.relations.get(names[-2])
        found = [r for r in self.relations.values() if names[0] in r.columns]
        return found[0] if len(found) == 1 else None

    def lookup(self, names: list[str]) -> Rule:
        scope: Scope | None = self
        while scope is not None:
            relation = scope.own(names)
            if relation is not None:
                return relation.rule(names[-1])
            scope = scope.parent
        return None


def _pg_statement(stmt: Any, scope: Scope) -> list[Rule] | None:
    if isinstance(stmt, ast.SelectStmt):
        return _pg_select(stmt, scope)
    # INSERT/UPDATE/DELETE ... RETURNING (an UPDATE's targetList is its SET clause)
    targets = _pg_returning(stmt)
    if targets is None:
        return None
    inner = scope.child()
    _pg_with(getattr(stmt, "withClause", None), inner)
    _pg_from_item(stmt.relation, inner, nullable=False)
    for item in getattr(stmt, "fromClause", None) or getattr(stmt, "usingClause", None) or ():
        _pg_from_item(item, inner, nullable=False)
    return [_pg_expr(t.val, inner) for t in targets]


def _pg_with(with_clause: Any, scope: Scope) -> None:
    for cte in getattr(with_clause, "ctes", None) or ():
        query = cte.ctequery
        rules = _pg_statement(query, scope) or []
        names = [n.sval for n in cte.aliascolnames or ()] or _pg_names(query)
        scope.ctes[cte.ctename] = Relation(dict(zip(names, rules, strict=False)))


def _pg_names(stmt: Any) -> list[str]:
    while isinstance(stmt, ast.SelectStmt) and stmt.op != SetOperation.SETOP_NONE:
        stmt = stmt.larg
    targets = getattr(stmt, "targetList", None) or _pg_returning(stmt)
    return [_pg_target_name(t) for t in targets or ()]


def _pg_returning(stmt: Any) -> Any:
    """An INSERT's, UPDATE's or DELETE's RETURNING list (None without one)."""
    return getattr(getattr(stmt, "returningClause", None), "exprs", None)


def _pg_target_name(target: Any) -> str:
    if target.name:
        return str(target.name)
    val: Any = target.val
    fields: Any = getattr(val, "fields", None) or getattr(getattr(val, "arg", None), "fields", ())
    if isinstance(val, ast.FuncCall):
        return str((val.funcname or ())[-1].sval)
    if fields and isinstance(val, ast.ColumnRef | ast.TypeCast):
        return str(getattr(fields[-1], "sval", "?column?"))
    return "?column?"


def _pg_select(stmt: Any, outer: Scope) -> list[Rule] | None:
    scope = outer.child()
    _pg_with(stmt.withClause, scope)
    if stmt.op != SetOperation.SETOP_NONE:
        left = _pg_select(stmt.larg, scope)
        right = _pg_select(stmt.rarg, scope)
        if left is None or right is None:
            return left if stmt.op == SetOperation.SETOP_EXCEPT else None
        if stmt.op == SetOperation.SETOP_EXCEPT:
            return left
        return [any_true(pair) for pair in zip(left, right, strict=False)]
    if stmt.valuesLists:
        rows = [[_pg_expr(v, scope) for v in row] for row in stmt.valuesLists]
        return [any_true(column) for column in zip(*rows, strict=False)]
    for item in stmt.fromClause or ():
        _pg_from_item(item, scope, nullable=False)
    _pg_narrow(stmt.whereClause, scope)
    groups = stmt.groupClause or ()
    scope.grouped = bool(groups) and not any(isinstance(g, ast.GroupingSet) for g in groups)
    return [_pg_expr(t.val, scope) for t in stmt.targetList or ()]


def _pg_narrow(where: Any, scope: Scope) -> None:
    """`WHERE c IS NOT NULL [AND ...]`: c is never NULL in the result (an OR-ed test
    narrows nothing)."""
    if isinstance(where, ast.BoolExpr) and where.boolop == BoolExprType.AND_EXPR:
        for arg in where.args or ():
            _pg_narrow(arg, scope)
    elif (
        isinstance(where, ast.NullTest)
        and where.nulltesttype == NullTestType.IS_NOT_NULL
        and isinstance(where.arg, ast.ColumnRef)
    ):
        names = [getattr(f, "sval", None) for f in where.arg.fields or ()]
        if all(isinstance(n, str) for n in names):
            relation = scope.own([str(n) for n in names])
            if relation is not None and names[-1] in relation.columns:
                relation.narrowed.add(str(names[-1]))


def _pg_from_item(item: Any, scope: Scope, *, nullable: bool) -> None:
    if isinstance(item, ast.JoinExpr):
        kind = item.jointype
        _pg_from_item(
            item.larg, scope, nullable=nullable or kind in (JoinType.JOIN_RIGHT, JoinType.JOIN_FULL)
        )
        _pg_from_item(
            item.rarg, scope, nullable=nullable or kind in (JoinType.JOIN_LEFT, JoinType.JOIN_FULL)
        )
        return
    alias = getattr(item, "alias", None)
    if isinstance(item, ast.RangeVar):
        name = str(item.relname)
        relation = None
        if item.schemaname is None and name in scope.ctes:
            relation = Relation(dict(scope.ctes[name].columns))
        else:
            key = name if item.schemaname in (None, "public") else f"{item.schemaname}.{name}"
            table = scope.catalog.get(key)
            if table is not None:
                relation = Relation({c: not not_null for c, not_null in table.items()})
        if relation is not None:
            relation.nullable = nullable
            scope.relations[str(alias.aliasname if alias else name)] = relation
        return
    if isinstance(item, ast.RangeSubselect) and alias is not None:
        rules = _pg_statement(item.subquery, scope) or []
        names = [n.sval for n in alias.colnames or ()] or _pg_names(item.subquery)
        scope.relations[alias.aliasname] = Relation(dict(zip(names, rules, strict=False)), nullable)


def _pg_func(node: ast.FuncCall, scope: Scope) -> Rule:
    name = str((node.funcname or ())[-1].sval).lower()
    args = [_pg_expr(arg, scope) for arg in node.args or ()]
    if name in NOT_NULL_FUNCS:
        return False
    plain_aggregate = node.over is None and node.agg_filter is None
    if plain_aggregate and scope.grouped and name in NEVER_NULL_IN_GROUP:
        return False
    if plain_aggregate and scope.grouped and name in EMPTY_SET_NULL:
        return True if not args else any_true(args[:1])
    window = node.over
    default_frame = (
        window is not None
        and window.name is None
        and window.refname is None
        and window.frameOptions == DEFAULT_FRAME
    )
    if name in ("first_value", "last_value") and default_frame and args:
        return any_true(args[:1])  # the frame holds the current row
    if name in ("lead", "lag") and window is not None and len(args) == 3:
        return any_true([args[0], args[2]])  # past the edge: the default
    if name == "format":  # a NULL argument is formatted as ''; only the format string counts
        return args[0] if args else None
    if name in NULLABLE_AGGREGATES or name in NULLABLE_FUNCS:
        return True
    if name == "concat_ws":  # NULL arguments are skipped, a NULL separator is not
        return args[0] if args else None
    return any_true(args) if args else None  # a window function too: as strict as its arguments


def _pg_expr(node: Any, scope: Scope) -> Rule:
    if isinstance(node, ast.ColumnRef):
        names = [getattr(f, "sval", None) for f in node.fields or ()]
        if any(n is None for n in names):
            return None
        try:
            return scope.lookup([str(n) for n in names])
        except KeyError:
            return None
    if isinstance(node, ast.A_Const):
        return bool(node.isnull)
    if isinstance(node, ast.FuncCall):
        return _pg_func(node, scope)
    if isinstance(node, ast.TypeCast | ast.CollateClause):
        return _pg_expr(node.arg, scope)
    if isinstance(node, ast.CoalesceExpr | ast.MinMaxExpr):  # PostgreSQL skips NULLs in both
        return one_false(_pg_expr(arg, scope) for arg in node.args or ())
    if isinstance(node, ast.NullTest | ast.BooleanTest):
        return False
    if isinstance(node, ast.SQLValueFunction | ast.A_ArrayExpr | ast.RowExpr):
        return False
    if isinstance(node, ast.A_Indirection):  # a[1], (x).f: out of range or NULL
        return True
    if isinstance(node, ast.CaseExpr):
        branches = [w.result for w in node.args or ()]
        if node.defresult is None:
            return True
        return any_true(_pg_expr(b, scope) for b in [*branches, node.defresult])
    if isinstance(node, ast.SubLink):
        kind = node.subLinkType
        if kind in (SubLinkType.EXISTS_SUBLINK, SubLinkType.ARRAY_SUBLINK):
            return False
        if kind == SubLinkType.EXPR_SUBLINK:  # no row: NULL
            return _pg_one_row_value(node.subselect, scope)
        left = _pg_expr(node.testexpr, scope)
        right = _pg_select(node.subselect, scope) if kind == SubLinkType.ANY_SUBLINK else None
        if left is True or not right or len(right) != 1:
            return True if left is True else None
        return any_true([left, right[0]])  # `x IN (SELECT y ...)`: NULL when x or a y is
    if isinstance(node, ast.BoolExpr):
        return any_true(_pg_expr(arg, scope) for arg in node.args or ())
    if isinstance(node, ast.A_Expr):
        return _pg_operator(node, scope)
    return None


def _pg_one_row_value(select: Any, scope: Scope) -> Rule:
    """A scalar subquery is NULL when it finds no row, except an ungrouped aggregate
    (`SELECT count(*) FROM t`), which always gives one row: then its value decides."""
    targets: Any = getattr(select, "targetList", None) or ()
    plain = isinstance(select, ast.SelectStmt) and select.op == SetOperation.SETOP_NONE
    if not plain or len(targets) != 1 or not isinstance(targets[0].val, ast.FuncCall):
        return True
    if select.groupClause or select.havingClause or select.limitCount or select.limitOffset:
        return True
    call: Any = targets[0].val
    if call.over is not None or call.funcname[-1].sval.lower() not in {
        "count",
        *NULLABLE_AGGREGATES,
    }:
        return True
    rules = _pg_select(select, scope)
    return rules[0] if rules else True


def _pg_operator(node: ast.A_Expr, scope: Scope) -> Rule:
    kind = node.kind
    if kind == A_Expr_Kind.AEXPR_NULLIF:
        return True
    if kind in (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT):
        return False
    names = [getattr(n, "sval", "") for n in node.name or ()]
    if kind == A_Expr_Kind.AEXPR_OP and names and names[-1] in JSON_OPERATORS:
        return True
    sides: list[Any] = [node.lexpr]
    if isinstance(node.rexpr, list | tuple):
        sides += list(node.rexpr)
    else:
        sides.append(node.rexpr)
    rules = [_pg_expr(side, scope) for side in sides if side is not None]
    if kind in (A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_OP_ALL, A_Expr_Kind.AEXPR_IN):
        # an array or list holding NULL makes the answer NULL: decided by the left side only
        left = rules[0] if rules else None
        return True if left is True or any(r is True for r in rules) else None
    return any_true(rules)
