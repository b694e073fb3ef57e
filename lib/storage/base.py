"""What every storage backend offers; an upload's capped read, type and random key."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Protocol

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(?:jpg|png)\Z")
# content type -> (extension, magic bytes at offset 0)
IMAGE_TYPES: dict[str, tuple[str, bytes]] = {
    "image/jpeg": ("jpg", b"\xff\xd8\xff"),
    "image/png": ("png", b"\x89PNG\r\n\x1a\n"),
}
CONTENT_TYPES = {ext: ctype for ctype, (ext, _) in IMAGE_TYPES.items()}


class ObjectNotFound(LookupError):
    """No object under that key (or a key that could never name one)."""


class CapExceeded(ValueError):
    """The stream holds more than the limit."""


class Storage(Protocol):
    ttl: int  # how long a URL from `url` stays valid (s)

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""

    async def url(self, key: str) -> str:
        """A signed URL that lets anyone holding it read the object until it expires."""


def detect_image(head: bytes) -> str | None:
    """`image/jpeg` or `image/png` by the file's first bytes (never by a header), else None."""
    for ctype, (_, magic) in IMAGE_TYPES.items():
        if head.startswith(magic):
            return ctype
    return None


def new_key(content_type: str) -> str:
    """A random, unguessable key with the type's extension (`<32 url-safe chars>.png`)."""
    return f"{secrets.token_urlsafe(24)}.{IMAGE_TYPES[content_type][0]}"


def valid_key(key: str) -> bool:
    """Only keys new_key could have made: no `/`, no `..`, nothing outside the root."""
    return KEY_PATTERN.fullmatch(key) is not None


async def read_capped(
    read_chunk: Callable[[int], Awaitable[bytes]], limit: int, chunk: int = 64 * 1024
) -> bytes:
    """Read a stream through `read_chunk(size)` (b"" at its end), stopping with CapExceeded
    as soon as it gave more than `limit` bytes: at most one chunk past the limit is read,
    the rest stays unread. (Every request is a whole chunk: aiohttp's multipart reader
    needs at least the boundary's length.)"""
    parts: list[bytes] = []
    total = 0
    while True:
        data = await read_chunk(chunk)
        if not data:
            return b"".join(parts)
        total += len(data)
        if total > limit:
            raise CapExceeded(f"more than {limit} bytes")
        parts.append(data)
