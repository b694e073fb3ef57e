"""Reusable input field types: what every text field must satisfy before SQL sees it."""

from __future__ import annotations

from typing import Any

from pydantic import StringConstraints

# No C0/C1 control characters (PostgreSQL text cannot hold NUL; none belong in a name).
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"


def single_line(max_length: int, min_length: int = 1) -> StringConstraints:
    """Use as `Annotated[str, single_line(100)]`: trimmed, min..max characters, no control
    characters. Trimmed as str.strip() does (every Unicode whitespace character): the
    blank-text CHECKs of migrations/ trim the same set (docs/patterns.md)."""
    return StringConstraints(
        strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=NO_CONTROL
    )


def omit_default(schema: dict[str, Any]) -> None:
    """`Field(None, json_schema_extra=omit_default)`: an optional field that may be left out
    but is never null; the document must not claim `default: null` for it."""
    schema.pop("default", None)
