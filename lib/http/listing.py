"""List parameters: limit, page, orderby (a whitelist), sort; anything else is a 400.

docs/api.md, "List parameters": limit 1..1000 (default 100), page 1-based."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lib.errors import FieldError, ValidationFailed
from lib.http.body import field_errors
from lib.http.fields import printable_name, unstorable_fields


class ListQuery(BaseModel):
    """The common list parameters; a resource subclasses it to add filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(100, ge=1, le=1000, description="Page size, 1..1000.")
    page: int = Field(1, ge=1, le=1_000_000, description="1-based page number.")
    orderby: str | None = Field(None, description="Sort key (per-resource whitelist).")
    sort: Literal["asc", "desc"] = Field("asc", description="Sort direction.")


class State(StrEnum):
    """Which rows a list of archived-not-deleted rows shows (ADR 0058)."""

    active = "active"
    archived = "archived"
    all = "all"


# the generated lists' `archived` argument: false the live rows, true the archived, NULL all
ARCHIVED: dict[State, bool | None] = {State.active: False, State.archived: True, State.all: None}


def state_field() -> Any:
    """A list's `state` filter: the live rows unless an ADMIN asks for the others (its
    `x-roles`: lib/http/access.py checks who gives it, 401/403)."""
    return Field(
        State.active,
        description="Live rows (active, the default), archived ones, or all. ADMIN only.",
        json_schema_extra={"x-roles": ["ADMIN"]},
    )


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    page: int
    orderby: str
    sort: Literal["asc", "desc"]
    query: Any  # the validated model, for the resource's filters

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def meta(self, total: int) -> dict[str, int]:
        return {"total": total, "limit": self.limit, "page": self.page}


Q = TypeVar("Q", bound=BaseModel)


def parse_query(request: web.Request, model: type[Q]) -> Q:
    """The query string as `model` (extra="forbid": unknown names are 400); a parameter
    given twice, or holding what SQL cannot store (`%00`), is 400 too."""
    raw: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise ValidationFailed(
                "repeated query parameter",
                errors=[FieldError(printable_name(key), "given more than once")],
            )
        raw[key] = values[0]
    if unstorable := unstorable_fields(raw):
        raise ValidationFailed("invalid query parameters", errors=unstorable)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("invalid query parameters", errors=field_errors(exc)) from None


# Parsed list parameters by (model, orderby, raw query string): clients ask for
# the same few URLs again and again, and a parse (the query's MultiDict, the text check,
# pydantic) costs ~10 µs a request. Values are immutable (a frozen Page holding a frozen
# model whose fields are scalars), errors are never cached, and the oldest entry goes when
# the cache is full, so a scan of distinct URLs cannot grow it (ADR 0013).
PAGES_CACHED = 1024
_pages: dict[tuple[type[ListQuery], tuple[str, ...], str], Page] = {}


def parse_list(
    request: web.Request,
    orderby: tuple[str, ...],
    model: type[ListQuery] = ListQuery,
) -> Page:
    """`orderby[0]` is the default key; `model`'s `sort` default is the default direction
    (what its OpenAPI document declares)."""
    key = (model, orderby, request.query_string)
    page = _pages.get(key)
    if page is None:
        page = _parse_list(request, orderby, model)
        if len(_pages) >= PAGES_CACHED:
            del _pages[next(iter(_pages))]
        _pages[key] = page
    return page


def _parse_list(
    request: web.Request,
    orderby: tuple[str, ...],
    model: type[ListQuery],
) -> Page:
    query = parse_query(request, model)
    key = orderby[0] if query.orderby is None else query.orderby
    if key not in orderby:
        raise ValidationFailed(
            "invalid query parameters",
            errors=[FieldError("orderby", f"must be one of: {', '.join(orderby)}")],
        )
    return Page(query.limit, query.page, key, query.sort, query)


def like_pattern(search: str | None) -> str | None:
    """A user's search text taken literally inside `ILIKE '%' || $n || '%'`: its own `%`,
    `_` and `\\` escaped (else `search=%` would match every row)."""
    if search is None:
        return None
    return search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
