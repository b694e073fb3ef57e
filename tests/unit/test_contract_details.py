"""The exact words and edges of lib/http/body and lib/auth errors: a client reads `detail`
and `errors[].field`, an operator reads a startup ValueError, so each is pinned here, with
the boundaries the broader tests cross without stopping at (the list parameters' and
If-Match's words are pinned by tests/unit/test_http_parsing.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import make_mocked_request
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from lib.auth.principal import Principal, Role, require_role
from lib.auth.tokens import (
    TokenSigner,
    TokenVerifier,
    _utcnow,
    generate_keypair,
    load_private_key,
    load_public_key,
    signed_header,
)
from lib.errors import PayloadTooLarge, Unauthorized
from lib.http.body import MAX_BODY, field_errors, parse_body
from tests.unit.test_auth_tokens import ec_pems

# --- body ----------------------------------------------------------------------------------


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: int
    end: int

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def test_a_whole_body_error_is_reported_on_body() -> None:
    with pytest.raises(ValidationError) as caught:
        Window.model_validate({"start": 2, "end": 1})
    assert [(e.field, e.message) for e in field_errors(caught.value)] == [
        ("body", "Value error, end must be after start")
    ]


async def test_a_declared_length_over_1_mib_is_413_before_reading() -> None:
    request = make_mocked_request(
        "POST",
        "/x",
        headers={"Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)},
    )
    with pytest.raises(PayloadTooLarge) as caught:
        await parse_body(request, Window)
    assert (caught.value.status, caught.value.code) == (413, "PAYLOAD_TOO_LARGE")
    assert caught.value.detail == "the body may be at most 1048576 bytes"


async def test_an_undeclared_body_read_past_1_mib_is_413_with_the_limit() -> None:
    request = make_mocked_request("POST", "/x", headers={"Content-Type": "application/json"})

    async def oversized() -> bytes:  # a server whose client_max_size is above 1 MiB
        return b" " * (MAX_BODY + 1)

    object.__setattr__(request, "read", oversized)
    with pytest.raises(PayloadTooLarge) as caught:
        await parse_body(request, Window)
    assert caught.value.detail == "the body may be at most 1048576 bytes"


# --- principal -----------------------------------------------------------------------------


def test_require_role_needs_a_role() -> None:
    principal = Principal(uuid.uuid4(), Role.ADMIN, True, "j", datetime.now(UTC))
    with pytest.raises(ValueError, match=r"^require_role needs at least one role$"):
        require_role(principal)


# --- tokens --------------------------------------------------------------------------------


def test_utcnow_is_aware_utc() -> None:
    now = _utcnow()
    assert now.tzinfo is UTC
    assert abs((datetime.now(UTC) - now).total_seconds()) < 60


def test_generated_keys_are_ascii_pem_text() -> None:
    private_pem, public_pem = generate_keypair()
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("  \n", "JWT private key is empty (set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE)"),
        ("not a pem", "JWT private key is not a valid PEM private key"),
    ],
)
def test_private_key_errors(pem: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^JWT private key") as caught:
        load_private_key(pem)
    assert str(caught.value) == message


def test_an_encrypted_private_key_is_named() -> None:
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        .decode()
    )
    with pytest.raises(ValueError, match=r"^JWT private key") as caught:
        load_private_key(pem)
    assert str(caught.value) == "JWT private key is encrypted; an unencrypted PEM is needed"


def test_a_key_of_another_kind_is_named_by_its_class() -> None:
    private, public = ec_pems()
    with pytest.raises(ValueError, match=r"^JWT private key") as caught:
        load_private_key(private)
    assert str(caught.value) == "JWT private key must be Ed25519, got ECPrivateKey"
    with pytest.raises(ValueError, match=r"^JWT public key") as caught:
        load_public_key(public)
    assert str(caught.value) == "JWT public key must be Ed25519, got ECPublicKey"


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("", "JWT public key is empty (set JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE)"),
        ("garbage", "JWT public key is not a valid PEM public key"),
    ],
)
def test_public_key_errors(pem: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^JWT public key") as caught:
        load_public_key(pem)
    assert str(caught.value) == message


def test_a_one_second_ttl_is_the_shortest() -> None:
    private_pem, _ = generate_keypair()
    assert TokenSigner(private_pem, 1).ttl_seconds == 1
    with pytest.raises(ValueError, match=r"^access token TTL must be at least 1 second, got 0$"):
        TokenSigner(private_pem, 0)


def test_no_leeway_by_default() -> None:
    private_pem, public_pem = generate_keypair()
    now = datetime.now(UTC)
    signer = TokenSigner(private_pem, 1, clock=lambda: now.replace(year=now.year - 1))
    token, _ = signer.issue(uuid.uuid4(), Role.CUSTOMER, True)
    with pytest.raises(Unauthorized) as caught:
        TokenVerifier(public_pem).verify(token)
    assert caught.value.detail == "token expired"
    assert TokenVerifier(public_pem)._leeway == 0


@pytest.mark.parametrize("token", [None, 123, b"bytes", ""])
def test_anything_but_a_non_empty_string_is_invalid(token: Any) -> None:
    _, public_pem = generate_keypair()
    with pytest.raises(Unauthorized) as caught:
        TokenVerifier(public_pem).verify(token)
    assert caught.value.detail == "invalid token"


def test_an_expiry_past_the_calendar_is_invalid_not_a_crash() -> None:
    private_pem, public_pem = generate_keypair()
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": "fixup-users",
        "aud": "fixup",
        "sub": str(uuid.uuid4()),
        "role": "CUSTOMER",
        "verified": True,
        "iat": now,
        "exp": 10**12,  # year ~33658: datetime cannot hold it
        "jti": "j",
    }
    token = jwt.encode(claims, private_pem, algorithm="EdDSA", headers=signed_header(private_pem))
    with pytest.raises(Unauthorized) as caught:
        TokenVerifier(public_pem).verify(token)
    assert caught.value.detail == "invalid token"
