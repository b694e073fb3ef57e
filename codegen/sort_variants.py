"""`-- fixup: sort a, b desc, keyset id`: one :many query, one static statement per sort key
and direction, one generated function that picks it.

sqlc cannot take ORDER BY as a parameter (sqlc-dev/sqlc#2061), so a sorted list was a copy
of its query per key and direction, or one CASE query no index serves. Here the query is
written once, without ORDER BY; `expand` (run on sqlc's request before anything else, by the
plugin and by the types step alike) replaces it by its variants, each with its ORDER BY and,
for keyset paging, its `(key, tie) > (after_key, after_tie)` condition written in. Every
variant is an ordinary query: prepared and typed by the server (the types lock), generated
from static text, so nothing reaches SQL at run time but parameters. The emitting half is
sort_emit.py.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from . import sort_sql
from .errors import CodegenError
from .naming import pascal
from .placeholders import sqlite_bindings, sqlite_placeholders
from .sort_sql import AFTER_KEY, AFTER_TIE, Order

DIRECTIONS = ("asc", "desc")
DIRECTIVE = re.compile(r"\s*fixup:\s*sort\b\s*(.*?)\s*$")
IDENT = re.compile(r"^(?:(\w+)\.)?(\w+)$")
MARK = "fixup_sort"  # a variant's query dict carries its place: {base, key, direction}


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str  # the result column
    expr: str  # as written: `s.name` where the FROM clause needs the alias


@dataclass(frozen=True, slots=True)
class SortSpec:
    """A query's `fixup: sort` directive, read and checked against its result columns."""

    base: str
    keys: tuple[tuple[SortKey, tuple[str, ...]], ...]  # each key and its directions
    tie: SortKey | None
    keyset: bool
    tie_table: str | None = None  # the tie-breaker's table, where it must be unique

    def variant_name(self, key: str, direction: str) -> str:
        return f"{self.base}By{pascal(key)}{direction.capitalize()}"


def parse(q: dict[str, Any]) -> SortSpec | None:
    """The query's sort directive (None without one); a bad one is an error naming it."""
    where = f"{q.get('filename', '')}: query {q['name']}"
    line = _directive(q, where)
    if line is None:
        return None
    items = [item.strip() for item in split_top(line)]
    tail = items.pop() if items and items[-1].split()[:1] in (["keyset"], ["then"]) else ""
    columns = [c.get("name", "") for c in q.get("columns") or []]
    keys = _keys(items, columns, where)
    keyset, tie = _tail(tail, columns, where)
    if tie is not None and tie.name in [k.name for k, _ in keys]:
        raise CodegenError(f"{where}: tie-breaker {tie.name!r} is also a sort key")
    if keyset and any("(" in k.expr or " " in k.expr for k, _ in keys):
        raise CodegenError(
            f"{where}: a keyset key is a column (a cursor holds its value), not an expression"
        )
    return SortSpec(q["name"], keys, tie, keyset, _tie_table(q, tie, where))


def _directive(q: dict[str, Any], where: str) -> str | None:
    """The text after `fixup: sort` (None without it); given twice or on a query that is
    not :many, an error."""
    lines = [m.group(1) for c in q.get("comments") or () if (m := DIRECTIVE.match(c))]
    if not lines:
        return None
    if len(lines) > 1:
        raise CodegenError(f"{where}: 'fixup: sort' given twice")
    if q["cmd"] != ":many":
        raise CodegenError(f"{where}: 'fixup: sort' needs a :many query, not {q['cmd']}")
    return lines[0]


def _keys(
    items: list[str], columns: list[str], where: str
) -> tuple[tuple[SortKey, tuple[str, ...]], ...]:
    """Each key (`name [asc|desc]...` or `name=expression [asc|desc]...`) and its directions."""
    keys: list[tuple[SortKey, tuple[str, ...]]] = []
    for item in items:
        words = item.split()
        if not words:
            raise CodegenError(f"{where}: 'fixup: sort' needs keys: sort a, b desc, keyset id")
        key = _column(words[0].split("=", 1)[0], columns, where, "sort key")
        if "=" in item:  # `name=expression [directions]`: a column ordered by an expression
            expr, words = _expression(item)
            key = SortKey(key.name, expr)
        for word in words[1:]:
            if word.lower() not in DIRECTIONS:
                raise CodegenError(
                    f"{where}: unknown direction word {word!r} for sort key {key.name!r} "
                    f"(known: asc, desc)"
                )
        if key.name in [k.name for k, _ in keys]:
            raise CodegenError(f"{where}: sort key {key.name!r} given twice")
        keys.append((key, tuple(dict.fromkeys(w.lower() for w in words[1:])) or DIRECTIONS))
    return tuple(keys)


def _tail(tail: str, columns: list[str], where: str) -> tuple[bool, SortKey | None]:
    """The last item: `keyset <unique column>`, `then <unique column>` or nothing."""
    words = tail.split()
    if not words:
        return False, None
    if words == ["keyset"]:
        raise CodegenError(f"{where}: keyset paging needs a unique tie-breaker: ', keyset id'")
    if len(words) != 2:
        raise CodegenError(
            f"{where}: the last item is 'keyset <unique column>' or 'then <unique column>', "
            f"not {tail.strip()!r}"
        )
    return words[0] == "keyset", _column(words[1], columns, where, "tie-breaker")


def _tie_table(q: dict[str, Any], tie: SortKey | None, where: str) -> str | None:
    """The tie-breaker's table (where it must be unique); a nullable one is refused."""
    if tie is None:
        return None
    column = next(c for c in q.get("columns") or [] if c.get("name") == tie.name)
    if not column.get("not_null"):
        raise CodegenError(f"{where}: tie-breaker {tie.name!r} is nullable: not unique")
    return (column.get("table") or {}).get("name") or None


def specs(raw: dict[str, Any]) -> dict[str, SortSpec]:
    """Every sorted query's directive, by query name (before `expand`)."""
    return {q["name"]: spec for q in raw.get("queries") or [] if (spec := parse(q)) is not None}


def split_top(text: str) -> list[str]:
    """`text` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _expression(item: str) -> tuple[str, list[str]]:
    """`key=expr asc` -> ('expr', ['key', 'asc']): the trailing direction words are words."""
    name, _, rest = item.partition("=")
    words = rest.split()
    tail: list[str] = []
    while words and words[-1].lower() in DIRECTIONS:
        tail.insert(0, words.pop())
    return " ".join(words), [name.strip(), *tail]


def _column(word: str, columns: list[str], where: str, what: str) -> SortKey:
    match = IDENT.match(word)
    if match is None:
        raise CodegenError(f"{where}: {what} {word!r} is not a column name")
    if match.group(2) not in columns:
        raise CodegenError(
            f"{where}: {what} {match.group(2)!r} is not a column of the result "
            f"(columns: {', '.join(columns)})"
        )
    return SortKey(match.group(2), word)


def expand(raw: dict[str, Any]) -> dict[str, Any]:
    """sqlc's request with every sorted query replaced by its variants (each marked with
    MARK); a request without `fixup: sort` comes back as it was."""
    queries: list[dict[str, Any]] = []
    names = {q["name"] for q in raw.get("queries") or []}
    engine = raw["settings"]["engine"]
    for q in raw.get("queries") or []:
        spec = parse(q)
        if spec is None:
            queries.append(q)
            continue
        for key, directions in spec.keys:
            for direction in directions:
                name = spec.variant_name(key.name, direction)
                if name in names:
                    raise CodegenError(
                        f"{q.get('filename', '')}: query {q['name']}: its variant {name} "
                        f"has the name of another query"
                    )
                queries.append(variant(q, spec, key, direction, engine))
    return {**raw, "queries": queries}


def variant(
    q: dict[str, Any], spec: SortSpec, key: SortKey, direction: str, engine: str
) -> dict[str, Any]:
    """The query ordered by `key` in `direction` (sort_sql.py writes its SQL), with the
    keyset parameters after its own: numbered after them on PostgreSQL and SQLite, in the
    place of their `?` on MySQL."""
    where = f"{q.get('filename', '')}: query {q['name']}"
    text = q["text"].strip().rstrip(";").rstrip()
    columns = {c.get("name"): c for c in q.get("columns") or []}
    params = [copy.deepcopy(p) for p in q.get("params") or []]
    keyset = spec.keyset and spec.tie is not None
    tie = None if spec.tie is None else spec.tie.expr
    order = Order(key.expr, tie, direction, keyset, not columns[key.name].get("not_null"))
    new = {}
    if keyset and spec.tie is not None:
        new = {AFTER_KEY: _param(columns[key.name], AFTER_KEY),
               AFTER_TIE: _param(columns[spec.tie.name], AFTER_TIE)}  # fmt: skip
    top = max([int(p["number"]) for p in params] or [0])
    for number, name in enumerate(new, top + 1):
        new[name]["number"] = number
    if engine == "postgresql":
        sql = sort_sql.postgres(text, order, (top + 1, top + 2), where)
        params += new.values()
    elif engine == "sqlite":  # every placeholder numbered (`?NNN`), each parameter once
        bare, _ = sqlite_placeholders(text)
        numbers = sqlite_bindings(text, [(p["number"], _named(p)) for p in params], where)
        by_number = {int(p["number"]): p for p in params}
        slices = {i: _name(by_number[n]) for i, n in enumerate(numbers) if _sliced(by_number[n])}
        tree, _ = sort_sql.positional(bare, engine, order, slices, where)
        labels = {str(i): n for i, n in enumerate(numbers)}
        labels |= {name: int(p["number"]) for name, p in new.items()}
        sql = sort_sql.render(tree, engine, slices, labels)
        params += new.values()
    else:  # MySQL: one `?` per use, in text order
        slices = {i: _name(p) for i, p in enumerate(params) if _sliced(p)}
        tree, binds = sort_sql.positional(text, engine, order, slices, where)
        sql = sort_sql.render(tree, engine, slices, None)
        params = [copy.deepcopy(params[b] if isinstance(b, int) else new[b]) for b in binds]
        for number, p in enumerate(params, 1):
            p["number"] = number
    comments = [c for c in q.get("comments") or () if not DIRECTIVE.match(c)]
    return {
        **q,
        "name": spec.variant_name(key.name, direction),
        "text": sql,
        "params": params,
        "comments": comments,
        MARK: {"base": spec.base, "key": key.name, "direction": direction},
    }


def _named(p: dict[str, Any]) -> bool:
    return bool(p["column"].get("is_named_param"))


def _sliced(p: dict[str, Any]) -> bool:
    return bool(p["column"].get("is_sqlc_slice"))


def _name(p: dict[str, Any]) -> str:
    return str(p["column"].get("name", ""))


def _param(column: dict[str, Any], name: str) -> dict[str, Any]:
    """A keyset parameter: the key's (or tie-breaker's) column, nullable (NULL: from the start)."""
    col = copy.deepcopy(column)
    col.update(name=name, not_null=False, is_named_param=True, original_name=name)
    return {"number": 0, "column": col}


def check_unique(spec: SortSpec, unique: set[tuple[str, str]], where: str) -> None:
    """The tie-breaker must tell every two rows apart, or a page boundary skips or repeats."""
    if spec.tie is None:
        return
    table = (spec.tie_table or "").rsplit(".", 1)[-1].lower()
    if (table, spec.tie.name.lower()) not in unique:
        raise CodegenError(
            f"{where}: tie-breaker {spec.tie.name!r} is not a unique column of "
            f"{spec.tie_table or 'a table'} (a PRIMARY KEY or UNIQUE of its own)"
        )
