"""Local directory storage, read back through the app with HMAC-signed expiring URLs.

Local directory storage: files named by their random key, read back through the app's
own route with an HMAC-SHA256 signature over the key and the expiry time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from pathlib import Path

from lib.storage.base import ObjectNotFound, valid_key


class LocalStorage:
    def __init__(
        self, root: str | Path, *, signing_key: bytes, ttl: int, route: str = "/v1/pictures/"
    ) -> None:
        if not signing_key:
            raise ValueError("local storage needs a signing key (STORAGE_SIGNING_KEY)")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.signing_key = signing_key
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
        await asyncio.to_thread(_write_atomically, path, data)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def url(self, key: str) -> str:
        expires = int(time.time()) + self.ttl
        return f"{self.route}{key}?expires={expires}&sig={self.sign(key, expires)}"

    def sign(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self.signing_key, message, hashlib.sha256).hexdigest()

    def check(self, key: str, expires: str, sig: str, *, now: float | None = None) -> bool:
        """True when `sig` is this key's signature for `expires` and that time is ahead (at
        `expires` itself the URL is expired, as a token is at its `exp`)."""
        if not expires.isdigit() or len(expires) > 12:
            return False
        if int(expires) <= (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self.sign(key, int(expires)), sig)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
