"""The vocabulary of the generated dashboards (tools/deploy/dashboards.py): a panel is a title, a
unit and its expressions by legend; a row header is a panel without expressions."""

from __future__ import annotations

Panel = tuple[str, str, dict[str, str]]  # title, unit, legend -> expr
ROW = "row"  # the unit of a row header: a Panel without expressions


def p(title: str, unit: str, **exprs: str) -> Panel:
    return title, unit, exprs


def row(title: str) -> Panel:
    return title, ROW, {}
