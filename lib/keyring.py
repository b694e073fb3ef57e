"""Keyrings of symmetric secrets that rotate with an overlap (ADR 0036).

A keyring holds one `current` key, which signs or encrypts, and keys still accepted for
verification or decryption: `next` (staged: every replica accepts it before any signs with
it) and `previous` (retired from signing, accepted until what they produced has expired or
been re-encrypted). What a key produces carries its id, so a verifier picks the key directly.

Text form (a setting or a mounted Secret file): entries `kid:state:base64-secret`,
separated by commas or whitespace, e.g. `k1:current:q3...=,k0:previous:Zm9v...`.
Values produced before keyrings existed carry no id: they are checked with the key whose
id is `LEGACY_KID`, which is what a single-key setting (`ENCRYPTION_KEY`,
`STORAGE_SIGNING_KEY`) becomes.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from typing import Literal, get_args

State = Literal["current", "next", "previous"]
STATES: tuple[str, ...] = get_args(State)
LEGACY_KID = "k0"
KID_PATTERN = r"^[a-z0-9]{1,8}$"
_KID = re.compile(KID_PATTERN)


@dataclass(frozen=True)
class Key:
    kid: str
    state: State
    secret: bytes


@dataclass(frozen=True)
class Keyring:
    """Entries in their text order; exactly one is `current`."""

    keys: tuple[Key, ...]

    @classmethod
    def single(cls, secret: bytes) -> Keyring:
        """What a single-key setting means: that key, current, under the legacy id."""
        return cls((Key(LEGACY_KID, "current", secret),))

    @property
    def current(self) -> Key:
        return next(key for key in self.keys if key.state == "current")

    def get(self, kid: str | None) -> bytes | None:
        """The secret of `kid` (None: a value from before keyrings, the legacy key); None
        when the keyring does not hold it (unknown or retired)."""
        wanted = LEGACY_KID if kid is None else kid
        return next((key.secret for key in self.keys if key.kid == wanted), None)

    def text(self) -> str:
        """The text form, one entry a line (what `parse_keyring` reads back)."""
        return "".join(
            f"{k.kid}:{k.state}:{base64.b64encode(k.secret).decode('ascii')}\n" for k in self.keys
        )


def parse_keyring(text: str, *, exact_bytes: int | None = None, min_bytes: int = 16) -> Keyring:
    """The keyring in `text`; ValueError naming the entry (never its secret) otherwise."""
    keys: list[Key] = []
    for position, entry in enumerate(re.split(r"[\s,]+", text.strip()), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"entry {position} is not kid:state:base64-secret")
        kid, state, encoded = parts
        if not _KID.match(kid):
            raise ValueError(f"entry {position}: key id must be 1-8 of [a-z0-9]")
        if state not in STATES:
            raise ValueError(f"key {kid}: state must be one of {', '.join(STATES)}")
        try:
            secret = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {kid}: the secret is not base64") from None
        if exact_bytes is not None and len(secret) != exact_bytes:
            raise ValueError(f"key {kid}: must decode to {exact_bytes} bytes, got {len(secret)}")
        if len(secret) < min_bytes:
            raise ValueError(f"key {kid}: must decode to at least {min_bytes} bytes")
        if any(k.kid == kid for k in keys):
            raise ValueError(f"key {kid} appears twice")
        keys.append(Key(kid, state, secret))  # type: ignore[arg-type]  # checked: in STATES
    current = [k.kid for k in keys if k.state == "current"]
    if len(current) != 1:
        raise ValueError(f"a keyring needs exactly one current key, found {len(current)}")
    return Keyring(tuple(keys))


def new_kid(ring: Keyring) -> str:
    """An id no key of `ring` has: k<n+1> after the highest k<n>."""
    numbers = [int(k.kid[1:]) for k in ring.keys if re.fullmatch(r"k\d{1,7}", k.kid)]
    return f"k{max(numbers, default=0) + 1}"


def new_secret(size: int = 32) -> bytes:
    return os.urandom(size)
