"""What a handler reads of its request itself: the caller (401 without one), path parameters."""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.auth.principal import Principal
from lib.errors import FieldError, Unauthorized, ValidationFailed
from lib.http.fields import UNSTORABLE_MESSAGE, storable
from lib.http.keys import principal_of


def authenticated(request: web.Request) -> Principal:
    principal = principal_of(request)
    if principal is None:
        raise Unauthorized("authentication required")
    return principal


def path_uuid(request: web.Request, name: str = "id") -> uuid.UUID:
    raw = request.match_info[name]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed(
            f"{name} must be a UUID", errors=[FieldError(name, "must be a UUID")]
        ) from None


def path_text(request: web.Request, name: str) -> str:
    """A path parameter that is not an id, as text: `%00` in it is a 400 naming it, as in
    a body or a query string (a surrogate cannot arrive: undecodable escapes stay as
    they are)."""
    raw = request.match_info[name]
    if not storable(raw):
        raise ValidationFailed(f"{name} is invalid", errors=[FieldError(name, UNSTORABLE_MESSAGE)])
    return raw
