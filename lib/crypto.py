"""Field encryption at rest: AES-256-GCM with the ENCRYPTION_KEY setting.

`FieldCipher.encrypt` returns nonce (12 random bytes, new per value) + ciphertext + tag;
`decrypt` raises `cryptography.exceptions.InvalidTag` when the value was tampered with or
sealed under another key. `associated` binds a value to its row (e.g. the user id), so a
ciphertext copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def generate_key() -> str:
    """A new ENCRYPTION_KEY: 32 random bytes, base64."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


class FieldCipher:
    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("ENCRYPTION_KEY must be base64") from None
        if len(key) != 32:
            raise ValueError(f"ENCRYPTION_KEY must decode to 32 bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, associated: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), associated)

    def decrypt(self, sealed: bytes, associated: bytes = b"") -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, associated).decode()
