"""The revocation record asked over HTTP: lib.auth.revocation's fallback without Redis.

ADR 0010: while Redis is away, the other services ask users' GET /v1/auth/revocation
with the very token they check (there are no service accounts): users answers its
subject's not-before time from its database, or 401 when the token is revoked or invalid
there. Each call is bounded (REVOCATION_RECORD_TIMEOUT) and goes through a breaker (open
for REVOCATION_RETRY seconds after REVOCATION_RECORD_FAILURES failures in a row), so an
outage of both answers 503 at once instead of hanging; the caller caches the answers as
it does Redis's.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import orjson

from lib.errors import CircuitOpen, ServiceUnavailable, Unauthorized
from lib.logging import get_logger
from lib.resilience.breaker import CircuitBreaker

log = get_logger("lib.auth")
PATH = "/v1/auth/revocation"


class RevocationRecord:
    """`await record(subject, token)`: the not-before (ms, 0: none) users holds."""

    def __init__(self, base_url: str, *, timeout: float, failures: int, retry: float) -> None:
        self.url = base_url.rstrip("/") + PATH
        self.timeout = timeout
        self.breaker = CircuitBreaker(
            "users-revocations",
            failure_threshold=failures,
            reset_timeout=retry,
            failure_exceptions=(ServiceUnavailable,),
        )
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, subject: uuid.UUID, token: str) -> int:
        try:
            async with self.breaker:
                body = await self._ask(token)
        except CircuitOpen as exc:
            raise ServiceUnavailable(
                "token revocations cannot be checked", retry_after=exc.retry_after
            ) from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("user_id") != str(subject):
            raise ServiceUnavailable("token revocations cannot be checked (bad answer)")
        not_before = data.get("not_before_ms")
        if not isinstance(not_before, int) or isinstance(not_before, bool):
            raise ServiceUnavailable("token revocations cannot be checked (bad answer)")
        return not_before

    async def _ask(self, token: str) -> Any:
        if self._session is None:  # created lazily: it must belong to the running loop
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self._session.get(self.url, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("revocation_record_unavailable", error=repr(exc))
            raise ServiceUnavailable("token revocations cannot be checked") from None
        if status == 401:  # revoked, or not a token users accepts: the same to us
            raise Unauthorized(_detail(raw))
        if status != 200:
            raise ServiceUnavailable(f"token revocations cannot be checked (users {status})")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ServiceUnavailable("token revocations cannot be checked (bad answer)") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _detail(raw: bytes) -> str:
    """users' own detail ("token revoked", "token expired"), else "invalid token"."""
    try:
        detail = orjson.loads(raw).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        return "invalid token"
    return detail if detail in ("token revoked", "token expired") else "invalid token"
