"""`-- fixup: once a, b`: a :many query whose leading columns hold one value per result
(a total, a version stamp), read from the first row into <Name>Page beside the rows."""

from __future__ import annotations

import re
from typing import Protocol, TypeVar

from .errors import CodegenError
from .request import Column, Query

DIRECTIVE = re.compile(r"\s*fixup:\s*(\w*)\s*(.*?)\s*$")  # `-- fixup: once total, version`


class Named(Protocol):
    @property
    def name(self) -> str: ...


F = TypeVar("F", bound=Named)


def once_columns(q: Query, where: str) -> list[str]:
    """The columns a `-- fixup: once a, b` comment names; `fixup:` is the plugin's prefix, so
    any other word after it is an error (a typo must not silently change the code)."""
    names: list[str] = []
    for line in q.comments:
        match = DIRECTIVE.match(line)
        if match is None:
            continue
        verb, rest = match.groups()
        if verb == "sort":  # sort_variants.py reads it
            continue
        if verb != "once":
            raise CodegenError(f"{where}: unknown directive 'fixup: {verb}' (known: once, sort)")
        if names:
            raise CodegenError(f"{where}: 'fixup: once' given twice")
        names = [name.strip() for name in rest.split(",")]
        if not all(names):
            raise CodegenError(f"{where}: 'fixup: once' needs column names: once a, b")
    return names


def split_once(
    q: Query, out: list[F], once: list[str], where: str
) -> tuple[list[F], list[F], list[Column]]:
    """The `fixup: once` fields, the row's fields and the row's columns."""
    n = len(once)
    leading = [c.name for c in q.columns[:n] if c.embed_table is None]
    if leading != once:
        raise CodegenError(
            f"{where}: 'fixup: once {', '.join(once)}' must name the first result "
            f"columns, in order (they are {', '.join(c.name for c in q.columns[:n])})"
        )
    if len(q.columns) == n:
        raise CodegenError(f"{where}: 'fixup: once' leaves no columns for the rows")
    if "rows" in [f.name for f in out[:n]]:
        raise CodegenError(f"{where}: 'fixup: once' cannot read a column named rows")
    return out[:n], out[n:], q.columns[n:]
