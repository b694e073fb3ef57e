"""Keyset cursors for the lists that grow (docs/api.md, "Cursors"; ADR 0023).

`?page=N` costs what OFFSET costs: every skipped row is read. A list that can grow answers
`meta.next_cursor` too, naming where the page ended (its sort key's value and the id); the
next request passes it back as `?cursor=` and reads the next rows from the index, at the
same cost on every page. A cursor is opaque to clients and bound to its ordering: one
issued for another `orderby`/`sort`, malformed, or not canonical (not one we could have
issued) is a 400. `page` stays for compatibility, bounded at MAX_OFFSET rows.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from lib.errors import FieldError, ValidationFailed
from lib.http.listing import ListQuery, Page, parse_list

Kind = Literal["text", "int", "decimal", "time"]
Value = str | int | Decimal | datetime.datetime | None
MAX_OFFSET = 10_000  # rows skipped by `page` at most: deeper pages use the cursor
MAX_CURSOR = 1024  # characters
INT4 = 2**31


class KeysetListQuery(ListQuery):
    """The list parameters of a list that answers `meta.next_cursor`."""

    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR,
        pattern=r"^[A-Za-z0-9_-]+$",  # url-safe base64: what next_cursor is made of
        description=(
            "`meta.next_cursor` of the previous page (same orderby and sort): the next page "
            f"at the cost of the first. Not with `page`; `page` reaches {MAX_OFFSET} rows deep."
        ),
    )


@dataclass(frozen=True, slots=True)
class After:
    """Where the previous page ended: its last row's sort key value and id."""

    value: Value
    id: uuid.UUID


def keyset_page(
    request: web.Request,
    orderby: dict[str, Kind],
    model: type[KeysetListQuery],
) -> tuple[Page, After | None]:
    """The list parameters and the decoded cursor (None: from the start or at `page`);
    `orderby` maps each whitelisted key (the first is the default) to its value's kind."""
    page = parse_list(request, tuple(orderby), model)
    query: KeysetListQuery = page.query
    if query.cursor is None:
        if page.offset > MAX_OFFSET:
            raise ValidationFailed(
                "page too deep",
                errors=[FieldError("page", f"at most {MAX_OFFSET} rows deep: use the cursor")],
            )
        return page, None
    if "page" in query.model_fields_set:
        raise ValidationFailed(
            "invalid query parameters",
            errors=[FieldError("cursor", "give either cursor or page")],
        )
    return page, decode(query.cursor, page, orderby[page.orderby])


def encode(page: Page, value: Value, row_id: uuid.UUID) -> str:
    plain: Any = value
    if isinstance(value, Decimal):
        plain = str(value)
    elif isinstance(value, datetime.datetime):
        plain = value.isoformat()
    raw = json.dumps([page.orderby, page.sort, plain, str(row_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def next_cursor(page: Page, rows: list[Any], key: str | None = None) -> str | None:
    """The cursor after the last row of a full page (None: this page is the last)."""
    if len(rows) < page.limit:
        return None
    last = rows[-1]
    return encode(page, getattr(last, key or page.orderby), last.id)


def decode(token: str, page: Page, kind: Kind) -> After:
    """The position a cursor names for this ordering; 400 naming `cursor` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        orderby, sort, plain, row_id = json.loads(raw)
        value = _value(plain, kind)
        after = After(value, uuid.UUID(row_id))
    except (binascii.Error, ValueError, TypeError, InvalidOperation, OverflowError):
        raise _problem("not a cursor") from None
    if (orderby, sort) != (page.orderby, page.sort):
        raise _problem("issued for another orderby or sort")
    if encode(page, after.value, after.id) != token:
        raise _problem("not a cursor")
    return after


def _value(plain: Any, kind: Kind) -> Value:
    if plain is None:
        return None
    if kind == "text" and isinstance(plain, str) and "\x00" not in plain:
        return plain
    if kind == "int" and type(plain) is int and -INT4 <= plain < INT4:
        return plain
    if kind == "decimal" and isinstance(plain, str) and (d := Decimal(plain)).is_finite():
        return d
    if kind == "time" and isinstance(plain, str):
        at = datetime.datetime.fromisoformat(plain)
        if at.tzinfo is not None:
            return at
    raise ValueError(kind)


def _problem(why: str) -> ValidationFailed:
    return ValidationFailed("invalid cursor", errors=[FieldError("cursor", why)])


CREATED_AT: dict[str, Kind] = {"created_at": "time"}  # the lists ordered by creation only


def time_after(after: After | None) -> dict[str, Any]:
    """The keyset parameters of a list ordered by created_at (after_id, after_time)."""
    if after is None:
        return {"after_id": None, "after_time": None}
    return {"after_id": after.id, "after_time": after.value}


def list_meta(
    page: Page, after: After | None, rows: list[Any], total: int | None = None
) -> dict[str, Any]:
    """meta of a keyset list: at `page`, {total, limit, page, next_cursor}; after a cursor,
    {limit, next_cursor} (and `total` only when the resource passes one it can afford)."""
    meta: dict[str, Any] = {} if total is None else {"total": total}
    meta["limit"] = page.limit
    if after is None:
        meta["page"] = page.page
    meta["next_cursor"] = next_cursor(page, rows)
    return meta
