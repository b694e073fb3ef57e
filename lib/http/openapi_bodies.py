"""The bodies every OpenAPI operation shares: problem+json, `data`, pages, keyset pages.

The error statuses' texts live here too: one place for what every document repeats."""

from __future__ import annotations

from typing import Any

ERROR_TEXT = {
    400: "Invalid input (VALIDATION_ERROR or BAD_REQUEST)",
    401: "Missing or invalid token (UNAUTHORIZED)",
    403: "Not allowed (FORBIDDEN)",
    404: "Not found (NOT_FOUND)",
    409: "Conflict (CONFLICT)",
    412: "Stale If-Match (PRECONDITION_FAILED)",
    413: "Body too large (PAYLOAD_TOO_LARGE)",
    415: "Body is not JSON (UNSUPPORTED_MEDIA_TYPE)",
    428: "If-Match missing (PRECONDITION_REQUIRED)",
    429: "Rate limited (RATE_LIMIT_EXCEEDED), see Retry-After",
    502: "Another service refused the forwarded credentials (DEPENDENCY_REFUSED)",
    503: "Unavailable (SERVICE_UNAVAILABLE / CIRCUIT_OPEN), see Retry-After",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def data_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["data"], "properties": {"data": item}}


def page_schema(item: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "type": "object",
        "required": ["total", "limit", "page"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "page": {"type": "integer", "minimum": 1},
        },
    }
    return {
        "type": "object",
        "required": ["data", "meta"],
        "properties": {"data": {"type": "array", "items": item}, "meta": meta},
    }


def cursor_page_schema(item: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "type": "object",
        "required": ["limit", "next_cursor"],
        "properties": {
            "limit": {"type": "integer", "minimum": 1},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Continues in the same direction; null: no more for now.",
            },
        },
    }
    return {
        "type": "object",
        "required": ["data", "meta"],
        "properties": {"data": {"type": "array", "items": item}, "meta": meta},
    }


def keyset_page_schema(item: dict[str, Any]) -> dict[str, Any]:
    """A list with both (lib/http/cursor.py): `page` only when asked by page, and `total`
    where the resource can count cheaply; `next_cursor` always."""
    body = cursor_page_schema(item)
    offset_meta = page_schema(item)["properties"]["meta"]["properties"]
    body["properties"]["meta"]["properties"] |= {k: offset_meta[k] for k in ("total", "page")}
    return body
