"""Strict request bodies: JSON only (415), 1 MiB (413), well-formed (400), no unknown
fields (400), no fields the caller may not set (403), then the pydantic model's rules."""

from __future__ import annotations

from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from lib.errors import (
    BadRequest,
    FieldError,
    Forbidden,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 1024 * 1024


def field_errors(exc: ValidationError) -> list[FieldError]:
    result = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        result.append(FieldError(field, message))
    return result


async def parse_body(
    request: web.Request, model: type[M], *, forbidden: frozenset[str] = frozenset()
) -> M:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge(f"the body may be at most {MAX_BODY} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body may be at most {MAX_BODY} bytes") from None
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body may be at most {MAX_BODY} bytes")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ValidationFailed("the body must be a JSON object")
    denied = sorted(forbidden & payload.keys())
    if denied:
        raise Forbidden(
            f"you may not set: {', '.join(denied)}",
            errors=[FieldError(name, "may not be set by the caller") for name in denied],
        )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed("the body is invalid", errors=field_errors(exc)) from None
