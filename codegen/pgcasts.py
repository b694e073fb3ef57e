"""Explicit parameter types for what PostgreSQL cannot type alone.

`WHERE $1 IS NULL OR label = $1` fails to PREPARE ("could not determine data type of
parameter $1") though sqlc inferred text from the comparison. The types step then
prepares it again with sqlc's type for that parameter and records it in the lock
(`casts`); the plugin writes the same `$1::text` into the generated SQL, so the driver's
PREPARE at run time is the one the lock was checked with.
"""

from __future__ import annotations

from pglast import ast, parse_sql
from pglast.visitors import Visitor

from .errors import CodegenError


class _Params(Visitor):
    """(location, number) of every `$n` in a statement."""

    def __init__(self) -> None:
        self.found: list[tuple[int, int]] = []

    def visit_ParamRef(self, ancestors: object, node: ast.ParamRef) -> None:
        self.found.append((node.location or 0, node.number or 0))


def _params(sql: str, failure: str) -> list[tuple[int, int]]:
    """(location, number) of every `$n` of `sql`, in text order; unparsable: `failure`."""
    visitor = _Params()
    try:
        for statement in parse_sql(sql):
            visitor(statement)
    except Exception as exc:  # pglast raises its own ParseError: name the cause, not ours
        raise CodegenError(f"{failure}: {exc}") from exc
    return sorted(visitor.found)


def cast_params(sql: str, casts: dict[int, str]) -> str:
    """`sql` with each `$n` of `casts` written `$n::type` (every occurrence)."""
    if not casts:
        return sql
    out, pos = [], 0
    for location, number in _params(sql, "cannot place parameter types"):
        if number not in casts:
            continue
        end = location + len(f"${number}")
        if sql[location:end] != f"${number}":
            raise CodegenError(f"cannot place parameter types: ${number} not at {location}")
        out += [sql[pos:end], f"::{casts[number]}"]
        pos = end
    return "".join([*out, sql[pos:]])


def sqlc_cast(type_name: str, is_array: bool) -> str | None:
    """sqlc's inferred type as a cast target (None where sqlc knows nothing either)."""
    if not type_name or type_name in ("any", "anyelement", "unknown"):
        return None
    return f"{type_name}[]" if is_array else type_name


def format_placeholders(sql: str) -> str:
    """psycopg's form of `sql`: `$n` becomes `%(pn)s` and every literal `%` `%%`. Named, so
    that a parameter used twice stays one server parameter (and keeps its one type)."""
    out, pos = [], 0
    for location, number in _params(sql, "cannot rewrite placeholders for psycopg"):
        out += [sql[pos:location].replace("%", "%%"), f"%(p{number})s"]
        pos = location + len(f"${number}")
    out.append(sql[pos:].replace("%", "%%"))
    return "".join(out)
