"""JSON out: orjson with the API's formats (UUID and Decimal as strings, times RFC 3339 Z).

Datetimes stay orjson's (a Python default would cost ~10x per value): the database gives
UTC-aware values and naive ones are taken as UTC; a datetime in another zone keeps its
offset, so code that makes times itself makes them in UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def decimal_text(value: Decimal) -> str:
    """A Decimal as the API writes it, never in exponent form (Decimal('1E-8') ->
    "0.00000001", Decimal('1E+3') -> "1000"). str() already is that text unless it has
    an exponent, and costs a third of format(value, "f") (parsing the format spec is most
    of that: ~1,270 instructions a value against ~500; ADR 0013)."""
    text = str(value)
    return format(value, "f") if "E" in text else text


def _default(value: Any) -> Any:
    if isinstance(value, UUID):  # asyncpg's UUID is not uuid.UUID for orjson; most common
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=OPTIONS)


def json_response(
    body: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(body=dumps(body), status=status, headers=headers, content_type=content_type)


def data(value: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """The envelope for a single resource: {"data": ...}."""
    return json_response({"data": value}, status=status, headers=headers)
