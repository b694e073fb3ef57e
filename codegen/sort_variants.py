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

from .errors import CodegenError
from .naming import pascal

DIRECTIONS = ("asc", "desc")
DIRECTIVE = re.compile(r"\s*fixup:\s*sort\b\s*(.*?)\s*$")
IDENT = re.compile(r"^(?:(\w+)\.)?(\w+)$")
AFTER_KEY, AFTER_TIE = "after_key", "after_tie"  # the keyset parameters' names in every variant
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
    lines = [m.group(1) for c in q.get("comments") or () if (m := DIRECTIVE.match(c))]
    if not lines:
        return None
    if len(lines) > 1:
        raise CodegenError(f"{where}: 'fixup: sort' given twice")
    if q["cmd"] != ":many":
        raise CodegenError(f"{where}: 'fixup: sort' needs a :many query, not {q['cmd']}")
    items = [item.strip() for item in split_top(lines[0])]
    tail = ""
    if items and items[-1].split()[:1] in (["keyset"], ["then"]):
        tail = items.pop()
    columns = [c.get("name", "") for c in q.get("columns") or []]
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
        directions = tuple(dict.fromkeys(w.lower() for w in words[1:])) or DIRECTIONS
        keys.append((key, directions))
    tie, keyset = None, False
    if tail.strip():
        words = tail.split()
        if words == ["keyset"]:
            raise CodegenError(f"{where}: keyset paging needs a unique tie-breaker: ', keyset id'")
        if len(words) != 2 or words[0] not in ("keyset", "then"):
            raise CodegenError(
                f"{where}: the last item is 'keyset <unique column>' or 'then <unique column>', "
                f"not {tail.strip()!r}"
            )
        keyset = words[0] == "keyset"
        tie = _column(words[1], columns, where, "tie-breaker")
        if tie.name in [k.name for k, _ in keys]:
            raise CodegenError(f"{where}: tie-breaker {tie.name!r} is also a sort key")
    if keyset and any("(" in k.expr or " " in k.expr for k, _ in keys):
        raise CodegenError(
            f"{where}: a keyset key is a column (a cursor holds its value), not an expression"
        )
    if keyset and tie is None:
        raise CodegenError(f"{where}: keyset paging needs a unique tie-breaker: ', keyset id'")
    tie_table = None
    if tie is not None:
        column = next(c for c in q.get("columns") or [] if c.get("name") == tie.name)
        tie_table = (column.get("table") or {}).get("name") or None
        if not column.get("not_null"):
            raise CodegenError(f"{where}: tie-breaker {tie.name!r} is nullable: not unique")
    return SortSpec(q["name"], tuple(keys), tie, keyset, tie_table)


def specs(raw: dict[str, Any]) -> dict[str, SortSpec]:
    """Every sorted query's directive, by query name (before `expand`)."""
    found = {}
    for q in raw.get("queries") or []:
        if (spec := parse(q)) is not None:
            found[q["name"]] = spec
    return found


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
    mysql = raw["settings"]["engine"] == "mysql"
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
                queries.append(variant(q, spec, key, direction, mysql=mysql))
    return {**raw, "queries": queries}


def variant(
    q: dict[str, Any], spec: SortSpec, key: SortKey, direction: str, *, mysql: bool
) -> dict[str, Any]:
    where = f"{q.get('filename', '')}: query {q['name']}"
    text = q["text"].strip().rstrip(";").rstrip()
    marks = clauses(text)
    if "ORDER BY" in marks:
        raise CodegenError(
            f"{where}: a 'fixup: sort' query has no ORDER BY of its own (the plugin writes it)"
        )
    for word in ("GROUP BY", "HAVING", "UNION", "INTERSECT", "EXCEPT", "WINDOW"):
        if spec.keyset and word in marks:
            raise CodegenError(f"{where}: keyset paging cannot follow a query with {word}")
    columns = {c.get("name"): c for c in q.get("columns") or []}
    params = [copy.deepcopy(p) for p in q.get("params") or []]
    tail = min([marks[w] for w in ("LIMIT", "OFFSET", "FETCH", "FOR") if w in marks] or [len(text)])
    down = direction == "desc"
    order = [f"{key.expr} {direction.upper()}"]
    if spec.tie is not None:
        order.append(f"{spec.tie.expr} {direction.upper()}")
    ordered = f"{text[:tail].rstrip()}\nORDER BY {', '.join(order)}\n{text[tail:]}".rstrip()
    if spec.keyset and spec.tie is not None:
        nullable = not columns[key.name].get("not_null")
        where_at = marks.get("WHERE")
        if mysql:
            condition, uses = mysql_keyset(key.expr, spec.tie.expr, down)
        else:
            top = max([int(p["number"]) for p in params] or [0])
            condition = pg_keyset(key.expr, spec.tie.expr, down, nullable, top + 1, top + 2)
            uses = [AFTER_KEY, AFTER_TIE]
        if where_at is None:
            cut = tail_of_from(text, marks, tail)
            head, rest = ordered[:cut].rstrip(), ordered[cut:]
            ordered = f"{head}\nWHERE {condition}\n{rest.lstrip()}"
            insert_at = cut
        else:
            body_end = tail_of_where(text, marks, tail)
            cond = text[where_at + len("WHERE") : body_end].strip()
            ordered = (
                f"{text[:where_at]}WHERE ({cond})\n  AND {condition}\n{ordered[body_end:].lstrip()}"
            )
            insert_at = body_end
        new = [_param(columns[key.name], AFTER_KEY), _param(columns[spec.tie.name], AFTER_TIE)]
        if mysql:  # one `?` per use, in text order: the new ones where the condition stands
            before = sum(1 for _ in re.finditer(r"\?", text[:insert_at]))
            added = [copy.deepcopy(new[0] if name == AFTER_KEY else new[1]) for name in uses]
            params[before:before] = added
            for number, p in enumerate(params, 1):
                p["number"] = number
        else:
            top = max([int(p["number"]) for p in params] or [0])
            new[0]["number"], new[1]["number"] = top + 1, top + 2
            params += new
    comments = [c for c in q.get("comments") or () if not DIRECTIVE.match(c)]
    name = spec.variant_name(key.name, direction)
    return {
        **q,
        "name": name,
        "text": ordered,
        "params": params,
        "comments": comments,
        MARK: {"base": spec.base, "key": key.name, "direction": direction},
    }


def _param(column: dict[str, Any], name: str) -> dict[str, Any]:
    """A keyset parameter: the key's (or tie-breaker's) column, nullable (NULL: from the start)."""
    col = copy.deepcopy(column)
    col.update(name=name, not_null=False, is_named_param=True, original_name=name)
    return {"number": 0, "column": col}


def pg_keyset(key: str, tie: str, down: bool, nullable: bool, k: int, t: int) -> str:
    """The rows after ($k, $t) in PostgreSQL's order: NULLs last ascending, first descending.
    The row comparison comes first, so the server types $k and $t from the columns before it
    meets `$t IS NULL` (which alone it cannot type)."""
    op = "<" if down else ">"
    row = f"({key}, {tie}) {op} (${k}, ${t})"
    if not nullable:
        return f"({row} OR ${t} IS NULL)"
    if down:  # NULLs came first: after a NULL, the rest of the NULLs, then every value
        rest = f"${k} IS NULL AND ({key} IS NOT NULL OR {tie} < ${t})"
    else:  # NULLs come last: after a value, every NULL; after a NULL, the NULLs after it
        rest = f"{key} IS NULL AND (${k} IS NOT NULL OR {tie} > ${t})"
    return f"({row} OR ({rest}) OR ${t} IS NULL)"


def mysql_keyset(key: str, tie: str, down: bool) -> tuple[str, list[str]]:
    """The rows after (?, ?) in MariaDB's order: NULLs first ascending, last descending. The
    comparison is spelled out (`k > ? OR (k = ? AND id > ?)`, which MariaDB's range optimizer
    reads; its row-value comparison it does not), NULL-aware for every key so that every
    variant binds the same parameters in the same order: (tie, key, key, tie, key, tie)."""
    op = "<" if down else ">"
    if down:  # NULLs last: after a value, the NULLs; after a NULL, the NULLs after it
        nulls = f"({key} IS NULL AND (? IS NOT NULL OR {tie} < ?))"
    else:  # NULLs first: after a NULL, the NULLs after it and then every value
        nulls = f"(? IS NULL AND ({key} IS NOT NULL OR {tie} > ?))"
    cond = f"(? IS NULL OR {key} {op} ? OR ({key} = ? AND {tie} {op} ?) OR {nulls})"
    return cond, [AFTER_TIE, AFTER_KEY, AFTER_KEY, AFTER_TIE, AFTER_KEY, AFTER_TIE]


_WORDS = re.compile(
    r"\b(SELECT|FROM|WHERE|GROUP\s+BY|HAVING|WINDOW|ORDER\s+BY|LIMIT|OFFSET|FETCH|FOR|"
    r"UNION|INTERSECT|EXCEPT|RETURNING)\b",
    re.IGNORECASE,
)


def clauses(sql: str) -> dict[str, int]:
    """Where each top-level clause keyword first stands (outside parentheses, quotes and
    comments): {'FROM': 42, 'WHERE': 90, ...}."""
    found: dict[str, int] = {}
    depth, i, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = i + 1
            while end < n and sql[end] != ch:
                end += 2 if sql[end] == "\\" and ch != "'" else 1
            i = end + 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline
        elif sql.startswith("/*", i):
            i = (sql.find("*/", i) + 2) or n
        elif ch == "(":
            depth += 1
            i += 1
        elif ch == ")":
            depth -= 1
            i += 1
        elif depth == 0 and (match := _WORDS.match(sql, i)) and (i == 0 or not _ident(sql[i - 1])):
            found.setdefault(" ".join(match.group(1).upper().split()), i)
            i = match.end()
        else:
            i += 1
    return found


def _ident(ch: str) -> bool:
    return ch.isalnum() or ch in "_$."


def tail_of_from(text: str, marks: dict[str, int], tail: int) -> int:
    """Where a WHERE clause would go: after FROM, before GROUP BY/HAVING/.../LIMIT."""
    after = [v for w, v in marks.items() if v > marks.get("FROM", 0) and w != "FROM"]
    return min([*after, tail])


def tail_of_where(text: str, marks: dict[str, int], tail: int) -> int:
    after = [v for w, v in marks.items() if v > marks["WHERE"] and w != "WHERE"]
    return min([*after, tail])


_TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:[`\"]?\w+[`\"]?\.)?[`\"]?(\w+)", re.I
)
_INDEX = re.compile(
    r"CREATE\s+UNIQUE\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?[`\"]?\w*[`\"]?\s*"
    r"ON\s+(?:ONLY\s+)?(?:\w+\.)?[`\"]?(\w+)[`\"]?\s*(?:USING\s+\w+\s*)?\(\s*[`\"]?(\w+)[`\"]?\s*\)"
    r"(?!\s*(?:INCLUDE\s*\([^)]*\)\s*)?WHERE)",
    re.I,
)
_ALTER = re.compile(
    r"ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(?:\w+\.)?[`\"]?(\w+)[`\"]?\s+ADD\s+"
    r"(?:CONSTRAINT\s+\S+\s+)?(?:PRIMARY\s+KEY|UNIQUE)\s*\(\s*[`\"]?(\w+)[`\"]?\s*\)",
    re.I,
)
_UNIQUE = re.compile(r"\b(?:PRIMARY\s+KEY|UNIQUE)\b(?!\s*\()", re.I)
_CONSTRAINT = re.compile(
    r"^(?:CONSTRAINT\s+\S+\s+)?(?:PRIMARY\s+KEY|UNIQUE(?:\s+KEY|\s+INDEX)?(?:\s+\w+)?)\s*"
    r"\(\s*[`\"]?(\w+)[`\"]?\s*\)",
    re.I,
)


def unique_columns(schema_texts: list[str]) -> set[tuple[str, str]]:
    """(table, column) pairs the schema declares unique on their own: a column's PRIMARY KEY
    or UNIQUE, a one-column PRIMARY KEY (...) / UNIQUE (...), a whole-table unique index."""
    found: set[tuple[str, str]] = set()
    for text in schema_texts:
        code = re.sub(r"--[^\n]*", "", text)
        for match in _TABLE.finditer(code):
            table = match.group(1).lower()
            start = code.find("(", match.end())
            depth, end = 0, start
            for end in range(start, len(code)):
                depth += {"(": 1, ")": -1}.get(code[end], 0)
                if depth == 0:
                    break
            for item in split_top(code[start + 1 : end]):
                item = item.strip()
                if constraint := _CONSTRAINT.match(item):
                    found.add((table, constraint.group(1).lower()))
                elif item and not re.match(r"(?:CONSTRAINT|CHECK|FOREIGN|KEY|INDEX)\b", item, re.I):
                    name = item.split()[0].strip('`"').lower()
                    if _UNIQUE.search(item):
                        found.add((table, name))
        found |= {(t.lower(), c.lower()) for t, c in _INDEX.findall(code)}
        found |= {(t.lower(), c.lower()) for t, c in _ALTER.findall(code)}
    return found


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
