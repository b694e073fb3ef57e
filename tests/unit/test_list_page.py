"""lib.http.cursor.list_page against a generated sorted list's Sorting: offset or cursor
decided once, the typed parameters the generated function takes, and meta's cursor read
back to the same position for every value kind the plugin reports."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pytest
from aiohttp.test_utils import make_mocked_request
from pydantic import Field

from lib.db.runtime import Sorting, SortKey
from lib.errors import ValidationFailed
from lib.http.cursor import MAX_OFFSET, KeysetListQuery, list_page
from lib.http.listing import ListQuery

Key = Literal["name", "price", "day", "big", "ref"]
After = tuple[str | Decimal | datetime.date | int | uuid.UUID | None, uuid.UUID]
BOTH = ("asc", "desc")
KEYSET: Sorting[Key, After] = Sorting(
    keys={
        "name": SortKey("name", "text", False, BOTH),
        "price": SortKey("price", "decimal", True, BOTH),
        "day": SortKey("day", "date", False, ("desc",)),
        "big": SortKey("big", "int64", False, BOTH),
        "ref": SortKey("ref", "uuid", False, BOTH),
    },
    tie="id",
    tie_kind="uuid",
    keyset=True,
)
OFFSET: Sorting[Literal["name"], None] = Sorting(
    keys={"name": SortKey("name", "text", False, BOTH)}, tie="id", tie_kind="uuid", keyset=False
)
ID = uuid.UUID("abcdef00-0000-4000-8000-00000000000f")


class Things(KeysetListQuery):
    orderby: Key | None = Field(None)
    color: str | None = Field(None)


@dataclass
class Row:
    id: uuid.UUID
    name: str
    price: Decimal | None
    day: datetime.date
    big: int
    ref: uuid.UUID


ROW = Row(ID, "b", None, datetime.date(2026, 1, 2), 2**40, uuid.UUID(int=7))


def request(query: str) -> Any:
    return make_mocked_request("GET", f"/v1/things?{query}")


def test_offset_page_is_typed_and_meta_has_page_and_total() -> None:
    lp = list_page(request("limit=2&page=3&color=red"), KEYSET, Things)
    assert (lp.orderby, lp.sort, lp.limit, lp.page, lp.offset, lp.after) == (
        "name",
        "asc",
        2,
        3,
        4,
        None,
    )
    assert lp.query.color == "red"  # the resource's own model, not Any
    assert lp.meta([ROW], 9) == {"total": 9, "limit": 2, "page": 3, "next_cursor": None}
    plain = list_page(request("sort=desc"), OFFSET, ListQuery)
    assert plain.meta([], None) == {"total": 0, "limit": 100, "page": 1}


@pytest.mark.parametrize("key", ["name", "price", "big", "ref", "day"])
def test_a_cursor_reads_back_to_the_last_row(key: str) -> None:
    sort = "desc" if key == "day" else "asc"
    first = list_page(request(f"limit=1&orderby={key}&sort={sort}"), KEYSET, Things)
    token = first.meta([ROW])["next_cursor"]
    assert token is not None
    after = list_page(request(f"limit=1&orderby={key}&sort={sort}&cursor={token}"), KEYSET, Things)
    assert after.after == (getattr(ROW, key), ID)
    assert (after.page, after.offset) == (None, 0)
    assert after.meta([], None) == {"limit": 1, "next_cursor": None}  # no total, no page


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("orderby=day&sort=asc", "sort"),  # a direction the key does not sort in
        ("orderby=color", "orderby"),
        ("cursor=abc&page=2", "cursor"),
        (f"page={MAX_OFFSET // 100 + 2}", "page"),
        ("cursor=bm90LWpzb24", "cursor"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(query: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        list_page(request(query), KEYSET, Things)
    assert [e.field for e in info.value.errors] == [field]


def test_a_cursor_of_another_key_or_direction_is_refused() -> None:
    token = list_page(request("limit=1&orderby=name"), KEYSET, Things).meta([ROW])["next_cursor"]
    with pytest.raises(ValidationFailed, match="invalid cursor"):
        list_page(request(f"limit=1&orderby=name&sort=desc&cursor={token}"), KEYSET, Things)
