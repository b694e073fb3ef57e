"""Keys by id (ADR 0032, ADR 0046): thumbprints, JWKs and JWK Sets (RFC 7517/7638/8037),
the verifier's pick by `kid`, and users signing with the signing keyring `make keys` writes
(its rotation: tests/unit/test_keyrings.py)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.utils import base64url_encode

from lib.auth.jwks import (
    MAX_JWKS_KEYS,
    is_key_id,
    jwks_document,
    key_id,
    parse_jwk,
    parse_jwks,
    public_jwk,
)
from lib.auth.keysources import RING, StaticKeys
from lib.auth.pem import generate_keypair, load_private_key, load_public_key
from lib.auth.principal import Role
from lib.auth.tokens import TokenVerifier, UnknownKey, signed_header
from lib.errors import ServiceUnavailable, Unauthorized
from lib.keyring import read_keyring
from services.users.auth_kit import signing_keys
from services.users.settings import UsersSettings
from tools import keys as keys_tool

# RFC 8037 Appendix A.2 (the public key) and A.3 (its thumbprint)
RFC_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_the_thumbprint_is_rfc_8037s() -> None:
    parsed = parse_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID})
    assert parsed is not None
    assert parsed[0] == key_id(parsed[1]) == RFC_KID
    assert public_jwk(parsed[1])["x"] == RFC_X


def test_a_jwk_set_round_trips_each_key_once() -> None:
    keys = [load_public_key(generate_keypair()[1]) for _ in range(3)]
    document = jwks_document([*keys, keys[0]])
    assert [entry["kid"] for entry in document["keys"]] == [key_id(k) for k in keys]
    assert all(
        entry.keys() == {"kty", "crv", "x", "kid", "use", "alg"}
        and (entry["kty"], entry["crv"], entry["use"], entry["alg"])
        == ("OKP", "Ed25519", "sig", "EdDSA")
        for entry in document["keys"]
    )
    parsed = parse_jwks(json.loads(json.dumps(document)))
    assert set(parsed) == {key_id(k) for k in keys}


@pytest.mark.parametrize(
    "change",
    [
        {"kty": "RSA"},
        {"crv": "X25519"},
        {"use": "enc"},
        {"alg": "HS256"},
        {"kid": RFC_KID[:-1] + "A"},  # not the key's thumbprint
        {"kid": "../../etc/passwd"},
        {"x": "not base64url!"},
        {"x": "c2hvcnQ"},  # b"short": not 32 bytes
        {"d": RFC_X},  # a private key in a public set
        {"kty": "oct"},  # another kind of key: skipped, never an error out of the set
    ],
)
def test_a_jwk_that_is_not_an_ed25519_signing_key_of_its_kid_is_skipped(
    change: dict[str, str],
) -> None:
    entry = {"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID} | change
    assert parse_jwk(entry) is None
    assert parse_jwks({"keys": [entry, "junk", 7]}) == {}


@pytest.mark.parametrize("document", [[], {"keys": "x"}, {"nokeys": []}])
def test_what_is_not_a_jwk_set_is_an_error(document: object) -> None:
    with pytest.raises(ValueError, match="JWK Set"):
        parse_jwks(document)


@pytest.mark.parametrize(
    "kid",
    [None, 7, ["a"], {"a": 1}, "", "../" * 15, "https://evil.test/jwks.json",
     RFC_KID + "\r\nX-Evil: 1", RFC_KID[:-1], RFC_KID + "A", "k" * 10_000,
     RFC_KID.replace("_", "/")],
)  # fmt: skip
def test_a_kid_of_any_other_shape_is_not_a_key_id(kid: object) -> None:
    assert not is_key_id(kid)


def test_a_thumbprint_is_a_key_id() -> None:
    assert is_key_id(RFC_KID)


# --- the verifier picks by kid ------------------------------------------------------


def token_with(private_pem: str, **header: object) -> str:
    """Good claims signed by the key, the header's fields changed (None: left out), by hand:
    PyJWT would refuse to write a kid that is not a string."""
    now = time.time()
    claims = {"iss": "fixup-users", "aud": "fixup", "sub": str(uuid.uuid4()), "role": "ADMIN",
              "iat": now, "exp": int(now) + 60, "jti": uuid.uuid4().hex}  # fmt: skip
    fields = {"alg": "EdDSA", **signed_header(private_pem), **header}
    fields = {name: value for name, value in fields.items() if value is not None}
    parts = (base64url_encode(json.dumps(part).encode()) for part in (fields, claims))
    signing_input = b".".join(parts)
    signature = load_private_key(private_pem).sign(signing_input)
    return (signing_input + b"." + base64url_encode(signature)).decode("ascii")


def test_the_verifier_uses_the_key_the_kid_names() -> None:
    pairs = [generate_keypair() for _ in range(2)]
    verifier = TokenVerifier(StaticKeys(load_public_key(p) for _, p in pairs))
    for private, _ in pairs:
        assert verifier.verify(token_with(private)).role == Role.ADMIN
    # the other key's kid over this key's signature: the named key does not verify it
    wrong = token_with(pairs[0][0], kid=key_id(load_public_key(pairs[1][1])))
    with pytest.raises(Unauthorized, match="invalid token"):
        verifier.verify(wrong)


@pytest.mark.parametrize(
    "kid", [None, 7, "../jwt_private.pem", "https://evil.test/jwks.json", "k" * 3000, RFC_KID]
)
async def test_no_kid_a_bad_kid_or_an_unknown_one_is_401(kid: object) -> None:
    private, public = generate_keypair()
    verifier = TokenVerifier(public)
    value = token_with(private, kid=kid)
    with pytest.raises(Unauthorized, match="invalid token") as caught:
        await verifier.authenticate(value)
    assert caught.value.status == 401
    assert caught.value.detail == "invalid token"  # to the word: match= only searches


@pytest.mark.parametrize("member", ["D", "XXdXX", "key_ops", "x5c"])
def test_a_member_it_does_not_know_is_ignored(member: str) -> None:
    """RFC 7517 section 4: members not understood are ignored; only `d` (a private key) is
    refused, by its exact name (member names are case-sensitive)."""
    entry = {"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID, member: RFC_X}
    parsed = parse_jwk(entry)
    assert parsed is not None
    assert parsed[0] == RFC_KID
    assert set(parse_jwks({"keys": [entry]})) == {RFC_KID}


class Recorded:
    """A key source that records each kid it is asked for and holds none."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def key(self, kid: str) -> None:
        self.asked.append(kid)
        return None

    async def refresh(self) -> bool:
        return False

    def published(self) -> list[object]:
        return []


@pytest.mark.parametrize("kid", ["../jwt_private.pem", "https://evil.test/jwks.json", "k" * 3000])
def test_a_string_kid_of_another_shape_is_never_looked_up(kid: str) -> None:
    private, _ = generate_keypair()
    source = Recorded()
    verifier = TokenVerifier(source)  # type: ignore[arg-type]
    with pytest.raises(Unauthorized, match="invalid token") as caught:
        verifier.verify(token_with(private, kid=kid))
    assert type(caught.value) is Unauthorized  # not UnknownKey: no refresh is asked for
    assert source.asked == []
    # the well-shaped kid of a key it does not hold is looked up, and unknown
    with pytest.raises(UnknownKey):
        verifier.verify(token_with(private, kid=RFC_KID))
    assert source.asked == [RFC_KID]


class NoKeysYet:
    """A key source that has never reached users (a JwksKeys before its first fetch)."""

    def key(self, kid: str) -> None:
        return None

    async def refresh(self) -> bool:
        return False

    def published(self) -> list[object]:
        return []


async def test_no_key_ever_received_is_503_not_a_logout() -> None:
    private, _ = generate_keypair()
    verifier = TokenVerifier(NoKeysYet())  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable) as caught:
        await verifier.authenticate(token_with(private))
    assert (caught.value.status, caught.value.detail) == (503, "token keys are not available yet")
    with pytest.raises(UnknownKey):
        verifier.verify(token_with(private))


class Rotating:
    """A key source the test changes: `held` what it trusts now, `fetched` what its next
    refresh finds (None: nothing new, refresh answers False)."""

    def __init__(self, *held: Ed25519PublicKey) -> None:
        self.held = {key_id(k): k for k in held}
        self.fetched: dict[str, Ed25519PublicKey] | None = None
        self.refreshes = 0

    def key(self, kid: str) -> Ed25519PublicKey | None:
        return self.held.get(kid)

    async def refresh(self) -> bool:
        self.refreshes += 1
        if self.fetched is None:
            return False
        self.held, self.fetched = self.fetched, None
        return True

    def published(self) -> list[Ed25519PublicKey]:
        return list(self.held.values())


async def test_a_key_promoted_since_the_last_look_verifies_after_one_refresh() -> None:
    (private, public), (_, other) = generate_keypair(), generate_keypair()
    source = Rotating(load_public_key(other))
    verifier = TokenVerifier(source)
    source.fetched = {key_id(k): k for k in (load_public_key(other), load_public_key(public))}
    assert (await verifier.authenticate(token_with(private))).role == Role.ADMIN
    assert source.refreshes == 1


async def test_a_remembered_token_whose_key_went_is_checked_again_in_full() -> None:
    """A cache hit whose key the source no longer trusts is forgotten and checked in full:
    UnknownKey (so `authenticate` looks again), and once the key is back it verifies."""
    (private, public), (_, other) = generate_keypair(), generate_keypair()
    mine, theirs = load_public_key(public), load_public_key(other)
    source = Rotating(mine, theirs)
    verifier = TokenVerifier(source)
    token = token_with(private)
    assert verifier.verify(token).role == Role.ADMIN  # remembered
    source.held = {key_id(theirs): theirs}  # its key went
    with pytest.raises(UnknownKey) as caught:
        verifier.verify(token)
    assert caught.value.detail == "invalid token"
    source.fetched = {key_id(k): k for k in (mine, theirs)}  # and comes back
    assert (await verifier.authenticate(token)).role == Role.ADMIN
    assert source.refreshes == 1


def test_a_jwk_set_keeps_its_keys_and_its_limit() -> None:
    keys = [load_public_key(generate_keypair()[1]) for _ in range(MAX_JWKS_KEYS)]
    parsed = parse_jwks(jwks_document(keys))
    assert len(parsed) == MAX_JWKS_KEYS
    assert all(parsed[key_id(k)].public_bytes_raw() == k.public_bytes_raw() for k in keys)
    assert parse_jwk({"kty": "OKP", "crv": "Ed25519", "x": 7, "kid": RFC_KID}) is None
    assert not asyncio.run(StaticKeys([]).refresh())
    with pytest.raises(ValueError, match=r"^not a JWK Set: no 'keys' array$"):
        parse_jwks({"keys": None})
    with pytest.raises(ValueError, match=f"^a JWK Set of 65 keys \\(at most {MAX_JWKS_KEYS}\\)$"):
        parse_jwks({"keys": [{}] * 65})


def test_users_signs_with_the_key_directory_s_private_half(tmp_path: Path) -> None:
    """JWT_KEYS_DIR: users reads the directory's private halves (only users may) and signs
    with its signing key; what it publishes verifies that token."""
    assert keys_tool.main(["--dir", str(tmp_path)]) == 0
    settings = UsersSettings(database_url="", jwt_keys_dir=str(tmp_path / "jwt"))
    signing, published = signing_keys(settings, time.time)
    assert signing is not None
    assert published is not None
    kid, private = signing.signing_key()
    written = read_keyring(tmp_path / "jwt" / RING).current
    pair = load_private_key((tmp_path / "jwt_private.pem").read_text())
    assert kid == written.kid == key_id(pair.public_key())  # the pair signs: no logout
    assert private.public_key().public_bytes_raw() in [
        key.public_bytes_raw() for key in published.published()
    ]
