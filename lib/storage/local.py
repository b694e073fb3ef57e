"""Local directory storage, read back through the app with HMAC-signed expiring URLs.

Files are named by their random key; the signature is HMAC-SHA256 over the key and the
expiry time. The URL names the signing key (`kid`, from the STORAGE_SIGNING_KEYS keyring;
ADR 0036) so a URL signed before a rotation stays valid until it expires, as long as its key
is still in the ring; a URL without `kid` (signed before keyrings) is checked with the
legacy key."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from pathlib import Path

from lib.keyring import Keyring
from lib.storage.base import ObjectNotFound, valid_key


class LocalStorage:
    def __init__(
        self,
        root: str | Path,
        *,
        signing_key: bytes | Keyring,
        ttl: int,
        route: str = "/v1/pictures/",
    ) -> None:
        """`signing_key`: a keyring, or one key (a ring of that key under the legacy id)."""
        if not signing_key:
            raise ValueError("local storage needs a signing key (STORAGE_SIGNING_KEY)")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.keys = signing_key if isinstance(signing_key, Keyring) else Keyring.single(signing_key)
        self.ttl = ttl
        self.route = route

    def path(self, key: str) -> Path:
        """The file of `key`; ObjectNotFound for a key that is malformed or would leave
        the root (checked twice: by the key's shape and by the resolved path)."""
        if not valid_key(key):
            raise ObjectNotFound(key)
        path = (self.root / key).resolve()
        if path.parent != self.root:
            raise ObjectNotFound(key)
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        await asyncio.to_thread(write_atomically, path, data)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def url(self, key: str) -> str:
        expires = int(time.time()) + self.ttl
        current = self.keys.current
        sig = _sign(current.secret, key, expires)
        return f"{self.route}{key}?expires={expires}&kid={current.kid}&sig={sig}"

    def sign(self, key: str, expires: int, kid: str | None = None) -> str:
        """The signature of `key` until `expires` under `kid` (None: the current key)."""
        secret = self.keys.current.secret if kid is None else self.keys.get(kid)
        if secret is None:
            raise KeyError(kid)
        return _sign(secret, key, expires)

    def check(
        self, key: str, expires: str, sig: str, kid: str | None = None, *, now: float | None = None
    ) -> bool:
        """True when `sig` is the signature for `expires` by the key `kid` names (None: a
        URL from before keyrings, the legacy key), that key is still in the ring, and that
        time is ahead (at `expires` itself the URL is expired, as a token is at its `exp`)."""
        if not expires.isdigit() or len(expires) > 12:
            return False
        if int(expires) <= (time.time() if now is None else now):
            return False
        secret = self.keys.get(kid)
        if secret is None:  # unknown or retired: refused like a forged signature
            return False
        return hmac.compare_digest(_sign(secret, key, int(expires)), sig)


def _sign(secret: bytes, key: str, expires: int) -> str:
    message = f"{key}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
