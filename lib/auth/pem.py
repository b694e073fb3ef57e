"""Ed25519 keys as PEM text: what `make keys` writes and every setting or file holds."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)


def generate_keypair() -> tuple[str, str]:
    """A new Ed25519 key pair: (private PEM, PKCS8 unencrypted; public PEM, SPKI)."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return private_pem.decode("ascii"), public_pem.decode("ascii")


def load_private_key(pem: str) -> Ed25519PrivateKey:
    """Parse an unencrypted PEM Ed25519 private key; ValueError says what is wrong."""
    if not pem.strip():
        raise ValueError("JWT private key is empty (set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE)")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise ValueError("JWT private key is encrypted; an unencrypted PEM is needed") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("JWT private key is not a valid PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"JWT private key must be Ed25519, got {type(key).__name__}")
    return key


def load_public_key(pem: str) -> Ed25519PublicKey:
    """Parse a PEM Ed25519 public key (SubjectPublicKeyInfo); ValueError says what is wrong."""
    if not pem.strip():
        raise ValueError("JWT public key is empty (set JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE)")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("JWT public key is not a valid PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"JWT public key must be Ed25519, got {type(key).__name__}")
    return key
