"""lib/http/cursor.py: a cursor names one (value, tie-breaker) of one ordering, round-trips exactly,
and anything else — another ordering, a value of the wrong type, a non-canonical spelling —
is a 400 naming `cursor`."""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from lib.errors import ValidationFailed
from lib.http.cursor import decode, encode
from lib.http.listing import Page

ID = uuid.UUID("abcdef00-0000-4000-8000-00000000000f")
AT = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)


def page(orderby: str = "last_name", sort: str = "asc", limit: int = 2) -> Page:
    return Page(limit, 1, orderby, sort, None)  # type: ignore[arg-type]


def raw(*items: Any) -> str:
    text = json.dumps(list(items), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("text", "O'Brien %_\\"),
        ("text", None),
        ("int", 0),
        ("int", -(2**31)),
        ("int", 2**31 - 1),
        ("decimal", Decimal("1234.50")),
        ("time", AT),
    ],
)
def test_round_trip(kind: str, value: Any) -> None:
    token = encode(page(), value, ID)
    assert decode(token, page(), kind, "uuid") == (value, ID)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        raw("last_name", "asc", "x"),  # three items
        raw("last_name", "asc", "x", "not-a-uuid"),
        raw("last_name", "asc", "x", None),  # no tie-breaker
        raw("last_name", "asc", 5, str(ID)),  # an int for a text key
        raw("last_name", "asc", "a\x00b", str(ID)),  # NUL: PostgreSQL cannot take it
        raw("last_name", "desc", "x", str(ID)),  # another sort
        raw("first_name", "asc", "x", str(ID)),  # another key
        raw("last_name", "asc", "x", str(ID)) + "==",  # padding: not what we issue
        raw("last_name", "asc", "x", str(ID).upper()),  # not canonical
        base64.urlsafe_b64encode(b'["last_name", "asc", "x", "' + str(ID).encode() + b'"]')
        .decode()
        .rstrip("="),  # spaces: not canonical
    ],
)
def test_not_ours_is_a_400_naming_cursor(token: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode(token, page(), "text", "uuid")
    assert [e.field for e in caught.value.errors] == ["cursor"]


@pytest.mark.parametrize(
    ("kind", "plain"),
    [
        ("int", True),  # a boolean is not an integer
        ("int", 2**31),
        ("int", 1.5),
        ("decimal", "NaN"),
        ("decimal", "Infinity"),
        ("decimal", "abc"),
        ("decimal", 5),
        ("time", "2026-01-02T03:04:05"),  # no zone
        ("time", "yesterday"),
    ],
)
def test_values_of_the_wrong_kind(kind: str, plain: Any) -> None:
    with pytest.raises(ValidationFailed):
        decode(raw("last_name", "asc", plain, str(ID)), page(), kind, "uuid")
