"""GET /.well-known/jwks.json: the public keys access tokens are verified with (ADR 0032).

The JWK Set (RFC 7517, RFC 8037) of the signing keyring's published keys: the current key,
the staged next one, and retired ones while a token they signed may still be valid. The
keyring is read again every JWT_KEYS_RELOAD_INTERVAL (lib/keyring.py), so a rotation
shows here without a restart. With a single JWT_PRIVATE_KEY instead, that key alone.
Public, anonymous (a stale token never refuses it), routed by NGINX at the same path.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from lib.auth.jwks import jwks_document
from lib.errors import ServiceUnavailable
from lib.http.openapi import operation
from services.users.auth_kit import AUTH_KIT

routes = web.RouteTableDef()
JWKS_TAGS = ["keys"]
MAX_AGE = 30  # seconds an HTTP cache may keep it: far below the wait before a promotion


class Jwk(BaseModel):
    """An Ed25519 public key (RFC 8037 §2)."""

    kty: str = Field(examples=["OKP"])
    crv: str = Field(examples=["Ed25519"])
    x: str = Field(
        description="the public key, base64url",
        examples=["11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"],
    )
    kid: str = Field(
        description="its RFC 7638 thumbprint",
        examples=["kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"],
    )
    use: str = Field(examples=["sig"])
    alg: str = Field(examples=["EdDSA"])


class JwkSet(BaseModel):
    """A JWK Set (RFC 7517 §5)."""

    keys: list[Jwk]


@routes.get("/.well-known/jwks.json")
@operation(
    "Token signing keys",
    tags=JWKS_TAGS,
    response=JwkSet,
    enveloped=False,
    anonymous=True,
    errors=(503,),
    description="The public keys access tokens are signed with, by `kid` (the JWS header's): "
    "the signing key, the next one and retired ones while their tokens may be valid.",
)
async def jwks(request: web.Request) -> web.Response:
    published = request.app[AUTH_KIT].published
    if published is None:
        raise ServiceUnavailable("token signing is not configured (JWT_PRIVATE_KEY)")
    response = web.json_response(jwks_document(published.published()))
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response
