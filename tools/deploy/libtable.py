"""docs/architecture.md's lib/ module table, from each module's own docstring.

One row per module of lib/ (a package by its `__init__`; lib/pb, generated, as one row):
its dotted name below `lib` and its docstring's first line, the summary (PEP 257), so the
table says what the code says and cannot drift.
tools/deploy/servicetable.py writes it with the service tables; tests/unit/test_libtable.py
fails when it is stale or a summary is missing or runs on.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"
PAGE = ROOT / "docs" / "architecture.md"
GENERATED = {"pb"}  # packages whose modules are generated: one row for the package


class LibTableError(Exception):
    """A module without a one-line summary, or a page without the markers."""


def modules() -> list[tuple[str, Path]]:
    """(dotted name below lib, file) of every module of the table, sorted by name."""
    found = []
    for path in LIB.rglob("*.py"):
        parts = path.relative_to(LIB).with_suffix("").parts
        if parts[0] in GENERATED and parts != (parts[0], "__init__"):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:  # lib/__init__.py is the table's subject, not a row
            found.append((".".join(parts), path))
    return sorted(found)


def summary(path: Path) -> str:
    """The docstring's first line, which must stand alone (the docstring ends or a blank
    line follows it)."""
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path)))
    name = path.relative_to(ROOT)
    if not doc:
        raise LibTableError(f"{name}: no module docstring (its first line is its table row)")
    lines = doc.splitlines()
    if len(lines) > 1 and lines[1].strip():
        raise LibTableError(
            f"{name}: the docstring's first line runs on into the next; make it a summary "
            "of its own followed by a blank line"
        )
    first = lines[0].strip()
    if first.endswith((":", ",", ";")):
        raise LibTableError(f"{name}: the docstring's first line ends with {first[-1]!r}")
    return first


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    rows = [
        f"| [`{name}`]({os.path.relpath(path, PAGE.parent)}) | {cell(summary(path))} |"
        for name, path in modules()
    ]
    return "\n".join(["| module | what it is |", "|---|---|", *rows])
