"""Field encryption at rest: AES-256-GCM under the ENCRYPTION_KEYS keyring (ADR 0036).

One envelope (ADR 0046): `FieldCipher.encrypt` seals with the keyring's current key and
returns `MAGIC (b"\\x00fxk") + len(kid) + kid + nonce (12 random bytes, new per value) +
ciphertext + tag`. `decrypt` opens only that envelope, with the key it names, and raises
`cryptography.exceptions.InvalidTag` when the value was tampered with, sealed under another
key, names a key the keyring no longer holds, or is not an envelope at all (values sealed
before keyrings, bare `nonce + ciphertext + tag`, are put into the envelope once by
`make rotate secret=encryption step=migrate`). `associated` binds a value to its row (e.g.
the user id), so a ciphertext copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lib.keyring import Keyring

NONCE_BYTES = 12
KEY_BYTES = 32
MAGIC = b"\x00fxk"


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


def prefix(kid: str) -> bytes:
    """What every value sealed under `kid` starts with."""
    return MAGIC + bytes([len(kid)]) + kid.encode("ascii")


def sealed_kid(sealed: bytes) -> str | None:
    """The key id an envelope names (None: not an envelope)."""
    if not sealed.startswith(MAGIC) or len(sealed) <= len(MAGIC):
        return None
    size = sealed[len(MAGIC)]
    kid = sealed[len(MAGIC) + 1 : len(MAGIC) + 1 + size]
    return kid.decode("ascii", "replace") if len(kid) == size else None


def seal(secret: bytes, kid: str, plaintext: bytes, associated: bytes = b"") -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return prefix(kid) + nonce + AESGCM(secret).encrypt(nonce, plaintext, associated)


def open_bare(secret: bytes, body: bytes, associated: bytes = b"") -> bytes:
    """`nonce + ciphertext + tag` opened (InvalidTag when it does not open)."""
    return AESGCM(secret).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], associated)


class FieldCipher:
    def __init__(self, keys: Keyring | str) -> None:
        """`keys`: a keyring, or a single base64 ENCRYPTION_KEY (a ring of that one key)."""
        self.keys = keys if isinstance(keys, Keyring) else Keyring.single(legacy_key(keys))
        for key in self.keys.keys:
            if len(key.secret) != KEY_BYTES:
                raise ValueError(f"encryption key {key.kid} must be {KEY_BYTES} bytes")

    def encrypt(self, plaintext: str, associated: bytes = b"") -> bytes:
        current = self.keys.current
        return seal(current.secret, current.kid, plaintext.encode(), associated)

    def decrypt(self, sealed: bytes, associated: bytes = b"") -> str:
        kid = sealed_kid(sealed)
        secret = None if kid is None else self.keys.get(kid)
        if kid is None or secret is None:
            raise InvalidTag()
        return open_bare(secret, sealed[len(prefix(kid)) :], associated).decode()
