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


# what a placeholder scan steps over whole (a quoted string or name, a comment), or a token
# it rewrites; an unterminated quote or comment runs to the end
_MYSQL_TOKENS = re.compile(r"""(['"`])(?:\\.|(?!\1).)*\1?|/\*.*?(?:\*/|\Z)|[?%]""", re.S)
_SQLITE_TOKENS = re.compile(
    r"""'[^']*'?|"[^"]*"?|`[^`]*`?|\[[^\]]*\]?|/\*.*?(?:\*/|\Z)|--[^\n]*|\?(\d*)""", re.S
)


def mysql_placeholders(sql: str) -> str:
    """sqlc's MySQL `?` -> PyMySQL's `%s`, literal `%` -> `%%`; quotes and comments kept."""

    def rewrite(token: re.Match[str]) -> str:
        if token[0] == "?":
            return "%s"
        return token[0] if token[0].startswith("/*") else token[0].replace("%", "%%")

    return _MYSQL_TOKENS.sub(rewrite, sql)


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


def sqlite_marks(sql: str, mark: str = "?") -> tuple[str, list[int | None]]:
    """sqlc's SQLite text with every placeholder a bare `?` (or `mark`), and each one's own
    number in text order (`?NNN`: NNN, a bare `?`: None)."""
    numbers: list[int | None] = []

    def rewrite(token: re.Match[str]) -> str:
        if token[1] is None:  # a quote or a comment
            return token[0]
        numbers.append(int(token[1]) if token[1] else None)
        return mark

    return _SQLITE_TOKENS.sub(rewrite, sql), numbers
