"""lib.auth tokens and guards: round trip, forged tokens, key handling (tools.keys:
test_keys.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lib.auth.principal import Principal, Role, is_self_or, require_role, require_verified
from lib.auth.tokens import TokenSigner, TokenVerifier, generate_keypair, signed_header
from lib.errors import Forbidden, Unauthorized

TTL = 900
USER_ID = uuid.UUID("5b0c6a0e-1c1e-4a57-9d43-4f0f6c2b9a11")


@dataclass(frozen=True)
class Keys:
    private_pem: str
    public_pem: str


@pytest.fixture(scope="module")
def keys() -> Keys:
    private_pem, public_pem = generate_keypair()
    return Keys(private_pem, public_pem)


@pytest.fixture
def signer(keys: Keys) -> TokenSigner:
    return TokenSigner(keys.private_pem, TTL)


@pytest.fixture
def verifier(keys: Keys) -> TokenVerifier:
    return TokenVerifier(keys.public_pem)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def now_s() -> int:
    return int(datetime.now(UTC).timestamp())


def good_claims(**changes: Any) -> dict[str, Any]:
    """Claims exactly as TokenSigner writes them; a change of None drops the claim."""
    iat = now_s()
    claims: dict[str, Any] = {
        "iss": "fixup-users",
        "aud": "fixup",
        "sub": str(USER_ID),
        "role": "CUSTOMER",
        "verified": True,
        "iat": iat,
        "exp": iat + TTL,
        "jti": uuid.uuid4().hex,
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def signed(keys: Keys, **changes: Any) -> str:
    """Properly EdDSA-signed with the real key: only the claims are wrong."""
    return jwt.encode(
        good_claims(**changes),
        keys.private_pem,
        algorithm="EdDSA",
        headers=signed_header(keys.private_pem),
    )


# --- round trip --------------------------------------------------------------------


def test_round_trip_claims_and_principal(keys: Keys, verifier: TokenVerifier) -> None:
    # a second back, so that the .123 456 is never ahead of the verifier's clock
    fixed = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=123_456)
    signer = TokenSigner(keys.private_pem, TTL, clock=lambda: fixed)
    whole = fixed.replace(microsecond=0)

    token, issued = signer.issue(USER_ID, Role.PROVIDER, verified=True)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["typ"] == "at+jwt"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "role", "verified", "iat", "exp", "jti"}
    assert claims["iss"] == "fixup-users"
    assert claims["aud"] == "fixup"
    assert claims["sub"] == str(USER_ID)
    assert claims["role"] == "PROVIDER"
    assert claims["verified"] is True
    assert claims["iat"] == int(whole.timestamp()) + 0.123  # milliseconds, truncated
    assert claims["exp"] == int(whole.timestamp()) + TTL  # whole seconds
    assert len(claims["jti"]) == 32
    assert uuid.UUID(hex=claims["jti"]).version == 4

    assert issued == Principal(
        user_id=USER_ID,
        role=Role.PROVIDER,
        verified=True,
        token_id=claims["jti"],
        expires_at=whole + timedelta(seconds=TTL),
        issued_at_ms=int(whole.timestamp()) * 1000 + 123,
    )
    assert verifier.verify(token) == issued


def test_the_session_round_trips(signer: TokenSigner, verifier: TokenVerifier) -> None:
    """`sid` names the session (ADR 0055): signed when given, read back; absent: None."""
    session = uuid.uuid4()
    token, issued = signer.issue(USER_ID, Role.CUSTOMER, True, session_id=session)
    assert jwt.decode(token, options={"verify_signature": False})["sid"] == str(session)
    assert issued.session_id == session
    assert verifier.verify(token) == issued
    without, _ = signer.issue(USER_ID, Role.CUSTOMER, True)
    assert verifier.verify(without).session_id is None


@pytest.mark.parametrize(
    ("iat_offset", "issued_ms_offset"), [(0, 0), (0.5, 500), (0.001, 1), (0.999, 999)]
)
def test_iat_whole_seconds_or_milliseconds(
    keys: Keys, verifier: TokenVerifier, iat_offset: float, issued_ms_offset: int
) -> None:
    """Tokens with a whole-second iat (signed before milliseconds) still verify; either
    kind's iat is read to the millisecond."""
    iat = now_s() - 10
    token = signed(keys, iat=iat + iat_offset)
    assert verifier.verify(token).issued_at_ms == iat * 1000 + issued_ms_offset


@pytest.mark.parametrize("bad", [True, "1700000000", float("nan"), float("inf"), 1e300, None])
def test_iat_must_be_a_finite_number(keys: Keys, bad: object) -> None:
    claims = good_claims()
    claims["iat"] = bad
    token = jwt.encode(
        claims, keys.private_pem, algorithm="EdDSA", headers=signed_header(keys.private_pem)
    )
    with pytest.raises(Unauthorized, match="invalid token"):
        TokenVerifier(keys.public_pem).verify(token)


def test_each_token_has_its_own_jti(signer: TokenSigner) -> None:
    first, _ = signer.issue(USER_ID, Role.CUSTOMER, verified=False)
    second, _ = signer.issue(USER_ID, Role.CUSTOMER, verified=False)
    assert first != second


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("verified", [True, False])
def test_every_role_round_trips(
    signer: TokenSigner, verifier: TokenVerifier, role: Role, verified: bool
) -> None:
    token, _ = signer.issue(USER_ID, role, verified)
    principal = verifier.verify(token)
    assert principal.role is role
    assert principal.verified is verified
    assert principal.user_id == USER_ID


def test_issue_accepts_role_name_and_rejects_unknown(signer: TokenSigner) -> None:
    _, principal = signer.issue(USER_ID, "MODERATOR", verified=True)
    assert principal.role is Role.MODERATOR
    with pytest.raises(ValueError, match="ROOT"):
        signer.issue(USER_ID, "ROOT", verified=True)


def test_leeway_accepts_a_just_expired_token(keys: Keys) -> None:
    token = signed(keys, iat=now_s() - TTL - 5, exp=now_s() - 5)
    with pytest.raises(Unauthorized, match="token expired"):
        TokenVerifier(keys.public_pem).verify(token)
    assert TokenVerifier(keys.public_pem, leeway=30).verify(token).user_id == USER_ID


# --- the verified-token cache -------------------------------------------------------


class Clock:
    """The cache's clock, moved by the test."""

    def __init__(self) -> None:
        self.at = float(now_s())

    def __call__(self) -> float:
        return self.at


def test_a_remembered_token_skips_the_signature_check(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(keys.public_pem)
    token = signed(keys)
    first = verifier.verify(token)
    decodes: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append("decode"))
    assert verifier.verify(token) is first
    assert decodes == []


def test_a_remembered_token_expires_on_the_clock(keys: Keys) -> None:
    clock = Clock()
    exp = now_s() + 60
    verifier = TokenVerifier(keys.public_pem, now=clock)
    token = signed(keys, exp=exp)
    verifier.verify(token)
    clock.at = exp - 1
    assert verifier.verify(token).user_id == USER_ID
    clock.at = exp  # PyJWT's rule: expired when exp <= now
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    assert caught.value.detail == "token expired"
    with pytest.raises(Unauthorized, match="token expired"):  # forgotten, checked in full
        TokenVerifier(keys.public_pem, now=clock).verify(signed(keys, exp=now_s() - 1))


def test_the_leeway_applies_to_a_remembered_token(keys: Keys) -> None:
    clock = Clock()
    exp = now_s() + 60
    verifier = TokenVerifier(keys.public_pem, leeway=30, now=clock)
    token = signed(keys, exp=exp)
    verifier.verify(token)
    clock.at = exp + 29
    assert verifier.verify(token).user_id == USER_ID
    clock.at = exp + 30
    with pytest.raises(Unauthorized, match="token expired"):
        verifier.verify(token)


def test_a_failed_token_is_not_remembered_and_a_changed_one_is_checked(keys: Keys) -> None:
    verifier = TokenVerifier(keys.public_pem)
    token = signed(keys)
    # unchanged, `signed()` is a valid token: the control for the claim cases below
    assert verifier.verify(token).role is Role.CUSTOMER
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for _ in range(2):
        with pytest.raises(Unauthorized, match="invalid token"):
            verifier.verify(f"{header}.{payload}.{flipped}")
    tampered = b64url_json({**good_claims(), "role": "ADMIN"})
    with pytest.raises(Unauthorized, match="invalid token"):
        verifier.verify(f"{header}.{tampered}.{signature}")
    assert verifier.verify(token).role is Role.CUSTOMER


def test_the_cache_is_bounded_oldest_out(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(keys.public_pem, cache_size=2)
    tokens = [signed(keys) for _ in range(3)]
    for token in tokens:
        verifier.verify(token)
    real_decode = jwt.decode
    decoded: list[str] = []

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    for token in tokens[1:]:
        verifier.verify(token)
    assert decoded == []
    verifier.verify(tokens[0])  # pushed out by the third: checked again
    assert decoded == [tokens[0]]


def test_a_token_that_is_not_a_string_is_invalid_not_a_crash(keys: Keys) -> None:
    verifier = TokenVerifier(keys.public_pem)
    for token in (["a.b.c"], None, b"a.b.c"):
        with pytest.raises(Unauthorized) as caught:
            verifier.verify(token)  # type: ignore[arg-type]
        assert caught.value.detail == "invalid token"


def test_cache_size_zero_remembers_nothing(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(keys.public_pem, cache_size=0)
    token = signed(keys)
    verifier.verify(token)
    calls: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(
        jwt, "decode", lambda t, *a, **k: calls.append(t) or real_decode(t, *a, **k)
    )
    verifier.verify(token)
    assert calls == [token]
    with pytest.raises(ValueError, match="cache_size"):
        TokenVerifier(keys.public_pem, cache_size=-1)


def test_missing_verified_claim_means_not_verified(keys: Keys, verifier: TokenVerifier) -> None:
    assert verifier.verify(signed(keys, verified=None)).verified is False


# --- attacks and failures ------------------------------------------------------------


def forge_alg_none(keys: Keys) -> str:
    header = b64url_json({"alg": "none", "typ": "JWT"})
    return f"{header}.{b64url_json(good_claims())}."


def forge_alg_none_capitalised(keys: Keys) -> str:
    header = b64url_json({"alg": "None", "typ": "JWT"})
    return f"{header}.{b64url_json(good_claims())}."


def forge_no_alg(keys: Keys) -> str:
    valid = signed(keys)
    _, payload, signature = valid.split(".")
    return f"{b64url_json({'typ': 'JWT'})}.{payload}.{signature}"


def forge_hs256_with_public_key(keys: Keys) -> str:
    """The classic confusion: HMAC keyed with the verifier's own public PEM."""
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'JWT'})}.{b64url_json(good_claims())}"
    mac = hmac.new(keys.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def forge_hmac_signature_under_eddsa_header(keys: Keys) -> str:
    signing_input = f"{b64url_json({'alg': 'EdDSA', 'typ': 'JWT'})}.{b64url_json(good_claims())}"
    mac = hmac.new(keys.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def forge_other_ed25519_key(keys: Keys) -> str:
    other_private, _ = generate_keypair()
    token, _ = TokenSigner(other_private, TTL).issue(USER_ID, Role.ADMIN, verified=True)
    return token


def forge_tampered_payload(keys: Keys) -> str:
    """Real signature, payload swapped for one that claims ADMIN."""
    header, _, signature = signed(keys).split(".")
    return f"{header}.{b64url_json(good_claims(role='ADMIN'))}.{signature}"


def forge_truncated_signature(keys: Keys) -> str:
    return signed(keys)[:-4]


def forge_expired(keys: Keys) -> str:
    past = datetime.now(UTC) - timedelta(seconds=TTL + 60)
    token, _ = TokenSigner(keys.private_pem, TTL, clock=lambda: past).issue(
        USER_ID, Role.CUSTOMER, verified=True
    )
    return token


def forge_issued_in_future(keys: Keys) -> str:
    future = datetime.now(UTC) + timedelta(hours=1)
    token, _ = TokenSigner(keys.private_pem, TTL, clock=lambda: future).issue(
        USER_ID, Role.CUSTOMER, verified=True
    )
    return token


def typed_case(typ: str | None) -> Callable[[Keys], str]:
    """The real key's signature over good claims, the header typed `typ` (None: no typ)."""

    def forge(keys: Keys) -> str:
        payload = json.dumps(good_claims()).encode()
        header = {**signed_header(keys.private_pem), "typ": typ}
        return jwt.api_jws.encode(payload, keys.private_pem, algorithm="EdDSA", headers=header)

    return forge


def claims_case(**changes: Any) -> Callable[[Keys], str]:
    return lambda keys: signed(keys, **changes)


ATTACKS: list[tuple[str, Callable[[Keys], str], str]] = [
    ("alg-none", forge_alg_none, "invalid token"),
    ("alg-None", forge_alg_none_capitalised, "invalid token"),
    ("no-alg-header", forge_no_alg, "invalid token"),
    ("hs256-public-key-as-secret", forge_hs256_with_public_key, "invalid token"),
    ("hmac-under-eddsa-header", forge_hmac_signature_under_eddsa_header, "invalid token"),
    ("other-ed25519-key", forge_other_ed25519_key, "invalid token"),
    ("tampered-payload", forge_tampered_payload, "invalid token"),
    ("truncated-signature", forge_truncated_signature, "invalid token"),
    ("expired", forge_expired, "token expired"),
    ("iat-in-future", forge_issued_in_future, "invalid token"),
    ("typ-JWT", typed_case("JWT"), "invalid token"),
    ("typ-dpop", typed_case("dpop+jwt"), "invalid token"),
    ("typ-secevent", typed_case("secevent+jwt"), "invalid token"),
    ("typ-application-jwt", typed_case("application/jwt"), "invalid token"),
    ("typ-at+jwt-prefixed", typed_case("x-at+jwt"), "invalid token"),
    ("no-typ", typed_case(None), "invalid token"),
    ("wrong-iss", claims_case(iss="evil-users"), "invalid token"),
    ("wrong-aud", claims_case(aud="other"), "invalid token"),
    ("aud-list", claims_case(aud=["fixup", "other"]), "invalid token"),
    ("missing-iss", claims_case(iss=None), "invalid token"),
    ("missing-aud", claims_case(aud=None), "invalid token"),
    ("missing-exp", claims_case(exp=None), "invalid token"),
    ("missing-iat", claims_case(iat=None), "invalid token"),
    ("missing-sub", claims_case(sub=None), "invalid token"),
    ("missing-role", claims_case(role=None), "invalid token"),
    ("missing-jti", claims_case(jti=None), "invalid token"),
    ("empty-jti", claims_case(jti=""), "invalid token"),
    ("role-not-in-Role", claims_case(role="SUPERUSER"), "invalid token"),
    ("role-lowercase", claims_case(role="admin"), "invalid token"),
    ("role-not-string", claims_case(role=1), "invalid token"),
    ("sub-not-uuid", claims_case(sub="not-a-uuid"), "invalid token"),
    ("sub-uuid-not-canonical", claims_case(sub=USER_ID.hex), "invalid token"),
    ("verified-not-bool", claims_case(verified="true"), "invalid token"),
    ("sid-not-uuid", claims_case(sid="not-a-uuid"), "invalid token"),
    ("sid-uuid-not-canonical", claims_case(sid=USER_ID.hex), "invalid token"),
    ("sid-not-string", claims_case(sid=1), "invalid token"),
    ("sid-empty", claims_case(sid=""), "invalid token"),
    # built when the test runs: a token made at import would expire before a late test
    ("exp-float", lambda keys: signed(keys, exp=float(now_s() + TTL)), "invalid token"),
    ("garbage", lambda keys: "not-a-token", "invalid token"),
    ("garbage-three-segments", lambda keys: "a.b.c", "invalid token"),
    ("empty", lambda keys: "", "invalid token"),
    ("oversized", lambda keys: signed(keys, pad="x" * 5000), "invalid token"),
]


@pytest.mark.parametrize(
    ("make_token", "detail"),
    [pytest.param(make, detail, id=name) for name, make, detail in ATTACKS],
)
def test_attack_is_unauthorized(
    keys: Keys, verifier: TokenVerifier, make_token: Callable[[Keys], str], detail: str
) -> None:
    token = make_token(keys)
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    assert caught.value.detail == detail
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_hs256_forgery_would_pass_a_naive_hmac_check(keys: Keys) -> None:
    """The forged token is real: its MAC checks out under the public PEM as secret."""
    token = forge_hs256_with_public_key(keys)
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(keys.public_pem.encode(), signing_input.encode(), hashlib.sha256)
    assert b64url(expected.digest()) == signature
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


# --- keys ----------------------------------------------------------------------------


def ec_pems() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def test_signer_rejects_bad_keys(keys: Keys) -> None:
    ec_private, _ = ec_pems()
    with pytest.raises(ValueError, match="must be Ed25519"):
        TokenSigner(ec_private, TTL)
    with pytest.raises(ValueError, match="not a valid PEM private key"):
        TokenSigner(keys.public_pem, TTL)
    with pytest.raises(ValueError, match="not a valid PEM private key"):
        TokenSigner("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n", TTL)
    with pytest.raises(ValueError, match="empty"):
        TokenSigner("", TTL)
    with pytest.raises(ValueError, match="TTL"):
        TokenSigner(keys.private_pem, 0)


def test_verifier_rejects_bad_keys(keys: Keys) -> None:
    _, ec_public = ec_pems()
    with pytest.raises(ValueError, match="must be Ed25519"):
        TokenVerifier(ec_public)
    with pytest.raises(ValueError, match="not a valid PEM public key"):
        TokenVerifier(keys.private_pem)
    with pytest.raises(ValueError, match="not a valid PEM public key"):
        TokenVerifier("garbage")
    with pytest.raises(ValueError, match="empty"):
        TokenVerifier("  ")
    with pytest.raises(ValueError, match="leeway"):
        TokenVerifier(keys.public_pem, leeway=-1)


# --- guards --------------------------------------------------------------------------


def principal(role: Role = Role.CUSTOMER, verified: bool = True) -> Principal:
    return Principal(
        user_id=USER_ID,
        role=role,
        verified=verified,
        token_id="t",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def test_require_role() -> None:
    require_role(principal(Role.ADMIN), Role.MODERATOR, Role.ADMIN)
    with pytest.raises(Forbidden, match=r"^requires role MODERATOR or ADMIN$") as caught:
        require_role(principal(Role.PROVIDER), Role.MODERATOR, Role.ADMIN)
    assert caught.value.status == 403
    with pytest.raises(Forbidden, match=r"^requires role ADMIN$"):
        require_role(principal(Role.CUSTOMER), Role.ADMIN)
    with pytest.raises(Forbidden, match=r"^requires role CUSTOMER, PROVIDER or ADMIN$"):
        require_role(principal(Role.MODERATOR), Role.CUSTOMER, Role.PROVIDER, Role.ADMIN)
    with pytest.raises(ValueError, match="at least one role"):
        require_role(principal())


def test_require_verified() -> None:
    require_verified(principal(verified=True))
    with pytest.raises(Forbidden, match=r"^account not verified$"):
        require_verified(principal(verified=False))


def test_is_self_or() -> None:
    other = uuid.uuid4()
    assert is_self_or(principal(Role.CUSTOMER), USER_ID)
    assert is_self_or(principal(Role.CUSTOMER), USER_ID, Role.ADMIN)
    assert not is_self_or(principal(Role.CUSTOMER), other)
    assert not is_self_or(principal(Role.CUSTOMER), other, Role.ADMIN)
    assert is_self_or(principal(Role.ADMIN), other, Role.MODERATOR, Role.ADMIN)


def test_principal_is_frozen() -> None:
    with pytest.raises(AttributeError):
        principal().role = Role.ADMIN  # type: ignore[misc]


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
def test_the_access_token_type_in_either_spelling_verifies(keys: Keys, typ: str) -> None:
    """RFC 9068 §4: `at+jwt` or `application/at+jwt`, media types in any case."""
    payload = json.dumps(good_claims()).encode()
    token = jwt.api_jws.encode(
        payload,
        keys.private_pem,
        algorithm="EdDSA",
        headers={**signed_header(keys.private_pem), "typ": typ},
    )
    assert TokenVerifier(keys.public_pem).verify(token).user_id == USER_ID


def test_a_verified_token_stays_typed(keys: Keys, signer: TokenSigner) -> None:
    """The signer types every token it issues, and a token of another type with the same
    claims and key is refused even after the typed one was cached."""
    token, issued = signer.issue(USER_ID, Role.CUSTOMER, verified=True)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    verifier = TokenVerifier(keys.public_pem)
    assert verifier.verify(token) == issued
    claims = jwt.decode(token, options={"verify_signature": False})
    other = jwt.encode(claims, keys.private_pem, algorithm="EdDSA", headers={"typ": "dpop+jwt"})
    with pytest.raises(Unauthorized, match="invalid token"):
        verifier.verify(other)


def test_issued_at_given_wins_over_the_signers_clock(keys: Keys) -> None:
    """users passes its database's clock (ADR 0010): the token carries that moment, not
    the signer's own clock."""
    own = datetime.now(UTC)
    given = own - timedelta(seconds=90, milliseconds=250)
    signer = TokenSigner(keys.private_pem, TTL, clock=lambda: own)
    token, issued = signer.issue(USER_ID, Role.CUSTOMER, verified=True, issued_at=given)
    assert issued.issued_at_ms == math.floor(given.timestamp() * 1000)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] == math.floor(given.timestamp()) + TTL
