"""RFC 9457 problem+json responses for lib.errors, and for aiohttp's own HTTP errors."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lib.errors import AppError
from lib.http.jsonio import json_response

PROBLEM_TYPE = "application/problem+json"

# aiohttp raises these itself (routing, body size); map them onto docs/api.md's "Errors"
HTTP_CODES = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHORIZED", "Unauthorized"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    408: ("REQUEST_TIMEOUT", "Request timeout"),
    409: ("CONFLICT", "Conflict"),
    413: ("PAYLOAD_TOO_LARGE", "Payload too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
    429: ("RATE_LIMIT_EXCEEDED", "Too many requests"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": f"https://fixup.dev/problems/{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    body |= extensions or {}
    return json_response(body, status=status, headers=headers, content_type=PROBLEM_TYPE)


def from_app_error(error: AppError, request_id: str) -> web.Response:
    response = problem(
        error.status,
        error.code,
        error.title,
        error.detail,
        request_id,
        errors=[{"field": e.field, "message": e.message} for e in error.errors],
        headers=error.headers,
        extensions=error.extensions,
    )
    if error.closes_connection:
        response.force_close()
    return response


def code_of(status: int) -> str:
    """The problem code aiohttp's own error with `status` is answered with."""
    return HTTP_CODES.get(status, ("INTERNAL_ERROR", ""))[0]


def from_http_exception(exc: web.HTTPException, request_id: str) -> web.Response:
    code, title = HTTP_CODES.get(exc.status, ("INTERNAL_ERROR", "Internal error"))
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else title
    return problem(exc.status, code, title, detail, request_id, headers=headers)


def internal_error(request_id: str) -> web.Response:
    return problem(
        500, "INTERNAL_ERROR", "Internal error", "An unexpected error occurred.", request_id
    )
