"""Errors every layer may raise; lib.http turns them into RFC 9457 problem+json.

Codes and statuses are the table of docs/api.md ("Errors"). A module raises the subclass
that fits; only the HTTP layer knows how it is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class AppError(Exception):
    status = 500
    code = "INTERNAL_ERROR"
    title = "Internal error"
    closes_connection = False  # True: its answer ends the connection (the framing is lost)

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        """`extensions`: RFC 9457 extension members of the problem (what the client needs
        to go on, as a second-factor challenge); never a secret of the server."""
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []
        self.headers = headers or {}
        self.extensions = extensions or {}


class ValidationFailed(AppError):
    status, code, title = 400, "VALIDATION_ERROR", "Validation failed"


class BadRequest(AppError):
    status, code, title = 400, "BAD_REQUEST", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "UNAUTHORIZED", "Unauthorized"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="fixup"'})


class Forbidden(AppError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class Conflict(AppError):
    status, code, title = 409, "CONFLICT", "Conflict"


class PreconditionFailed(AppError):
    status, code, title = 412, "PRECONDITION_FAILED", "Precondition failed"


class ClientClosedRequest(AppError):
    """The client went away before its request body arrived whole (lib/http/body.py): its
    doing, not a server error. Counted and logged as NGINX does, 499; nobody reads it."""

    status, code, title = 499, "CLIENT_CLOSED_REQUEST", "Client closed request"
    closes_connection = True


class RequestTimeout(AppError):
    """The client took longer than allowed to send the request body (lib/http/body.py)."""

    status, code, title = 408, "REQUEST_TIMEOUT", "Request timeout"
    closes_connection = True


class PayloadTooLarge(AppError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "Payload too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"


class PreconditionRequired(AppError):
    status, code, title = 428, "PRECONDITION_REQUIRED", "Precondition required"


class DependencyRefused(AppError):
    """Another service refused the credentials forwarded to it (401/403): a mismatch
    between the services (keys, roles), not the caller's fault and not an outage."""

    status, code, title = 502, "DEPENDENCY_REFUSED", "Dependency refused the call"


class _RetryLater(AppError):
    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: float = 1.0,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(
            detail, headers={"Retry-After": str(self.retry_after)}, extensions=extensions
        )


class RateLimited(_RetryLater):
    status, code, title = 429, "RATE_LIMIT_EXCEEDED", "Too many requests"


class CircuitOpen(_RetryLater):
    status, code, title = 503, "CIRCUIT_OPEN", "Dependency unavailable"


class ServiceUnavailable(_RetryLater):
    status, code, title = 503, "SERVICE_UNAVAILABLE", "Service unavailable"
