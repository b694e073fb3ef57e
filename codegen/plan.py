"""From one sqlc query to what the emitters need: typed params, result shape, row building."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .errors import CodegenError
from .naming import model_name, pascal, snake
from .nullability import target_rules
from .once import once_columns, split_once
from .one_row import one_row
from .pgcasts import cast_params
from .placeholders import mysql_placeholders, pg_slices, sqlite_bindings, sqlite_placeholders
from .pytypes import PyType, TypeMapper
from .request import Column, Query, Request, Table
from .sqlite_types import SqliteProbe
from .typeslock import LockEntry, Refused, sql_hash

UNKNOWN_TYPES = {"any", "anyarray", "anyelement", ""}
ROW_COMMANDS = {":one", ":many", ":batchone", ":batchmany"}
COMMANDS = ROW_COMMANDS | {
    ":exec",
    ":execrows",
    ":execresult",
    ":execlastid",
    ":copyfrom",
    ":batchexec",
}
# commands an engine has no form for: a generation error (sqlite_check says what instead)
REFUSED_COMMANDS: dict[str, frozenset[str]] = {"sqlite": frozenset({":copyfrom"})}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: PyType
    db_name: str = ""


@dataclass(frozen=True, slots=True)
class Embed:
    """A `sqlc.embed(t)` column: the next `width` record values build models.<cls>."""

    name: str
    cls: str
    fields: list[Field]
    # on an outer join's nullable side: the model is None when its field at this index, a
    # NOT NULL column, is NULL (the join found no row)
    missing_at: int | None = None


@dataclass
class QueryPlan:
    query: Query
    func: str
    sql: str
    params: list[Field]
    slices: set[str] = field(default_factory=set)
    row_class: str | None = None  # "Department" (a table's model) or "ListUsersRow"
    row_is_model: bool = False
    row_fields: list[Field | Embed] = field(default_factory=list)
    scalar: PyType | None = None
    params_class: str | None = None
    # one per placeholder, in order: a MySQL named parameter used twice is bound twice
    bind: list[Field] = field(default_factory=list)
    # `-- fixup: once a, b` on a :many query: its leading columns a, b hold one value per
    # result (a total, a version stamp), read from the first row into <Name>Page beside
    # the rows, which are built from the remaining columns
    once: list[Field] = field(default_factory=list)
    page_class: str | None = None
    # a :one that always yields one row (an aggregate without GROUP BY): `Row`, never None
    one_row: bool = False


def _lock_type(col: Column, name: str) -> tuple[str, Column]:
    """A type name from the lock (`text[]` for an array) and `col`, an array exactly then."""
    is_array = name.endswith("[]")
    return name.removesuffix("[]"), replace(col, is_array=is_array, array_dims=int(is_array))


def _fresh(name: str, seen: set[str]) -> str:
    """`name`, `_` appended while an earlier field has it (then it is taken)."""
    while name in seen:
        name += "_"
    seen.add(name)
    return name


class Planner:
    def __init__(
        self,
        request: Request,
        mapper: TypeMapper,
        lock: dict[str, LockEntry],
        *,
        allow: frozenset[str] = frozenset(),
    ) -> None:
        self.request = request
        self.mapper = mapper
        self.lock = lock
        self.allow = allow  # the classes of ALLOWABLE the user accepts (option allow)
        self.problems: list[str] = []  # each fails the generation, all named at once
        self.accepted: list[str] = []  # allowed ones: written into the generated __init__.py
        self.per_query_lock = True  # False once "no (usable) lock" has been said
        self.refused: Refused = {}  # from the lock: queries the server refused
        self.exact_names = bool(request.options.get("emit_exact_table_names"))
        self.sqlite: SqliteProbe | None = None  # engine sqlite: the in-memory schema
        mapper.warn = lambda message: self.warn("any", message)  # an unmappable type: Any
        self.catalog = {
            name: {c.name: c.not_null for c in table.columns}
            for name, table in request.tables.items()
        }

    def warn(self, kind: str, message: str) -> None:
        """A problem of class `kind` (ALLOWABLE): an error unless the user allows it."""
        (self.accepted if kind in self.allow else self.problems).append(f"{message} [{kind}]")

    def table(self, name: str, where: str) -> Table:
        try:
            return self.request.tables[name]
        except KeyError:
            raise CodegenError(f"{where}: unknown table {name!r}") from None

    def model_fields(self, table: Table) -> list[Field]:
        where = f"table {table.name}"
        return [Field(snake(c.name), self.mapper.column(c, where), c.name) for c in table.columns]

    def plan(self, q: Query) -> QueryPlan:
        where = f"{q.filename}: query {q.name}"
        if q.cmd not in COMMANDS:
            raise CodegenError(f"{where}: unsupported command {q.cmd}")
        if q.cmd == ":execlastid" and self.request.engine == "postgresql" and len(q.columns) != 1:
            raise CodegenError(
                f"{where}: :execlastid on PostgreSQL needs a one-column RETURNING clause "
                f"(found {len(q.columns)} result columns)"
            )
        if self.request.engine == "sqlite":
            self.sqlite_check(q, where)
        refused = self.refused.get(q.name)
        if refused is not None and refused[0] == sql_hash(q.text):
            raise CodegenError(refused[1])
        entry = self.lock.get(q.name)
        if entry is not None and entry.sql_sha256 != sql_hash(q.text):
            self.warn("sqlc_types", f"{where}: the types lock is stale (write it again)")
            entry = None
        elif entry is None and self.per_query_lock and self.lock_expected(q):
            self.warn("sqlc_types", f"{where}: not in the types lock; using sqlc's types")
        once = once_columns(q, where)
        if once and q.cmd != ":many":
            raise CodegenError(f"{where}: 'fixup: once' needs a :many query, not {q.cmd}")
        try:
            bind = self.params(q, entry, where)
            sql = self.sql_text(q, where, entry.casts if entry else {})
            plan = QueryPlan(q, snake(q.name), sql, _unique(bind), bind=bind)
            if q.cmd in ROW_COMMANDS:  # :exec & co. ignore what a statement returns
                self.result(plan, entry, where, once)
        except CodegenError as exc:
            if entry is None and self.lock_expected(q):
                raise CodegenError(
                    f"{exc} (or write the types lock again: it has no entry)"
                ) from exc
            raise
        if q.cmd in (":copyfrom", ":batchexec", ":batchone", ":batchmany"):
            plan.params_class = f"{pascal(q.name)}Params"
        return plan

    def sqlite_check(self, q: Query, where: str) -> None:
        """SQLite has no COPY; a query SQLite cannot prepare on the schema is named with
        its message."""
        if q.cmd in REFUSED_COMMANDS["sqlite"]:  # :copyfrom
            raise CodegenError(
                f"{where}: :copyfrom has no SQLite form (SQLite has no COPY); "
                f"use :batchexec, which runs executemany"
            )
        if self.sqlite is not None:
            sql, numbers = sqlite_placeholders(q.text.strip())
            message = self.sqlite.check(sql, len(numbers))
            if message is not None:
                raise CodegenError(f"{where}: SQLite refuses it: {message}")

    def plan_all(self, queries: list[Query]) -> list[QueryPlan]:
        """Every query's plan; each one that cannot be generated is a problem, named."""
        plans = []
        for q in queries:
            try:
                plans.append(self.plan(q))
            except CodegenError as exc:
                self.problems.append(str(exc))
            except Exception as exc:  # a bug of ours: still name the query
                where = f"{q.filename}: query {q.name}"
                raise CodegenError(f"{where}: internal error: {type(exc).__name__}: {exc}") from exc
        return plans

    def lock_expected(self, q: Query) -> bool:
        if self.request.engine == "sqlite":  # SQLite answers at generation time
            return False
        if self.request.engine == "postgresql":
            return bool(q.params) or any(c.embed_table is None for c in q.columns)
        return any(self.needs_server_type(c) for c in q.columns) or any(
            p.column.type.name in UNKNOWN_TYPES for p in q.params
        )

    def needs_server_type(self, col: Column) -> bool:
        """PostgreSQL: every column (the server knows enums, domains, CTEs); MySQL: where
        sqlc has no table column (its tinyint(1), JSON, SET knowledge beats the wire type)."""
        if col.embed_table is not None:
            return False
        if self.request.engine == "postgresql":
            return True
        return (
            col.is_func_call
            or col.type.name in UNKNOWN_TYPES
            or col.table is None
            or col.table not in self.request.tables  # a CTE or derived table
        )

    def sql_text(self, q: Query, where: str, casts: dict[int, str]) -> str:
        text = q.text.strip()
        if self.request.engine == "mysql":
            return mysql_placeholders(text)
        if self.request.engine == "sqlite":
            return sqlite_placeholders(text)[0]
        sliced = pg_slices(text, [p.number for p in q.params if p.column.is_sqlc_slice], where)
        return cast_params(sliced, casts)

    def params(self, q: Query, entry: LockEntry | None, where: str) -> list[Field]:
        if self.request.engine == "sqlite":
            return self.sqlite_params(q, where)
        # MySQL binds `?` in text order (sqlc's numbers are its Go argument order).
        mysql = self.request.engine == "mysql"
        ordered = q.params if mysql else sorted(q.params, key=lambda p: p.number)
        if mysql:
            marks = len(re.findall(r"%s", mysql_placeholders(q.text)))
            if marks != len(ordered):
                raise CodegenError(
                    f"{where}: {marks} placeholders but {len(ordered)} parameters; on MySQL "
                    f"use each named parameter once"
                )
        fields: list[Field] = []
        seen: set[str] = set()
        named: dict[str, str] = {}  # a MySQL sqlc.arg(x) used again: the same argument
        # ... typed by the use sqlc knows (`nick = sqlc.arg(nick)`, not `sqlc.arg(nick) = ''`)
        known = {
            p.column.name: p.column
            for p in reversed(ordered)
            if mysql and p.column.is_named_param and p.column.type.name not in UNKNOWN_TYPES
        }
        for index, param in enumerate(ordered):
            col = param.column
            if mysql and col.is_named_param and col.type.name in UNKNOWN_TYPES:
                col = known.get(col.name, col)
            name = snake(col.name) if col.name else f"p{param.number}"
            if mysql and col.is_named_param and col.name in named:
                name = named[col.name]
            else:
                name = _fresh(name, seen)
                if mysql and col.is_named_param:
                    named[col.name] = name
            # PostgreSQL: the server's parameter types always (sqlc keeps a column's type
            # where the server infers another, e.g. `jsonb ? $1` is text); MySQL: only
            # where sqlc says `any` (the lock judges it from the column it meets).
            position = index if mysql else param.number - 1
            type_name = None
            server = entry.params[position] if entry and position < len(entry.params) else ""
            if server and (not mysql or col.type.name in UNKNOWN_TYPES):
                type_name, col = _lock_type(col, server)
            py = self.mapper.column(col, f"{where}: parameter", type_name)
            fields.append(Field(name, py, col.name))
        return fields

    def sqlite_types(self, sql: str) -> list[str] | None:
        """Each result column's type by SQLite: a column's declared type (a view over the
        query), else its expression's by SQLite's rules; None for no SELECT."""
        if self.sqlite is None:
            return None
        declared = self.sqlite.declared_types(sql)
        if declared is None or all(declared):
            return declared
        rules = self.sqlite.expression_types(sql) or []
        return [d or (rules[i] if i < len(rules) else "") for i, d in enumerate(declared)]

    def sqlite_params(self, q: Query, where: str) -> list[Field]:
        """One field per `?` in text order: a numbered parameter used twice is bound twice."""
        by_number: dict[int, Field] = {}
        seen: set[str] = set()
        for param in sorted(q.params, key=lambda p: p.number):
            col = param.column
            name = _fresh(snake(col.name) if col.name else f"p{param.number}", seen)
            py = self.mapper.column(col, f"{where}: parameter")
            by_number[param.number] = Field(name, py, col.name)
        numbers = sqlite_bindings(
            q.text, [(p.number, p.column.is_named_param) for p in q.params], where
        )
        missing = sorted(set(numbers) - set(by_number))
        if missing:
            raise CodegenError(f"{where}: placeholder ?{missing[0]} has no parameter")
        return [by_number[n] for n in numbers]

    def result(self, plan: QueryPlan, entry: LockEntry | None, where: str, once: list[str]) -> None:
        q = plan.query
        if not q.columns and not once:  # `SELECT FROM t`: rows without columns
            plan.row_class = f"{pascal(q.name)}Row"
            return
        sqlite = self.request.engine == "sqlite"
        text = plan.sql if sqlite else q.text  # sqlglot reads `?`, not `?NNN`
        rules = target_rules(self.request.engine, text, self.catalog) or []
        plan.one_row = q.cmd == ":one" and one_row(self.request.engine, text)
        declared = self.sqlite_types(plan.sql) if sqlite else None
        flat = 0
        out: list[Field | Embed] = []
        seen: set[str] = set()
        for col in q.columns:
            if col.embed_table:
                table = self.table(col.embed_table, where)
                name = _fresh(snake(col.name), seen)  # the same table embedded twice
                outer = [
                    r is True and c.not_null
                    for r, c in zip(rules[flat:], table.columns, strict=False)
                ]
                missing_at = outer.index(True) if any(outer) else None
                fields = self.model_fields(table)
                out.append(
                    Embed(name, model_name(table.name, self.exact_names), fields, missing_at)
                )
                flat += len(table.columns)
                continue
            rule = rules[flat] if flat < len(rules) else None
            if rule is None and sqlite:  # no rule of SQLite's decides it: Optional, said so
                rule = True
                self.accepted.append(f"{where}: column {col.name!r}: NULL undecided; Optional")
            if rule is not None:
                col = replace(col, not_null=not rule)
            type_name = None
            if entry is not None and self.needs_server_type(col) and flat < len(entry.columns):
                type_name, col = _lock_type(col, entry.columns[flat])
            if declared and flat < len(declared) and declared[flat]:
                type_name = declared[flat]  # SQLite's own declared type of the column
            name = _fresh(snake(col.name) if col.name else f"column_{flat + 1}", seen)
            out.append(Field(name, self.mapper.column(col, where, type_name), col.name))
            flat += 1
        columns = q.columns
        if once:
            leading, out, columns = split_once(q, out, once, where)
            plan.once = [f for f in leading if isinstance(f, Field)]  # no embed: checked
            plan.page_class = f"{pascal(q.name)}Page"
        if len(out) == 1 and isinstance(out[0], Field):
            plan.scalar = out[0].type
            plan.row_fields = out
            return
        whole = self.whole_table(columns)
        if whole is not None:
            plan.row_class, plan.row_is_model = model_name(whole.name, self.exact_names), True
            plan.row_fields = list(self.model_fields(whole))
        else:
            plan.row_class = f"{pascal(q.name)}Row"
            plan.row_fields = out

    def whole_table(self, columns: list[Column]) -> Table | None:
        """The table whose every column, in order, is the result (SELECT * / RETURNING *)."""
        tables = {c.table for c in columns}
        if len(tables) != 1 or None in tables or any(c.embed_table for c in columns):
            return None
        table = self.request.tables.get(next(iter(tables)) or "")
        if table is None or [c.name for c in table.columns] != [c.name for c in columns]:
            return None
        if any(c.not_null != t.not_null for c, t in zip(columns, table.columns, strict=True)):
            return None  # e.g. a LEFT JOIN made them nullable
        return table


def _unique(bind: list[Field]) -> list[Field]:
    """The function's parameters: one per name, typed by the use that knows its type."""
    by_name: dict[str, Field] = {}
    for f in bind:
        known = by_name.get(f.name)
        if known is None or known.type.annotation == "Any":
            by_name[f.name] = f
    return list(by_name.values())
