"""Reusable input field types, and the one rule for text SQL can store (`storable`)."""

from __future__ import annotations

import re
from collections import deque
from decimal import Decimal
from typing import Any

from pydantic import StringConstraints

from lib.errors import FieldError

# No C0/C1 control characters (PostgreSQL text cannot hold NUL; none belong in a name).
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"


def single_line(max_length: int, min_length: int = 1) -> StringConstraints:
    """Use as `Annotated[str, single_line(100)]`: trimmed, min..max characters, no control
    characters. Trimmed as str.strip() does (every Unicode whitespace character): the
    blank-text CHECKs of migrations/ trim the same set (docs/recipes.md, "Add a column")."""
    return StringConstraints(
        strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=NO_CONTROL
    )


def omit_default(schema: dict[str, Any]) -> None:
    """`Field(None, json_schema_extra=omit_default)`: an optional field that may be left out
    but is never null; the document must not claim `default: null` for it."""
    schema.pop("default", None)


# What neither database can store in text: NUL (PostgreSQL's text and jsonb refuse it) and
# the surrogate code points U+D800..U+DFFF, which have no UTF-8 encoding (asyncpg and
# aiomysql cannot send them; MariaDB's utf8mb4 holds every other code point).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "contains a character the database cannot store (NUL or a lone surrogate)"


def storable(text: str) -> bool:
    return UNSTORABLE.search(text) is None


def printable_name(name: str) -> str:
    """A client's field name as an error may show it: escaped where it holds NUL or a
    surrogate (the problem body must itself be valid UTF-8)."""
    return name if storable(name) else name.encode("unicode_escape").decode("ascii")


def unstorable_fields(value: Any) -> list[FieldError]:
    """Every string of a parsed JSON value, object keys included, that SQL could not store,
    named by its dotted path (`items.0.name`, as the validation errors name fields).
    Iterative: a body may nest as deep as the JSON parser allows."""
    errors: list[FieldError] = []
    pending: deque[tuple[str, Any]] = deque([("", value)])
    while pending:
        field, item = pending.popleft()
        if isinstance(item, str):
            if not storable(item):
                errors.append(FieldError(field or "body", UNSTORABLE_MESSAGE))
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{field}.{printable_name(key)}" if field else printable_name(key)
                if not storable(key):
                    errors.append(FieldError(name, f"the name {UNSTORABLE_MESSAGE}"))
                pending.append((name, child))
        elif isinstance(item, list):
            pending.extend((f"{field}.{i}" if field else str(i), c) for i, c in enumerate(item))
    return errors


def json_number(value: Any) -> Any:
    """`Annotated[Decimal, BeforeValidator(json_number)]`: a decimal the API documents as a
    JSON number. A string, numeric or not, and a boolean are refused (a Decimal would take
    "4.5" even in strict mode); a number becomes the Decimal it is written as."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    return Decimal(str(value))
