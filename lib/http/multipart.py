"""Multipart request bodies: the one file part an operation's `Form` names, every edge a 4xx.

A multipart/form-data body must hold exactly one part, named `form.field`, of at most
`form.max_bytes`: anything else is refused before the handler stores a thing (ADR 0026).

- not multipart/form-data: 415;
- declared or read longer than the limit (plus `overhead` for boundaries and headers): 413;
- a part whose headers aiohttp's reader refuses (a control character in a
  Content-Disposition name, a header line it cannot parse), a boundary missing or broken,
  a body that ends before its closing boundary: 400 "the multipart body is malformed";
- a part without a name, or whose name is not printable UTF-8: 400;
- a part of another name, a nested multipart part, or the field twice: 400 naming it.

The whole body is read before the field's bytes are returned, so a malformed tail after a
good part still refuses the request. The file's content is the caller's to check (an
image decoded: lib.storage.images).
"""

from __future__ import annotations

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from lib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from lib.http.body import body_deadline
from lib.http.openapi_io import Form
from lib.storage.base import CapExceeded, read_capped

FORM_DATA = "multipart/form-data"


async def read_form_file(request: web.Request, form: Form, *, overhead: int) -> bytes:
    """The bytes of the part `form.field` of a multipart/form-data body (the module's
    rules), read within HTTP_BODY_TIMEOUT (408 past it)."""
    limit, name = form.max_bytes, form.field
    if request.content_length is not None and request.content_length > limit + overhead:
        raise PayloadTooLarge(f"the `{name}` part may be at most {limit} bytes")
    if request.content_type != FORM_DATA:
        raise UnsupportedMediaType(f"send {FORM_DATA} with an `{name}` part")
    async with body_deadline(request):
        try:
            return await _read_parts(request, name, limit)
        except CapExceeded:
            raise PayloadTooLarge(f"the `{name}` part may be at most {limit} bytes") from None
        except (HttpProcessingError, ValueError):  # aiohttp's reader refusing the body
            raise BadRequest(
                "the multipart body is malformed (a part's headers, a boundary, or its end)"
            ) from None


def _checked_name(part: BodyPartReader, expected: str) -> str:
    name = part.name
    if not name:
        raise BadRequest("every part needs a name (Content-Disposition: form-data; name=...)")
    if not name.isprintable():  # a control character, or bytes that were not UTF-8
        raise BadRequest("a part's name must be printable UTF-8")
    if name != expected:
        raise BadRequest(f"unknown part: the only part accepted is `{expected}`")
    return name


async def _read_parts(request: web.Request, expected: str, limit: int) -> bytes:
    reader = await request.multipart()
    found: bytes | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise BadRequest("a part may not be multipart itself")
        _checked_name(part, expected)
        if found is not None:
            raise BadRequest(f"the `{expected}` part may appear once")
        found = await read_capped(part.read_chunk, limit)
    if found is None:
        raise BadRequest(f"the multipart body has no `{expected}` part")
    return found
