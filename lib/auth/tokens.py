"""Access tokens: EdDSA (Ed25519) JWTs, issued by the users service, verified by all.

Claims: iss="fixup-users", aud="fixup", sub (user id), role, verified, iat, exp, jti, and
`sid` (the session: the refresh family the token was issued for; absent on a token issued
outside a session) - the users service's re-authentication and session list read it.
`iat` carries milliseconds (a NumericDate may, RFC 7519): a revocation voids the tokens
issued before it to the millisecond (lib.auth.revocation); `exp` is whole seconds. The
users service signs with its database's clock, the one revocations are written with; the
verifiers forgive TOKEN_CLOCK_LEEWAY seconds of skew on iat/nbf/exp (ADR 0010).
The verifier accepts only alg=EdDSA: the header is checked before anything is decoded and
PyJWT is told the same, so `alg=none` and HS256-signed-with-the-public-key tokens fail.
The header also types the token: `typ: at+jwt` (RFC 9068 §2.1, RFC 8725 §3.11), required
by the verifier, so no other JWT the key might ever sign passes as an access token.
And it names the key: `kid`, the key's JWK thumbprint (lib/auth/jwks.py, ADR 0032); the
verifier looks only that key up in its `KeySource` (a kid of any other shape is refused
unread), and `authenticate` lets the source look again once for a kid it does not know.
Every failure is `lib.errors.Unauthorized` with a short detail that names no internals:
"token expired" or "invalid token".

A verified token is remembered by its exact string until it expires: the same bearer token
arrives with every request of a session, and checking an Ed25519 signature again costs
about 200 us of CPU per request (bench/http_users.py). Only tokens that passed every check
are kept, a changed character is another string (checked in full), and a hit still checks
`exp` against the clock and that the key its `kid` names is still trusted (a retired key's
tokens, even forged with a far `exp`, end with the key).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from lib.auth.jwks import is_key_id, key_id
from lib.auth.keysources import KeySource, SigningKeys, StaticKeys, StaticSigningKey
from lib.auth.pem import generate_keypair as generate_keypair
from lib.auth.pem import load_private_key as load_private_key
from lib.auth.pem import load_public_key as load_public_key
from lib.auth.principal import Principal, Role
from lib.errors import ServiceUnavailable, Unauthorized

ISSUER = "fixup-users"
AUDIENCE = "fixup"
ALGORITHM = "EdDSA"
ACCESS_TOKEN_TYPE = "at+jwt"  # the JOSE header's typ (RFC 9068 §2.1)
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub", "role", "jti")
MAX_TOKEN_LENGTH = 4096  # ours are ~400 bytes; anything far larger is not ours
VERIFIED_CACHE_SIZE = 4096  # tokens remembered per verifier (~2 MB at most)

Clock = Callable[[], datetime]
TYPED = {"typ": ACCESS_TOKEN_TYPE}  # the header every access token carries


def signed_header(private_key_pem: str) -> dict[str, str]:
    """The JOSE header the signer writes with this key (besides `alg`): `typ` and `kid`."""
    return {**TYPED, "kid": key_id(load_private_key(private_key_pem).public_key())}


def is_access_token_type(typ: object) -> bool:
    """RFC 9068 §4: `at+jwt`, or its full media type `application/at+jwt`; any case
    (media types are case-insensitive, RFC 7515 §4.1.9)."""
    if not isinstance(typ, str):
        return False
    return typ.lower().removeprefix("application/") == ACCESS_TOKEN_TYPE


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenSigner:
    """Issues access tokens; only the users service holds the private key(s): one PEM, or
    a `SigningKeys` (the key directory's signing key, read again as it rotates)."""

    def __init__(
        self, private_key: str | SigningKeys, ttl_seconds: int, clock: Clock = _utcnow
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError(f"access token TTL must be at least 1 second, got {ttl_seconds}")
        self._keys = StaticSigningKey(private_key) if isinstance(private_key, str) else private_key
        self._keys.signing_key()  # ValueError now rather than at the first sign-in
        self._ttl = ttl_seconds
        self._clock = clock

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(
        self,
        user_id: uuid.UUID,
        role: Role | str,
        verified: bool,
        issued_at: datetime | None = None,
        session_id: uuid.UUID | None = None,
    ) -> tuple[str, Principal]:
        """A signed access token for the user and the Principal it describes; `issued_at`
        (the users service passes its database's clock, ADR 0010), else the signer's clock;
        `session_id`, the `sid` claim (ADR 0055)."""
        role = Role(role)  # ValueError for a role that does not exist
        moment = self._clock() if issued_at is None else issued_at
        issued_at_ms = math.floor(moment.timestamp() * 1000)
        iat = issued_at_ms / 1000
        exp = issued_at_ms // 1000 + self._ttl
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "role": role.value,
            "verified": bool(verified),
            "iat": iat,
            "exp": exp,
            "jti": jti,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        kid, key = self._keys.signing_key()
        token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={**TYPED, "kid": kid})
        principal = Principal(
            user_id=user_id,
            role=role,
            verified=bool(verified),
            token_id=jti,
            expires_at=datetime.fromtimestamp(exp, UTC),
            issued_at_ms=issued_at_ms,
            session_id=session_id,
        )
        return token, principal


class TokenVerifier:
    """Verifies access tokens with the key their `kid` names; every failure is Unauthorized."""

    def __init__(
        self,
        public_keys: str | KeySource,
        leeway: int = 0,
        *,
        cache_size: int = VERIFIED_CACHE_SIZE,
        now: Callable[[], float] = time.time,
    ) -> None:
        if leeway < 0:
            raise ValueError(f"leeway must not be negative, got {leeway}")
        if cache_size < 0:
            raise ValueError(f"cache_size must not be negative, got {cache_size}")
        self.keys: KeySource = (
            StaticKeys.from_pem(public_keys) if isinstance(public_keys, str) else public_keys
        )
        self._leeway = leeway
        self._cache_size = cache_size
        self._now = now
        # token -> (exp, principal, kid): a hit still checks exp and that the key is trusted
        self._verified: dict[str, tuple[int, Principal, str]] = {}

    async def authenticate(self, token: str) -> Principal:
        """`verify`, letting the key source look again (once, rate-limited) for an unknown
        kid: a key promoted since the source last looked."""
        try:
            return self.verify(token)
        except UnknownKey:
            if not await self.keys.refresh():
                if not self.keys.published():  # no key ever reached this process: not the
                    # token's fault; 401 would send its holder to sign in again
                    raise ServiceUnavailable("token keys are not available yet") from None
                raise
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """The Principal of a valid token; Unauthorized("token expired" | "invalid token")."""
        hit = self._verified.get(token) if isinstance(token, str) else None
        if hit is None:
            return self._remember(token, self._check(token))
        exp, principal, kid = hit
        if exp <= self._now() - self._leeway:  # PyJWT's rule for `exp`
            del self._verified[token]
            raise Unauthorized("token expired")
        if self.keys.key(kid) is None:  # its key retired since: checked again, in full
            del self._verified[token]
            return self._remember(token, self._check(token))
        return principal

    def _remember(self, token: str, verified: tuple[int, Principal, str]) -> Principal:
        if self._cache_size:
            if len(self._verified) >= self._cache_size:
                del self._verified[next(iter(self._verified))]  # the oldest entry
            self._verified[token] = verified
        return verified[1]

    def _check(self, token: str) -> tuple[int, Principal, str]:
        """Every check, in full: the header, the signature, the claims."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("invalid token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        if header.get("alg") != ALGORITHM or not is_access_token_type(header.get("typ")):
            raise Unauthorized("invalid token")
        kid = header.get("kid")
        if not is_key_id(kid):  # no kid, or none of ours: never looked up
            raise Unauthorized("invalid token")
        key = self.keys.key(kid)
        if key is None:
            raise UnknownKey("invalid token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "strict_aud": True,
                    # the times are checked below against this verifier's clock
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        principal = _principal(claims)
        self._check_times(claims)
        return claims["exp"], principal, kid

    def _check_times(self, claims: dict[str, Any]) -> None:
        """PyJWT's rules, on `now`: exp passed, iat or nbf ahead, each beyond the leeway."""
        now = self._now()
        nbf = claims.get("nbf", claims["iat"])
        if not _is_time(nbf) or nbf > now + self._leeway or claims["iat"] > now + self._leeway:
            raise Unauthorized("invalid token")
        if claims["exp"] <= now - self._leeway:
            raise Unauthorized("token expired")


class UnknownKey(Unauthorized):
    """A well-formed kid this verifier does not hold (yet): `authenticate` looks again."""


def _principal(claims: dict[str, Any]) -> Principal:
    """Check the claims' types and shapes (the signature is already verified)."""
    sub, role, jti = claims["sub"], claims["role"], claims["jti"]
    exp, iat = claims["exp"], claims["iat"]
    verified = claims.get("verified", False)
    if not (
        isinstance(sub, str)
        and isinstance(role, str)
        and isinstance(jti, str)
        and jti
        and _is_int(exp)
        and _is_time(iat)
        and isinstance(verified, bool)
    ):
        raise Unauthorized("invalid token")
    try:
        user_id = uuid.UUID(sub)
        principal_role = Role(role)
    except ValueError:
        raise Unauthorized("invalid token") from None
    if str(user_id) != sub:  # only the canonical form we issue
        raise Unauthorized("invalid token")
    session_id = _session_id(claims.get("sid"))
    try:
        expires_at = datetime.fromtimestamp(exp, UTC)
        issued_at_ms = round(iat * 1000)
    except (OverflowError, OSError, ValueError):
        raise Unauthorized("invalid token") from None
    return Principal(
        user_id=user_id,
        role=principal_role,
        verified=verified,
        token_id=jti,
        expires_at=expires_at,
        issued_at_ms=issued_at_ms,
        session_id=session_id,
    )


def _session_id(sid: object) -> uuid.UUID | None:
    """`sid`: absent, or a UUID in the canonical form we issue."""
    if sid is None:
        return None
    try:
        session_id = uuid.UUID(sid) if isinstance(sid, str) else None
    except ValueError:
        session_id = None
    if session_id is None or str(session_id) != sid:
        raise Unauthorized("invalid token")
    return session_id


def _is_time(value: object) -> bool:
    """A NumericDate: an int, or a finite float (ours carry milliseconds)."""
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
