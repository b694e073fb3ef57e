"""Public keys by id: key ids, JWKs and JWK Sets for Ed25519 (RFC 7517, RFC 8037, ADR 0032).

A key's id (`kid`) is its RFC 7638 JWK thumbprint (joserfc's `thumbprint`, ADR 0046), derived from
the key, so a key read from a PEM file, from the keyring or from the JWKS has the same id
everywhere and nobody keeps ids and keys in step by hand. A JWK is PyJWT's: written by
`OKPAlgorithm.to_jwk`, read by `PyJWK`.

`parse_jwks` is strict about what it keeps (OKP, Ed25519, `use` sig, `alg` EdDSA when
present, a `kid` that is the key's thumbprint) and skips anything else: a JWK Set may
carry keys of other kinds (RFC 7517 §5), never one with a wrong id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc.jwk import thumbprint
from jwt import PyJWK
from jwt.algorithms import OKPAlgorithm
from jwt.exceptions import InvalidKeyError, PyJWKError

from lib.keyring import key_id as key_id

JWKS_PATH = "/.well-known/jwks.json"
JWKS_MEDIA_TYPE = "application/jwk-set+json"
# a thumbprint is 43 characters; anything else in a header's `kid` is refused unread
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_JWKS_KEYS = 64  # a JWK Set from users holds a handful; more is not ours


def public_jwk(key: Ed25519PublicKey) -> dict[str, Any]:
    """The members RFC 7638 hashes: kty, crv, x."""
    return OKPAlgorithm.to_jwk(key, as_dict=True)


def is_key_id(kid: object) -> TypeGuard[str]:
    """A header `kid` worth looking up: a string shaped like a thumbprint, nothing more
    (no paths, URLs, header tricks, huge strings or other JSON types)."""
    return isinstance(kid, str) and KID_PATTERN.fullmatch(kid) is not None


def jwk(key: Ed25519PublicKey) -> dict[str, Any]:
    """The public JWK of an Ed25519 key (RFC 8037 §2), its kid and use."""
    public = public_jwk(key)
    return {**public, "kid": thumbprint(public), "use": "sig", "alg": "EdDSA"}


def jwks_document(keys: Iterable[Ed25519PublicKey]) -> dict[str, list[dict[str, Any]]]:
    """A JWK Set of the keys, each once, in the order given."""
    seen: dict[str, dict[str, Any]] = {}
    for key in keys:
        entry = jwk(key)
        seen.setdefault(entry["kid"], entry)
    return {"keys": list(seen.values())}


def parse_jwk(entry: Mapping[str, Any]) -> tuple[str, Ed25519PublicKey] | None:
    """(kid, key) of an Ed25519 signing JWK whose kid is its thumbprint; None otherwise."""
    if entry.get("use", "sig") != "sig" or entry.get("alg", "EdDSA") != "EdDSA":
        return None
    if "d" in entry:  # a private key has no business in a published set
        return None
    kid = entry.get("kid")
    if entry.get("crv") != "Ed25519" or not is_key_id(kid):
        return None
    try:
        key = PyJWK(dict(entry), algorithm="EdDSA").key
    except (PyJWKError, InvalidKeyError, ValueError, TypeError):
        return None
    if not isinstance(key, Ed25519PublicKey) or key_id(key) != kid:
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
