"""Where the token code finds keys by id (ADR 0032).

Verifying: a `KeySource` answers `key(kid)` from what it holds (no I/O) and, when a token
names a kid it does not hold, `refresh()` may look again (rate-limited by the source):
- `StaticKeys`: fixed public keys (`JWT_PUBLIC_KEY[_FILE]`, tests); never refreshes.
- `DirectoryKeys`: the published keys of the key directory (`JWT_KEYS_DIR`).
- `lib.auth.jwks_client.JwksKeys`: users' JWK Set over HTTP (`JWKS_URL`).

Signing: a `SigningKeys` gives the key to sign with and its kid: `StaticSigningKey` (one
PEM, `JWT_PRIVATE_KEY[_FILE]`) or `DirectorySigningKeys` (the directory's signing key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lib.auth.jwks import key_id
from lib.auth.keydir import KeyDirectory
from lib.auth.pem import load_private_key, load_public_key


class KeySource(Protocol):
    def key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key of `kid` if this source trusts it now."""

    async def refresh(self) -> bool:
        """Look for new keys if allowed now; True when the keys may have changed."""

    def published(self) -> list[Ed25519PublicKey]:
        """Every key it trusts now (what users serves as its JWK Set)."""


class SigningKeys(Protocol):
    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """(kid, private key) to sign with now; ValueError when there is none."""


class StaticKeys:
    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    @classmethod
    def from_pem(cls, pem: str) -> StaticKeys:
        return cls([load_public_key(pem)])

    def key(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    async def refresh(self) -> bool:
        return False

    def published(self) -> list[Ed25519PublicKey]:
        return list(self._keys.values())


class StaticSigningKey:
    def __init__(self, pem: str) -> None:
        self._key = load_private_key(pem)
        self._kid = key_id(self._key.public_key())

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        return self._kid, self._key

    def public(self) -> StaticKeys:
        return StaticKeys([self._key.public_key()])


class DirectoryKeys:
    """The key directory's published keys: next, signing, and retired ones for `window`
    seconds after `retired_at` (the longest token life + the leeway + a reload), judged
    by `now` (the database's clock, lib/db/clock.py). An unknown kid reads the directory
    again at most once per `min_refresh` seconds."""

    def __init__(
        self,
        directory: KeyDirectory,
        *,
        window: float,
        min_refresh: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self._window = window
        self._min_refresh = min_refresh
        self._now = now

    def key(self, kid: str) -> Ed25519PublicKey | None:
        for entry in self.directory.current().published(self._now(), self._window):
            if entry.kid == kid:
                return entry.public
        return None

    async def refresh(self) -> bool:
        if self.directory.since_read() < self._min_refresh:
            return False
        return self.directory.reload()

    def published(self) -> list[Ed25519PublicKey]:
        return [e.public for e in self.directory.current().published(self._now(), self._window)]


class DirectorySigningKeys:
    def __init__(self, directory: KeyDirectory) -> None:
        self.directory = directory

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        entry = self.directory.current().signing()
        if entry is None or entry.private is None:
            raise ValueError(f"{self.directory.directory}: no signing key")
        return entry.kid, entry.private
