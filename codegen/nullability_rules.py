"""What both engines' nullability rules share: a rule per column and how rules combine.

True = may be NULL, False = never NULL, None = no opinion (sqlc's answer stays).
"""

from __future__ import annotations

from collections.abc import Iterable

Rule = bool | None
Catalog = dict[str, dict[str, bool]]  # table -> column -> NOT NULL


def any_true(rules: Iterable[Rule]) -> Rule:
    """A strict function or operator: NULL when an input may be; never when none can be."""
    values = list(rules)
    if any(r is True for r in values):
        return True
    return False if all(r is False for r in values) else None


def one_false(rules: Iterable[Rule]) -> Rule:
    """COALESCE, GREATEST/LEAST: NULL only when every argument is."""
    values = list(rules)
    if any(r is False for r in values):
        return False
    return True if values and all(r is True for r in values) else None
