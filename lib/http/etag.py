"""Optimistic concurrency: `ETag: "<version>"`; PATCH/DELETE require a matching If-Match."""

from __future__ import annotations

import re

from aiohttp import web

from lib.errors import FieldError, PreconditionFailed, PreconditionRequired, ValidationFailed

_TAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*\Z')


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_version(request: web.Request) -> int:
    """The version the caller last saw: 428 when If-Match is missing, 400 when malformed."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionRequired("this request needs an If-Match header with the ETag")
    match = _TAG.match(header)
    if match is None:
        raise ValidationFailed(
            "malformed If-Match", errors=[FieldError("If-Match", 'expected "<version>"')]
        )
    return int(match.group(1))


def stale(current: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"the resource changed (current ETag {etag(current)}); fetch it and retry"
    )
