"""What every refusal of the API is (docs/api.md, "Errors"): problem+json with its status,
its code, the type URL named after the code and the request's id."""

from __future__ import annotations

from typing import Any

import orjson

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}


async def problem(resp: Any, status: int, code: str, *extensions: str) -> dict[str, Any]:
    """The response is problem+json with `status` and `code`, its members the standard
    ones, `errors` and the named `extensions` (RFC 9457's, the code's own); return its body."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = orjson.loads(await resp.read())
    assert PROBLEM_KEYS <= body.keys() <= PROBLEM_KEYS | {"errors", *extensions}, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://fixup.dev/problems/{code.lower().replace('_', '-')}"
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body
