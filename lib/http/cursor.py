"""Keyset cursors for the lists that grow (docs/api.md, "Cursors"; ADR 0023).

`?page=N` costs what OFFSET costs: every skipped row is read. A list that can grow answers
`meta.next_cursor` too, naming where the page ended (its sort key's value and the id); the
next request passes it back as `?cursor=` and reads the next rows from the index, at the
same cost on every page. A cursor is opaque to clients and bound to its ordering: one
issued for another `orderby`/`sort`, malformed, or not canonical (not one we could have
issued) is a 400. `page` stays for compatibility, bounded at MAX_OFFSET rows.

Every list is one generated sorted query (`fixup: sort`, codegen/sort_variants.py) read
through `list_page`: it decides offset or cursor once, returns the typed parameters the
generated function takes, and `ListPage.meta` builds the cursor and `meta`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Literal, TypeVar, cast

from aiohttp import web
from pydantic import Field

from lib.db.runtime import Sorting
from lib.errors import FieldError, ValidationFailed
from lib.http.listing import ListQuery, Page, parse_list

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


def _problem(why: str) -> ValidationFailed:
    return ValidationFailed("invalid cursor", errors=[FieldError("cursor", why)])


Q = TypeVar("Q", bound=ListQuery)
K = TypeVar("K", bound=str)
A = TypeVar("A")
Tie = uuid.UUID | int | str


@dataclass(frozen=True, slots=True)
class ListPage(Generic[Q, K, A]):
    """A list request, decided once: the validated parameters (`query`, the resource's own
    model), the sort key and direction the generated function takes, and where to read from:
    `after` a cursor's position (offset 0, no page number) or `offset` at `page`. `meta`
    answers for the rows read."""

    query: Q
    orderby: K
    sort: Literal["asc", "desc"]
    limit: int
    page: int | None  # None after a cursor
    offset: int
    after: A | None
    sorting: Sorting[K, A]

    def meta(self, rows: list[Any], total: int | None = None) -> dict[str, Any]:
        """At `page`: {total, limit, page[, next_cursor]}; after a cursor: {limit,
        next_cursor} (with `total` only when the resource passes one it can afford). An
        offset-only list has no cursor; its total is always given."""
        if not self.sorting.keyset:
            return {"total": total or 0, "limit": self.limit, "page": self.page}
        meta: dict[str, Any] = {} if total is None else {"total": total}
        meta["limit"] = self.limit
        if self.page is not None:
            meta["page"] = self.page
        meta["next_cursor"] = None
        if len(rows) >= self.limit and rows:
            last, key = rows[-1], self.sorting.keys[self.orderby]
            position = Page(self.limit, 1, self.orderby, self.sort, None)
            tie = getattr(last, self.sorting.tie or "id")
            meta["next_cursor"] = encode(position, getattr(last, key.field), tie)
        return meta


def list_page(
    request: web.Request,
    sorting: Sorting[K, A],
    model: type[Q],
) -> ListPage[Q, K, A]:
    """The list parameters against a generated sorted list (`<QUERY>_SORTING`): orderby one
    of its keys (the first is the default), a direction the key sorts in (`model`'s `sort`
    default is the default), and for a keyset list `?cursor=` (not with `page`) or `page`
    at most MAX_OFFSET rows deep; 400 otherwise."""
    page = parse_list(request, tuple(sorting.keys), model)
    query: Q = page.query
    orderby = cast(K, page.orderby)  # one of sorting.keys: parse_list checked it
    key = sorting.keys[orderby]
    if page.sort not in key.directions:
        raise ValidationFailed(
            "invalid query parameters",
            errors=[FieldError("sort", f"orderby {orderby} sorts {' or '.join(key.directions)}")],
        )
    cursor = getattr(query, "cursor", None) if sorting.keyset else None
    if cursor is None:
        if sorting.keyset and page.offset > MAX_OFFSET:
            raise ValidationFailed(
                "page too deep",
                errors=[FieldError("page", f"at most {MAX_OFFSET} rows deep: use the cursor")],
            )
        return ListPage(
            query, orderby, page.sort, page.limit, page.page, page.offset, None, sorting
        )
    if "page" in query.model_fields_set:
        raise ValidationFailed(
            "invalid query parameters", errors=[FieldError("cursor", "give either cursor or page")]
        )
    value, tie = decode(cursor, page, key.kind, sorting.tie_kind or "uuid")
    # the value was checked to be of the key's kind, the tie of the tie-breaker's: the
    # generated `after` tuple's types
    after = cast(A, (value, tie))
    return ListPage(query, orderby, page.sort, page.limit, None, 0, after, sorting)


def encode(page: Page, value: Any, tie: Tie) -> str:
    """The cursor after (value, tie) in this ordering (a uuid as its text)."""
    plain: Any = value
    if isinstance(value, Decimal):
        plain = str(value)
    elif isinstance(value, datetime.datetime | datetime.date):
        plain = value.isoformat()
    elif isinstance(value, uuid.UUID):
        plain = str(value)
    tie_plain = str(tie) if isinstance(tie, uuid.UUID) else tie
    raw = json.dumps([page.orderby, page.sort, plain, tie_plain], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, page: Page, kind: str, tie_kind: str) -> tuple[Any, Tie]:
    """The (value, tie) a cursor names for this ordering, of the key's and tie-breaker's
    kinds the plugin reports; 400 naming `cursor` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        orderby, sort, plain, tie_plain = json.loads(raw)
        value = _value(plain, kind)
        tie = _value(tie_plain, tie_kind)
        if tie is None:
            raise ValueError("tie")
    except (binascii.Error, ValueError, TypeError, InvalidOperation, OverflowError):
        raise _problem("not a cursor") from None
    if (orderby, sort) != (page.orderby, page.sort):
        raise _problem("issued for another orderby or sort")
    if encode(page, value, tie) != token:
        raise _problem("not a cursor")
    return value, tie


def _value(plain: Any, kind: str) -> Any:
    if plain is None:
        return None
    if kind == "text" and isinstance(plain, str) and "\x00" not in plain:
        return plain
    if kind == "int" and type(plain) is int and -INT4 <= plain < INT4:
        return plain
    if kind == "int64" and type(plain) is int and -(2**63) <= plain < 2**63:
        return plain
    if kind == "decimal" and isinstance(plain, str) and (d := Decimal(plain)).is_finite():
        return d
    if kind == "time" and isinstance(plain, str):
        at = datetime.datetime.fromisoformat(plain)
        if at.tzinfo is not None:
            return at
    if kind == "uuid" and isinstance(plain, str):
        return uuid.UUID(plain)
    if kind == "date" and isinstance(plain, str):
        return datetime.date.fromisoformat(plain)
    if kind == "bool" and isinstance(plain, bool):
        return plain
    raise ValueError(kind)
