"""What the /v1/auth routes share (docs/api.md, "users"; ADR 0010): the hasher, the token
signer, the field cipher and the rate limits of one process, and the random tokens.

Rules the auth modules (registration, sessions, passwords) keep:
- argon2id never runs on the event loop nor while the request holds a pooled connection
  (except inside an idempotent registration, whose decorator holds one for the whole
  handler): `BoundedHasher`, queue full -> 503.
- Refresh and email tokens are 32 random bytes; only their SHA-256 is stored.
- Mail is an outbox row in the transaction that causes it; the relay sends it later.
- The personal id number is encrypted before it leaves registration and never logged.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from lib.auth.keysources import DirectorySigningKeys, KeySource, SigningKeys, StaticSigningKey
from lib.auth.passwords import BoundedHasher, make_hasher
from lib.auth.tokens import TokenSigner
from lib.crypto import FieldCipher
from lib.db.runtime import PgConn
from lib.errors import ServiceUnavailable
from lib.http.keys import CLOCK, LIMITS, SETTINGS
from lib.http.token_keys import directory_keys
from lib.logging import get_logger
from lib.resilience.ratelimit import RateLimiter, make_rate_limiter
from services.users.db import auth as auth_q
from services.users.settings import UsersSettings

log = get_logger("services.users.auth")
AUTH_TAGS = ["auth"]


@dataclass
class AuthKit:
    """What the auth routes share in one process (opened by `auth_ctx`)."""

    hasher: BoundedHasher
    signer: TokenSigner | None  # None: no JWT_PRIVATE_KEY, no sessions (503)
    published: (
        KeySource | None
    )  # the keys GET /.well-known/jwks.json serves (services/users/jwks.py)
    cipher: FieldCipher | None  # None: no ENCRYPTION_KEY, no PROVIDER registration (503)
    login_limit: RateLimiter  # per IP
    account_limit: RateLimiter  # login attempts per email: strict, no per-process fallback
    register_limit: RateLimiter  # per IP
    mail_limit: RateLimiter  # resend-verification and password-reset, per email

    async def issue(
        self, conn: PgConn, user_id: Any, role: str, verified: bool, session_id: uuid.UUID
    ) -> str:
        """An access token of the session (refresh family) `session_id` whose iat is the
        database's clock, read on `conn` (in the transaction that signs it, if any): the
        clock revocations are written with."""
        if self.signer is None:
            raise ServiceUnavailable("sign-in is not configured (JWT_PRIVATE_KEY)")
        now = await auth_q.database_clock(conn)
        return self.signer.issue(user_id, role, verified, issued_at=now, session_id=session_id)[0]

    def seal(self, personal_id: str, user_id: uuid.UUID) -> bytes:
        if self.cipher is None:
            raise ServiceUnavailable("provider registration is not configured (ENCRYPTION_KEY)")
        return self.cipher.encrypt(personal_id, associated=user_id.bytes)


AUTH_KIT: web.AppKey[AuthKit] = web.AppKey("auth_kit", AuthKit)


def auth_ctx(settings: UsersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        signing, published = signing_keys(settings, app[CLOCK])
        keys = settings.encryption_keyring()
        missing = [
            name
            for name, given in (("JWT_PRIVATE_KEY", signing is not None), ("ENCRYPTION_KEY", keys))
            if not given
        ]
        if missing:  # the service still serves what needs neither
            log.warning("auth_not_configured", missing=missing)
        store = app[LIMITS].store  # Redis with a per-process fallback, or None: memory
        hasher = BoundedHasher(
            make_hasher(
                settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism
            ),
            workers=settings.argon2_workers,
            queue=settings.argon2_queue,
            priority=settings.argon2_priority,
        )
        app[AUTH_KIT] = AuthKit(
            hasher=hasher,
            signer=TokenSigner(signing, settings.access_token_ttl) if signing else None,
            published=published,
            cipher=FieldCipher(keys) if keys is not None else None,
            login_limit=make_rate_limiter(
                "login", settings.login_rate, settings.login_burst, store
            ),
            account_limit=make_rate_limiter(
                "login", settings.login_rate, settings.login_burst, store, strict=True
            ),
            register_limit=make_rate_limiter(
                "register", settings.register_rate, settings.register_burst, store
            ),
            mail_limit=make_rate_limiter("mail", settings.mail_rate, settings.mail_burst, store),
        )
        yield
        hasher.close()

    return ctx


def signing_keys(
    settings: UsersSettings, now: Callable[[], float]
) -> tuple[SigningKeys | None, KeySource | None]:
    """What users signs with and publishes: the signing keyring's current key and published
    keys (JWT_KEYS_DIR, read again every JWT_KEYS_RELOAD_INTERVAL), else the one
    JWT_PRIVATE_KEY and its public half; (None, None) when neither is set."""
    if settings.jwt_keys_dir:
        published = directory_keys(settings, now)  # the database's clock, as every verifier's
        return DirectorySigningKeys(published.directory), published
    private_key = settings.private_key_pem()
    if not private_key:
        return None, None
    single = StaticSigningKey(private_key)
    return single, single.public()


def users_settings(request: web.Request) -> UsersSettings:
    settings = request.app[SETTINGS]
    assert isinstance(settings, UsersSettings)
    return settings


def new_secret() -> tuple[str, bytes]:
    """A token to send (url-safe, 43 characters) and the digest to store."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
