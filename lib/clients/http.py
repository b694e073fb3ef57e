"""JSON client of another HTTP service: timeout, retries, breaker, the caller's token.

One shared aiohttp session per dependency; retries for idempotent methods only; the
caller's Authorization and X-Request-ID forwarded (there are no service accounts); with
tracing on, one client span per logical call and its `traceparent` sent.

An answer of the service (any 2xx/4xx) is returned as `Reply` and counts as a success for
the breaker, except that a 401/403 raises DependencyRefused (502: the caller's token was
good enough for us, so the services disagree) — still an answer, so not a breaker
failure and not retried; a refused connection, a timeout or a 5xx raises
ServiceUnavailable and counts as a failure; while the breaker is open every call raises
CircuitOpen without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from lib import tracing
from lib.errors import AppError, DependencyRefused, ServiceUnavailable
from lib.forwarding import forwarded_headers
from lib.metrics import BREAKER_STATE
from lib.resilience.breaker import BreakerState, CircuitBreaker
from lib.resilience.retry import retry

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any  # the decoded JSON, or None when the answer had no JSON body


def gauge_breaker(service: str, dependency: str, breaker: CircuitBreaker) -> None:
    """Report `breaker`'s state as circuit_breaker_state{service, dependency}."""

    def report(_: str, state: BreakerState) -> None:
        BREAKER_STATE.labels(service, dependency).set(breaker.state_value())

    breaker.on_state_change = report
    BREAKER_STATE.labels(service, dependency).set(breaker.state_value())


class JsonHttpClient:
    def __init__(
        self,
        dependency: str,
        base_url: str,
        *,
        service: str,
        timeout: float = 1.0,
        attempts: int = 2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.dependency = dependency
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self.breaker = breaker or CircuitBreaker(dependency)
        gauge_breaker(service, dependency, self.breaker)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # created lazily: it must belong to the running loop
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), raise_for_status=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, *, json: Any = None, caller: web.Request | None = None
    ) -> Reply:
        """One logical call (retried inside when idempotent) through the breaker."""
        headers = forwarded_headers(caller)
        body = None if json is None else orjson.dumps(json)
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempts = self.attempts if method.upper() in IDEMPOTENT else 1

        async def attempt() -> Reply:
            return await self._once(method, path, headers, body)

        if not tracing.ENABLED:
            async with self.breaker:
                return await retry(attempt, attempts=attempts, retry_on=(ServiceUnavailable,))
        # one client span for the logical call (its retries included); traceparent sent
        name = f"{method.upper()} {self.dependency}"
        span = tracing.start_child(name) if tracing.recording() else None
        tracing.inject(headers, span)
        try:
            async with self.breaker:
                reply = await retry(attempt, attempts=attempts, retry_on=(ServiceUnavailable,))
            if span is not None:
                span.set_attribute("http.response.status_code", reply.status)
            return reply
        except AppError as exc:
            if span is not None:
                tracing.fail(span, exc.code)
            raise
        finally:
            if span is not None:
                span.end()

    async def get(self, path: str, *, caller: web.Request | None = None) -> Reply:
        return await self.request("GET", path, caller=caller)

    async def _once(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> Reply:
        url = self.base_url + path
        try:
            async with self.session.request(method, url, headers=headers, data=body) as resp:
                raw = await resp.read()
                status = resp.status
                is_json = resp.content_type.endswith("json")
        except TimeoutError:
            raise ServiceUnavailable(f"{self.dependency} timed out", retry_after=1) from None
        except aiohttp.ClientError as exc:
            raise ServiceUnavailable(
                f"{self.dependency} is unavailable ({type(exc).__name__})", retry_after=1
            ) from None
        if status >= 500:
            raise ServiceUnavailable(f"{self.dependency} answered {status}", retry_after=1)
        if status in (401, 403):
            raise DependencyRefused(
                f"{self.dependency} refused the forwarded credentials ({status})"
            )
        return Reply(status, orjson.loads(raw) if raw and is_json else None)


def dependency_client(dependency: str, settings: Any) -> JsonHttpClient:
    """The client of `dependency` built from the service's settings named after it:
    `<dependency>_url`, `_timeout`, `_breaker_threshold` and `_breaker_reset` (a breaker
    opened by refused connections, timeouts and 5xx only)."""
    breaker = CircuitBreaker(
        dependency,
        failure_threshold=getattr(settings, f"{dependency}_breaker_threshold"),
        reset_timeout=getattr(settings, f"{dependency}_breaker_reset"),
        failure_exceptions=(ServiceUnavailable,),
    )
    return JsonHttpClient(
        dependency,
        getattr(settings, f"{dependency}_url"),
        service=settings.service,
        timeout=getattr(settings, f"{dependency}_timeout"),
        breaker=breaker,
    )
