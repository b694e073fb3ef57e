"""Which keys a service verifies access tokens with, from its settings (ADR 0032).

The first set of: `JWT_KEYS_DIR` (the signing keyring's published keys: users itself),
`JWKS_URL` (users' JWK Set, fetched and cached: every other service in `make run`),
`JWT_PUBLIC_KEY[_FILE]` (one fixed key, no rotation: tests, single-key setups). None of
them: the service accepts no tokens (401 "this service does not accept tokens").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from lib.auth.keysources import RING, DirectoryKeys, KeySource, StaticKeys
from lib.config import ServiceSettings
from lib.http.jwks_client import JwksKeys, jwks_ctx
from lib.keyring import KeyringFile

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def directory_keys(settings: ServiceSettings, now: Callable[[], float]) -> DirectoryKeys:
    directory = KeyringFile(
        Path(settings.jwt_keys_dir, RING), reload_interval=settings.jwt_keys_reload_interval
    )
    return DirectoryKeys(
        directory,
        window=settings.key_retirement_window(),
        min_refresh=settings.jwks_min_refresh_interval,
        now=now,
    )


def verifying_keys(
    settings: ServiceSettings, now: Callable[[], float]
) -> tuple[KeySource | None, CleanupCtx | None]:
    """The key source, and the cleanup_ctx that keeps it fresh (the JWKS fetcher)."""
    if settings.jwt_keys_dir:
        return directory_keys(settings, now), None
    if settings.jwks_url:
        keys = JwksKeys(
            settings.jwks_url,
            service=settings.service,
            timeout=settings.jwks_timeout,
            min_refresh=settings.jwks_min_refresh_interval,
        )
        return keys, jwks_ctx(keys, settings.jwks_refresh_interval)
    public_key = settings.public_key_pem()
    if public_key:
        return StaticKeys.from_pem(public_key), None
    return None, None
