"""The SQL of a `fixup: sort` variant, written on the statement's parse tree (pglast for
PostgreSQL, sqlglot for MySQL and SQLite): its ORDER BY and, for keyset paging, its
condition on the previous page's last (key, tie-breaker), ANDed to the query's own WHERE,
the statement rendered again in the engine's placeholders. And the columns a schema
declares unique on their own, read from its parsed DDL (a keyset tie-breaker must be one).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from pglast import ast, parse_sql
from pglast.enums import AlterTableType, BoolExprType, ConstrType, SetOperation
from pglast.stream import IndentedStream
from sqlglot import TokenType, exp
from sqlglot.errors import SqlglotError

from .errors import CodegenError

AFTER_KEY, AFTER_TIE = "after_key", "after_tie"  # the keyset parameters' names in every variant
_LABEL = "fixup_"  # a placeholder's label while sqlglot rewrites: fixup_<n> (the query's nth)
KEYSET_REFUSED = ("GROUP BY", "HAVING", "WINDOW", "UNION, INTERSECT or EXCEPT")


@dataclass(frozen=True, slots=True)
class Order:
    """One variant's order: its key and tie-breaker as written, direction, keyset or not,
    whether the key can be NULL."""

    key: str
    tie: str | None
    direction: str  # asc or desc
    keyset: bool
    nullable: bool

    def items(self) -> str:
        names = [self.key] if self.tie is None else [self.key, self.tie]
        return ", ".join(f"{name} {self.direction.upper()}" for name in names)


def pg_keyset(order: Order, k: str, t: str) -> str:
    """The rows after (k, t) in PostgreSQL's order: NULLs last ascending, first descending.
    The row comparison comes first, so the server types k and t from the columns before it
    meets `t IS NULL` (which alone it cannot type)."""
    key, tie, down = order.key, order.tie, order.direction == "desc"
    op = "<" if down else ">"
    row = f"({key}, {tie}) {op} ({k}, {t})"
    if not order.nullable:
        return f"({row} OR {t} IS NULL)"
    if down:  # NULLs came first: after a NULL, the rest of the NULLs, then every value
        rest = f"{k} IS NULL AND ({key} IS NOT NULL OR {tie} < {t})"
    else:  # NULLs come last: after a value, every NULL; after a NULL, the NULLs after it
        rest = f"{key} IS NULL AND ({k} IS NOT NULL OR {tie} > {t})"
    return f"({row} OR ({rest}) OR {t} IS NULL)"


def nulls_first_keyset(order: Order, k: str, t: str) -> str:
    """The rows after (k, t) where NULLs sort first ascending, last descending (MariaDB,
    SQLite). Spelled out (`k > ? OR (k = ? AND id > ?)`, which MariaDB's range optimizer
    reads; its row-value comparison it does not), NULL-aware for every key so that every
    variant binds the same parameters in the same order."""
    key, tie, down = order.key, order.tie, order.direction == "desc"
    op = "<" if down else ">"
    if down:  # NULLs last: after a value, the NULLs; after a NULL, the NULLs after it
        nulls = f"({key} IS NULL AND ({k} IS NOT NULL OR {tie} < {t}))"
    else:  # NULLs first: after a NULL, the NULLs after it and then every value
        nulls = f"({k} IS NULL AND ({key} IS NOT NULL OR {tie} > {t}))"
    return f"({t} IS NULL OR {key} {op} {k} OR ({key} = {k} AND {tie} {op} {t}) OR {nulls})"


def _refuse(where: str, keyset: bool, ordered: bool, found: Mapping[str, object]) -> None:
    if ordered:
        raise CodegenError(
            f"{where}: a 'fixup: sort' query has no ORDER BY of its own (the plugin writes it)"
        )
    for word in KEYSET_REFUSED:
        if keyset and found[word]:
            raise CodegenError(f"{where}: keyset paging cannot follow a query with {word}")


def _pg(sql: str, where: str) -> ast.SelectStmt:
    try:
        stmt = parse_sql(sql)[0].stmt
    except Exception as exc:  # pglast's ParseError
        raise CodegenError(f"{where}: cannot read it to sort it: {exc}") from exc
    if not isinstance(stmt, ast.SelectStmt):
        raise CodegenError(f"{where}: a 'fixup: sort' query is a SELECT")
    return stmt


def postgres(text: str, order: Order, after: tuple[int, int], where: str) -> str:
    """The variant of PostgreSQL `text`; the keyset parameters are $k and $t of `after`."""
    stmt = _pg(text, where)
    found = {
        "GROUP BY": stmt.groupClause,
        "HAVING": stmt.havingClause,
        "WINDOW": stmt.windowClause,
        "UNION, INTERSECT or EXCEPT": stmt.op != SetOperation.SETOP_NONE,
    }
    _refuse(where, order.keyset, bool(stmt.sortClause), found)
    stmt.sortClause = _pg(f"SELECT 1 ORDER BY {order.items()}", where).sortClause
    if order.keyset:
        cond = _pg(f"SELECT 1 WHERE {pg_keyset(order, *(f'${n}' for n in after))}", where)
        own, more = stmt.whereClause, cond.whereClause
        both = ast.BoolExpr(BoolExprType.AND_EXPR, (own, more))
        stmt.whereClause = more if own is None else both
    return str(IndentedStream(compact_lists_margin=80)(stmt))


def positional(
    text: str, engine: str, order: Order, slices: dict[int, str], where: str
) -> tuple[exp.Query, list[int | str]]:
    """The variant of MySQL or SQLite `text` (bare `?`, the nth binding the query's nth
    parameter; `slices`: which of them are sqlc.slice, by name) and what each placeholder
    of the result binds in text order: the query's nth parameter or AFTER_KEY/AFTER_TIE.
    The tree's placeholders are labelled (sqlglot keeps no slice marker and walks its tree
    in another order than its text's)."""
    try:
        tree = sqlglot.parse_one(text, read=engine)
    except SqlglotError as exc:
        raise CodegenError(f"{where}: cannot read it to sort it: {exc}") from exc
    if not isinstance(tree, exp.Query):
        raise CodegenError(f"{where}: a 'fixup: sort' query is a SELECT")
    found = {
        "GROUP BY": tree.args.get("group"),
        "HAVING": tree.args.get("having"),
        "WINDOW": tree.args.get("windows"),
        "UNION, INTERSECT or EXCEPT": isinstance(tree, exp.SetOperation),
    }
    _refuse(where, order.keyset, bool(tree.args.get("order")), found)
    nodes = list(tree.find_all(exp.Placeholder))
    for i, node in enumerate(nodes):
        node.set("this", f"{_LABEL}{i}")
    for n, label in enumerate(_labels(tree, engine)):  # the tree's order -> the text's
        nodes[int(label.removeprefix(_LABEL))].set("this", f"{_LABEL}{n}")
    tree = tree.order_by(order.items(), dialect=engine)
    if order.keyset:
        cond = nulls_first_keyset(order, f":{_LABEL}{AFTER_KEY}", f":{_LABEL}{AFTER_TIE}")
        tree = tree.where(cond, dialect=engine)
    binds: list[int | str] = []
    for label in _labels(tree, engine):
        name = label.removeprefix(_LABEL)
        binds.append(int(name) if name.isdigit() else name)
    return tree, binds


def render(
    tree: exp.Query, engine: str, slices: dict[int, str], numbers: dict[str, int] | None
) -> str:
    """A `positional` tree as SQL: bare `?` (MySQL), or `?NNN` by each label's `numbers`
    (SQLite); a slice's with sqlc's marker (`/*SLICE:ids*/?`, runtime.expand_slices)."""
    for node in list(tree.find_all(exp.Placeholder)):
        label = node.name.removeprefix(_LABEL)
        mark = "" if numbers is None else str(numbers[label])
        sliced = label.isdigit() and int(label) in slices
        marker = f"/*SLICE:{slices[int(label)]}*/" if sliced else ""
        node.replace(exp.var(f"{marker}?{mark}"))
    return tree.sql(dialect=engine, pretty=True)


def _labels(tree: exp.Query, engine: str) -> list[str]:
    """The placeholders' labels in the order the rendered text holds them."""
    tokens = sqlglot.tokenize(tree.sql(dialect=engine), read=engine)
    return [
        token.text
        for colon, token in itertools.pairwise(tokens)
        if colon.token_type == TokenType.COLON and token.text.startswith(_LABEL)
    ]


def unique_columns(engine: str, schema_texts: list[str]) -> set[tuple[str, str]]:
    """(table, column) pairs the schema declares unique on their own: a column's PRIMARY
    KEY or UNIQUE, a one-column PRIMARY KEY (...) / UNIQUE (...), a whole-table unique index,
    read from the parsed DDL."""
    found: set[tuple[str, str]] = set()
    for text in schema_texts:
        if engine == "postgresql":
            found |= _pg_unique(text)
        else:
            found |= _glot_unique(text, engine)
    return {(table.lower(), column.lower()) for table, column in found}


def _pg_unique(text: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for raw in parse_sql(text):
        stmt = raw.stmt
        table = _relname(stmt)
        if isinstance(stmt, ast.CreateStmt):
            for item in stmt.tableElts or ():
                if isinstance(item, ast.ColumnDef):
                    if any(_one(c) for c in item.constraints or ()):
                        found.add((table, str(item.colname)))
                elif _one(item):
                    found |= _pg_keys(table, item)
        elif isinstance(stmt, ast.IndexStmt) and stmt.unique and stmt.whereClause is None:
            params = stmt.indexParams or ()
            if len(params) == 1 and params[0].name:
                found.add((table, str(params[0].name)))
        elif isinstance(stmt, ast.AlterTableStmt):
            for cmd in stmt.cmds or ():
                if cmd.subtype == AlterTableType.AT_AddConstraint and _one(cmd.def_):
                    found |= _pg_keys(table, cmd.def_)
    return found


def _relname(stmt: ast.Node | None) -> str:
    relation = getattr(stmt, "relation", None)
    return str(relation.relname) if isinstance(relation, ast.RangeVar) else ""


def _one(node: ast.Node | None) -> bool:
    """A PRIMARY KEY or UNIQUE constraint."""
    unique = (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE)
    return isinstance(node, ast.Constraint) and node.contype in unique


def _pg_keys(table: str, constraint: ast.Node | None) -> set[tuple[str, str]]:
    keys: tuple[ast.String, ...] = getattr(constraint, "keys", None) or ()
    return {(table, str(keys[0].sval))} if len(keys) == 1 else set()


def _glot_unique(text: str, engine: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for stmt in sqlglot.parse(text, read=engine):
        if isinstance(stmt, exp.Create) and stmt.kind == "INDEX" and stmt.args.get("unique"):
            params = stmt.this.args.get("params")
            columns = (params.args.get("columns") or []) if params else []
            if len(columns) == 1 and not params.args.get("where"):
                found.add((stmt.this.args["table"].name, columns[0].this.name))
            continue
        if not isinstance(stmt, exp.Create | exp.Alter):
            continue
        table = stmt.this.this.name if isinstance(stmt.this, exp.Schema) else stmt.this.name
        for node in stmt.find_all(
            exp.PrimaryKeyColumnConstraint, exp.UniqueColumnConstraint, exp.PrimaryKey
        ):
            inner = node.this if isinstance(node, exp.UniqueColumnConstraint) else None
            listed = node.expressions if isinstance(node, exp.PrimaryKey) else []
            if isinstance(inner, exp.Schema):
                listed = inner.expressions
            if listed or inner is not None:
                if len(listed) == 1:
                    found.add((table, listed[0].name))
            elif (column := node.find_ancestor(exp.ColumnDef)) is not None:
                found.add((table, column.name))
    return found
