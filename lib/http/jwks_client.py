"""Users' JWK Set over HTTP: the verifying key source of a service (`JWKS_URL`, ADR 0032).

- The keys are fetched at start-up and again every `JWKS_REFRESH_INTERVAL` seconds (a
  task of the app, `jwks_ctx`), so a key users stages reaches every verifier before it
  signs with it.
- A token naming a kid the cache lacks asks again (`refresh`), at most once per
  `JWKS_MIN_REFRESH_INTERVAL` seconds for the whole process, whatever the number of
  tokens: a flood of random kids costs users one fetch per interval per process. Tokens
  arriving while a fetch is in flight wait for it instead of starting another.
- A fetch that fails (users away, a timeout, a bad answer) keeps the cached keys: tokens
  signed by a known key go on verifying. Only an answer that parses as a JWK Set
  replaces the cache.
- The URL comes from the settings only; nothing in a token (its `kid`, `jku`, `x5u`)
  is ever fetched.

`jwks_fetches_total{service,outcome}` counts the fetches (ok, failed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress

import aiohttp
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import Counter

from lib.auth.jwks import parse_jwks
from lib.logging import get_logger

log = get_logger("lib.auth.jwks")
MAX_JWKS_BYTES = 64 * 1024  # a few keys are ~1 KiB
JWKS_FETCHES = Counter(
    "jwks_fetches_total", "Fetches of users' JWK Set, by outcome.", ["service", "outcome"]
)


class JwksKeys:
    """A `lib.auth.keysources.KeySource` backed by a cached JWK Set."""

    def __init__(
        self,
        url: str,
        *,
        service: str,
        timeout: float,
        min_refresh: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.service = service
        self._timeout = timeout
        self._min_refresh = min_refresh
        self._monotonic = monotonic
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._tried_at: float | None = None  # the last fetch started (monotonic)
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        for outcome in ("ok", "failed"):
            JWKS_FETCHES.labels(service, outcome)

    def key(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    def published(self) -> list[Ed25519PublicKey]:
        return list(self._keys.values())

    async def refresh(self) -> bool:
        """Fetch again unless a fetch started less than JWKS_MIN_REFRESH_INTERVAL ago;
        True when the cache may have changed (a fetch succeeded, here or just before)."""
        started = self._monotonic()
        async with self._lock:
            tried = self._tried_at
            if tried is not None and started < tried:  # one ran while this one waited
                return True
            if tried is not None and started - tried < self._min_refresh:
                return False
            return await self.fetch()

    async def fetch(self) -> bool:
        """One fetch; the cache replaced when it parses, kept otherwise."""
        self._tried_at = self._monotonic()
        try:
            keys = await self._get()
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            JWKS_FETCHES.labels(self.service, "failed").inc()
            log.warning("jwks_unavailable", url=self.url, error=str(exc) or repr(exc))
            return False
        JWKS_FETCHES.labels(self.service, "ok").inc()
        self._keys = keys
        return True

    async def _get(self) -> dict[str, Ed25519PublicKey]:
        if self._session is None:  # created lazily: it must belong to the running loop
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        async with self._session.get(self.url, allow_redirects=False) as resp:
            if resp.status != 200:
                raise ValueError(f"users answered {resp.status}")
            raw = await resp.content.read(MAX_JWKS_BYTES + 1)
        if len(raw) > MAX_JWKS_BYTES:
            raise ValueError(f"a JWK Set over {MAX_JWKS_BYTES} bytes")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError("not JSON") from None
        return parse_jwks(document)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def jwks_ctx(keys: JwksKeys, interval: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx: the first fetch at start (not waited for: a service starts with
    users away), one every `interval` seconds, the session closed at the end."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                if not await keys.fetch() and not keys.published():
                    await asyncio.sleep(min(interval, 1.0))  # nothing cached yet: sooner
                    continue
                await asyncio.sleep(interval)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await keys.close()

    return ctx
