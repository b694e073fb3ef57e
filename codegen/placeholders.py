"""Each engine's parameter placeholders as its Python driver binds them: sqlc writes `$n`
(PostgreSQL), `?` (MySQL) and `?`/`?NNN` (SQLite)."""

from __future__ import annotations

import re

from .errors import CodegenError


def pg_slices(sql: str, numbers: list[int], where: str = "query") -> str:
    """PostgreSQL has no list parameter: `IN (sqlc.slice(x))`, which sqlc leaves as
    `IN ($n)`, becomes `= ANY($n)` (`NOT IN` -> `<> ALL`) and binds the list as an array."""
    for number in numbers:
        found = 0
        for negated, replacement in ((r"NOT\s+", "<> ALL"), ("", "= ANY")):
            pattern = rf"\b{negated}IN\s*\(\s*\${number}(?!\d)\s*\)"
            sql, count = re.subn(pattern, f"{replacement}(${number})", sql, flags=re.IGNORECASE)
            found += count
        if not found:
            raise CodegenError(
                f"{where}: sqlc.slice on PostgreSQL works only as `IN (sqlc.slice(x))`; "
                f"write `= ANY(@x::type[])` instead"
            )
    return sql


def mysql_placeholders(sql: str) -> str:
    """sqlc's MySQL `?` -> PyMySQL's `%s`, literal `%` -> `%%`; quotes and comments kept."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = i + 1
            while end < n and sql[end] != ch:
                end += 2 if sql[end] == "\\" else 1
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i) + 2 or n
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            out.append("%s")
            i += 1
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def sqlite_placeholders(sql: str) -> tuple[str, list[int]]:
    """sqlc's SQLite `?`, `?NNN` (named parameters become `?NNN`) -> `?` alone, and the
    parameter number each one binds, in text order (a bare `?` is one more than the
    largest number before it, as SQLite numbers it); quotes and comments kept, a
    `/*SLICE:x*/?` keeps its marker (runtime.expand_sqlite_slices)."""
    text, marks = sqlite_marks(sql)
    numbers: list[int] = []
    for mark in marks:
        numbers.append(mark if mark is not None else max(numbers, default=0) + 1)
    return text, numbers


def sqlite_bindings(sql: str, params: list[tuple[int, bool]], where: str) -> list[int]:
    """The parameter number each placeholder of sqlc's SQLite text binds, in text order;
    `params` is sqlc's list (number, is it named), in the order the query names them.

    Named parameters beside bare `?` are where sqlc's text and its numbers disagree: sqlc
    rewrites `@x`, `:x` to a bare `?` or a `?NNN` but numbers the parameters positional
    first, so SQLite's own numbering would bind a named value to a `?` and the reverse
    (sqlc-dev/sqlc#4471). There a `?NNN` is its parameter and the bare `?` take the other
    parameters in the order sqlc lists them (the text's); a named one used twice leaves
    more `?` than parameters, which nothing can number: refused, naming the remedy."""
    _, marks = sqlite_marks(sql)
    if None not in marks or len({named for _, named in params}) < 2:
        return sqlite_placeholders(sql)[1]
    numbered = {mark for mark in marks if mark is not None}
    bare = [number for number, _ in params if number not in numbered]
    if len(bare) != marks.count(None):
        raise CodegenError(
            f"{where}: a named parameter used twice beside `?` leaves sqlc's SQLite text "
            f"with {marks.count(None)} bare `?` for {len(bare)} parameters; name every "
            f"parameter (`@x`, `sqlc.arg(x)`) or number every one (`?1`, `?2`)"
        )
    rest = iter(bare)
    return [mark if mark is not None else next(rest) for mark in marks]


def sqlite_marks(sql: str) -> tuple[str, list[int | None]]:
    """sqlc's SQLite text with every placeholder a bare `?`, and each one's own number in
    text order (`?NNN`: NNN, a bare `?`: None)."""
    out: list[str] = []
    numbers: list[int | None] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            end = sql.find(close, i + 1)
            end = n if end < 0 else end
            out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i) + 2 or n
            out.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            match = re.match(r"\?(\d*)", sql[i:])
            digits = match.group(1) if match else ""
            numbers.append(int(digits) if digits else None)
            out.append("?")
            i += 1 + len(digits)
        else:
            out.append(ch)
            i += 1
    return "".join(out), numbers
