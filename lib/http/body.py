"""Strict JSON request bodies: 415, 413, 400 or 403 before the handler sees a field.

JSON only (415), 1 MiB (413), well-formed (400), every string storable (400), no unknown
fields (400), no fields the caller may not set (403), then the pydantic model's rules in
strict mode (400): a JSON boolean is never a number and a numeric string never an integer
or a float (docs/api.md, "JSON values").

A body must arrive whole within HTTP_BODY_TIMEOUT of the handler's first read of it
(`body_deadline`), else 408 and the connection closed: handlers read their body before they
touch the database, so a client trickling it never holds a database connection. A client
that goes away mid-body is 499 CLIENT_CLOSED_REQUEST (counted and logged as its doing, as
NGINX does), never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from lib.config import ServiceSettings
from lib.errors import (
    BadRequest,
    ClientClosedRequest,
    FieldError,
    Forbidden,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)
from lib.http.fields import unstorable_fields
from lib.http.keys import SETTINGS

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 1024 * 1024
BODY_TIMEOUT: float = ServiceSettings.model_fields["http_body_timeout"].default


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Reading the body inside this takes at most HTTP_BODY_TIMEOUT (the app's settings;
    an app without them, in tests, gets the default), else 408 REQUEST_TIMEOUT; the
    connection lost on the way (aiohttp: ConnectionResetError) is 499."""
    seconds = request.app[SETTINGS].http_body_timeout if SETTINGS in request.app else BODY_TIMEOUT
    try:
        async with asyncio.timeout(seconds) as deadline:
            yield
    except TimeoutError:
        if not deadline.expired():  # a timeout of something else
            raise
        raise RequestTimeout(f"the request body was not received within {seconds:g} s") from None
    except ConnectionResetError:
        raise ClientClosedRequest("the client went away before its body arrived") from None


async def read_body(request: web.Request) -> bytes:
    """The whole body (aiohttp keeps it: a second read returns the same bytes at once)."""
    async with body_deadline(request):
        return await request.read()


def field_errors(exc: ValidationError) -> list[FieldError]:
    result = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        result.append(FieldError(field, message))
    return result


def _loads(raw: bytes | str, what: str) -> Any:
    """orjson's verdict, except that JSON it refuses only for a lone surrogate escape
    (`"\\ud800"`: well-formed, but no UTF-8 string) is named field by field."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        errors = unstorable_fields(json.loads(raw))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        errors = []
    if errors:
        raise ValidationFailed(f"the {what} is invalid", errors=errors)
    raise BadRequest(f"the {what} is not valid JSON")


def parse_json(
    raw: bytes | str, model: type[M], *, what: str = "body", forbidden: frozenset[str] = frozenset()
) -> M:
    """A JSON object as `model`, strictly (the module's rules after the size and the type);
    `what` names it in the details ("body", "frame")."""
    payload = _loads(raw, what)
    if not isinstance(payload, dict):
        raise ValidationFailed(f"the {what} must be a JSON object")
    denied = sorted(forbidden & payload.keys())
    if denied:
        raise Forbidden(
            f"you may not set: {', '.join(denied)}",
            errors=[FieldError(name, "may not be set by the caller") for name in denied],
        )
    # a NUL or a surrogate can only arrive escaped (\u....): without one, nothing to look for
    escaped = b"\\u" in raw if isinstance(raw, bytes) else "\\u" in raw
    if escaped and (unstorable := unstorable_fields(payload)):
        raise ValidationFailed(f"the {what} is invalid", errors=unstorable)
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise ValidationFailed(f"the {what} is invalid", errors=field_errors(exc)) from None


async def parse_body(
    request: web.Request, model: type[M], *, forbidden: frozenset[str] = frozenset()
) -> M:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge(f"the body may be at most {MAX_BODY} bytes")
    try:
        raw = await read_body(request)
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body may be at most {MAX_BODY} bytes") from None
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body may be at most {MAX_BODY} bytes")
    return parse_json(raw, model, forbidden=forbidden)
