"""Public keys by id: key ids, JWKs and JWK Sets for Ed25519 (RFC 7517, RFC 8037, ADR 0032).

A key's id (`kid`) is its RFC 7638 JWK thumbprint: the base64url SHA-256 of
`{"crv":"Ed25519","kty":"OKP","x":...}`. It is derived from the key, so a key read from a
PEM file, from the key directory or from the JWKS has the same id everywhere, and nobody
has to keep ids and keys in step by hand.

`parse_jwks` is strict about what it keeps (OKP, Ed25519, `use` sig, `alg` EdDSA when
present, a `kid` that is the key's thumbprint) and skips anything else: a JWK Set may
carry keys of other kinds (RFC 7517 §5), never one with a wrong id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

JWKS_PATH = "/.well-known/jwks.json"
JWKS_MEDIA_TYPE = "application/jwk-set+json"
# a thumbprint is 43 characters; anything else in a header's `kid` is refused unread
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_JWKS_KEYS = 64  # a JWK Set from users holds a handful; more is not ours


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2); ValueError for anything else."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(x: str) -> str:
    """RFC 7638 §3 for an OKP key (RFC 8037 §2): the required members, sorted, no spaces."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def key_id(key: Ed25519PublicKey) -> str:
    """The key's `kid`: its JWK thumbprint."""
    return thumbprint(b64url(raw_public(key)))


def is_key_id(kid: object) -> bool:
    """A header `kid` worth looking up: a string shaped like a thumbprint, nothing more
    (no paths, URLs, header tricks, huge strings or other JSON types)."""
    return isinstance(kid, str) and KID_PATTERN.fullmatch(kid) is not None


def jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The public JWK of an Ed25519 key (RFC 8037 §2)."""
    x = b64url(raw_public(key))
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": x,
        "kid": thumbprint(x),
        "use": "sig",
        "alg": "EdDSA",
    }


def jwks_document(keys: Iterable[Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set of the keys, each once, in the order given."""
    seen: dict[str, dict[str, str]] = {}
    for key in keys:
        entry = jwk(key)
        seen.setdefault(entry["kid"], entry)
    return {"keys": list(seen.values())}


def parse_jwk(entry: Mapping[str, Any]) -> tuple[str, Ed25519PublicKey] | None:
    """(kid, key) of an Ed25519 signing JWK whose kid is its thumbprint; None otherwise."""
    if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", "EdDSA") != "EdDSA":
        return None
    if "d" in entry:  # a private key has no business in a published set
        return None
    x, kid = entry.get("x"), entry.get("kid")
    if not isinstance(x, str) or not is_key_id(kid):
        return None
    try:
        raw = b64url_decode(x)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None
    if thumbprint(b64url(raw)) != kid:
        return None
    return kid, key


def parse_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    """The usable keys of a JWK Set by kid; ValueError when it is not a JWK Set at all."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set: no 'keys' array")
    entries = document["keys"]
    if len(entries) > MAX_JWKS_KEYS:
        raise ValueError(f"a JWK Set of {len(entries)} keys (at most {MAX_JWKS_KEYS})")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in entries:
        parsed = parse_jwk(entry) if isinstance(entry, dict) else None
        if parsed is not None:
            keys[parsed[0]] = parsed[1]
    return keys
