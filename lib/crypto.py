"""Field encryption at rest: AES-256-GCM under the ENCRYPTION_KEYS keyring (ADR 0036).

`FieldCipher.encrypt` seals with the keyring's current key and returns
`MAGIC + len(kid) + kid + nonce (12 random bytes, new per value) + ciphertext + tag`; a
value sealed before keyrings existed is `nonce + ciphertext + tag` and opens with the legacy
key (`lib.keyring.LEGACY_KID`). `decrypt` raises `cryptography.exceptions.InvalidTag` when
the value was tampered with, sealed under another key, or names a key the keyring no
longer holds. `associated` binds a value to its row (e.g. the user id), so a ciphertext
copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lib.keyring import Keyring, parse_keyring

NONCE_BYTES = 12
KEY_BYTES = 32
MAGIC = b"\x00fxk"  # a legacy value starts so with odds 2^-32; it then still opens (below)


def generate_key() -> str:
    """A new ENCRYPTION_KEY: 32 random bytes, base64."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def legacy_key(key_b64: str) -> bytes:
    """The bytes of a single-key ENCRYPTION_KEY; ValueError saying what is wrong."""
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("ENCRYPTION_KEY must be base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"ENCRYPTION_KEY must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def encryption_keyring(keys: str, single: str) -> Keyring | None:
    """ENCRYPTION_KEYS when set, else ENCRYPTION_KEY as a one-key ring, else None."""
    if keys.strip():
        return parse_keyring(keys, exact_bytes=KEY_BYTES)
    return Keyring.single(legacy_key(single)) if single else None


def prefix(kid: str) -> bytes:
    """What every value sealed under `kid` starts with."""
    return MAGIC + bytes([len(kid)]) + kid.encode("ascii")


def sealed_kid(sealed: bytes) -> str | None:
    """The key id a value names (None: sealed before keyrings, or malformed)."""
    if not sealed.startswith(MAGIC) or len(sealed) <= len(MAGIC):
        return None
    size = sealed[len(MAGIC)]
    kid = sealed[len(MAGIC) + 1 : len(MAGIC) + 1 + size]
    return kid.decode("ascii", "replace") if len(kid) == size else None


class FieldCipher:
    def __init__(self, keys: Keyring | str) -> None:
        """`keys`: a keyring, or a single base64 ENCRYPTION_KEY (a ring of that one key)."""
        self.keys = keys if isinstance(keys, Keyring) else Keyring.single(legacy_key(keys))
        for key in self.keys.keys:
            if len(key.secret) != KEY_BYTES:
                raise ValueError(f"encryption key {key.kid} must be {KEY_BYTES} bytes")

    def encrypt(self, plaintext: str, associated: bytes = b"") -> bytes:
        current = self.keys.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(current.secret).encrypt(nonce, plaintext.encode(), associated)
        return prefix(current.kid) + nonce + sealed

    def decrypt(self, sealed: bytes, associated: bytes = b"") -> str:
        kid = sealed_kid(sealed)
        if kid is not None:
            secret = self.keys.get(kid)
            if secret is not None:
                body = sealed[len(prefix(kid)) :]
                try:
                    return _open(secret, body, associated)
                except InvalidTag:
                    pass  # a legacy value whose nonce happens to start with MAGIC: below
        legacy = self.keys.get(None)
        if legacy is None:
            raise InvalidTag()
        return _open(legacy, sealed, associated)

    def is_current(self, sealed: bytes) -> bool:
        """True when `sealed` names the current key (re-encryption skips it)."""
        return sealed.startswith(prefix(self.keys.current.kid))


def _open(secret: bytes, body: bytes, associated: bytes) -> str:
    nonce, ciphertext = body[:NONCE_BYTES], body[NONCE_BYTES:]
    return AESGCM(secret).decrypt(nonce, ciphertext, associated).decode()
