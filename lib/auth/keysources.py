"""Where the token code finds keys by id (ADR 0032).

Verifying: a `KeySource` answers `key(kid)` from what it holds (no I/O) and, when a token
names a kid it does not hold, `refresh()` may look again (rate-limited by the source):
- `StaticKeys`: fixed public keys (`JWT_PUBLIC_KEY[_FILE]`, tests); never refreshes.
- `DirectoryKeys`: the published keys of the signing keyring (`JWT_KEYS_DIR/keyring.json`).
- `lib.auth.jwks_client.JwksKeys`: users' JWK Set over HTTP (`JWKS_URL`).

Signing: a `SigningKeys` gives the key to sign with and its kid: `StaticSigningKey` (one
PEM, `JWT_PRIVATE_KEY[_FILE]`) or `DirectorySigningKeys` (the keyring's current key).

The signing keyring (lib/keyring.py, ADR 0046) holds Ed25519 pairs: `current` signs, `next`
is published before it signs, `retired` stays published for `window` seconds after
`retired_at` (the longest token life + the leeway + a reload), then is dropped. Only users
needs it (it holds private halves); every other service verifies through users' JWK Set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lib.auth.jwks import key_id
from lib.auth.pem import load_private_key, load_public_key
from lib.keyring import Key, KeyringFile

RING = "keyring.json"  # the signing keyring's file in JWT_KEYS_DIR


def published(keys: Iterable[Key], now: float, window: float) -> list[Key]:
    """next and current always; retired while a token it signed may still be valid."""
    return [
        key
        for key in keys
        if key.state != "retired" or (key.retired_at is not None and now < key.retired_at + window)
    ]


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
    """The signing keyring's published keys, judged by `now` (the database's clock,
    lib/db/clock.py). An unknown kid reads the file again at most once per `min_refresh`
    seconds."""

    def __init__(
        self,
        directory: KeyringFile,
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
        for entry in self.published_keys():
            if entry.kid == kid:
                return entry.public
        return None

    def published_keys(self) -> list[Key]:
        return published(self.directory.current().keys, self._now(), self._window)

    async def refresh(self) -> bool:
        if self.directory.since_read() < self._min_refresh:
            return False
        return self.directory.reload()

    def published(self) -> list[Ed25519PublicKey]:
        return [e.public for e in self.published_keys()]


class DirectorySigningKeys:
    def __init__(self, directory: KeyringFile) -> None:
        self.directory = directory

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        current = self.directory.current().current
        return current.kid, current.private
