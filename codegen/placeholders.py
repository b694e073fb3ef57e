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
    out: list[str] = []
    numbers: list[int] = []
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
            numbers.append(int(digits) if digits else max(numbers, default=0) + 1)
            out.append("?")
            i += 1 + len(digits)
        else:
            out.append(ch)
            i += 1
    return "".join(out), numbers
