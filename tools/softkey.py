"""A software passkey: what a platform authenticator answers (attestation "none", an ES256
key, the user present and verified), built from the WebAuthn Level 2 formats with
`cryptography` and py_webauthn's CBOR encoder. The API-level passkey tests answer with it
(also from another origin, or an assertion replayed) and docs/examples.md runs it where a
browser would ask its authenticator:

    python -m tools.softkey create KEYFILE ORIGIN < options.json   # a new credential
    python -m tools.softkey get KEYFILE ORIGIN < options.json      # an assertion

`options` is the `public_key` the options routes answer; KEYFILE keeps the key, the
credential id, the user handle and the counter between the two. A test tool, never a
way to sign in: the browser's own authenticator is what tests/e2e/test_passkeys_browser.py
drives."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

UP, UV, AT = 0x01, 0x04, 0x40  # authenticator data flags: present, verified, attested data


@dataclass
class SoftAuthenticator:
    """One credential, made by `create`; `get` signs assertions with it."""

    origin: str
    verified: bool = True  # does it verify the user (the UV flag)
    counter: int = 0
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rp_id: str = ""
    user_handle: bytes = b""

    def flags(self, extra: int = 0) -> bytes:
        return bytes([UP | (UV if self.verified else 0) | extra])

    def client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin,
             "crossOrigin": False}
        ).encode()  # fmt: skip

    def create(self, options: dict[str, Any], origin: str | None = None) -> dict[str, Any]:
        """The answer to navigator.credentials.create(options)."""
        self.rp_id = options["rp"]["id"]
        self.user_handle = base64url_to_bytes(options["user"]["id"])
        numbers = self.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32), -3: numbers.y.to_bytes(32)}
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + self.flags(AT)
            + struct.pack(">I", self.counter)
            + attested
            + encode_cbor(cose)
        )
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self.client_data("webauthn.create", options["challenge"], origin)
        return {
            "id": bytes_to_base64url(self.credential_id),
            "rawId": bytes_to_base64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "attestationObject": bytes_to_base64url(attestation),
            },
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any], origin: str | None = None) -> dict[str, Any]:
        """The answer to navigator.credentials.get(options): the counter moves by one."""
        self.counter += 1
        auth_data = (
            hashlib.sha256(options["rpId"].encode()).digest()
            + self.flags()
            + struct.pack(">I", self.counter)
        )
        client_data = self.client_data("webauthn.get", options["challenge"], origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": bytes_to_base64url(self.credential_id),
            "rawId": bytes_to_base64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature),
                "userHandle": bytes_to_base64url(self.user_handle),
            },
            "clientExtensionResults": {},
        }


def save(key: SoftAuthenticator, path: Path) -> None:
    pem = key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    state = {
        "origin": key.origin, "counter": key.counter, "key": pem.decode(),
        "credential_id": bytes_to_base64url(key.credential_id), "rp_id": key.rp_id,
        "user_handle": bytes_to_base64url(key.user_handle),
    }  # fmt: skip
    path.write_text(json.dumps(state))
    path.chmod(0o600)


def load(path: Path) -> SoftAuthenticator:
    state = json.loads(path.read_text())
    private = serialization.load_pem_private_key(state["key"].encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    return SoftAuthenticator(
        state["origin"],
        counter=state["counter"],
        credential_id=base64url_to_bytes(state["credential_id"]),
        key=private,
        rp_id=state["rp_id"],
        user_handle=base64url_to_bytes(state["user_handle"]),
    )


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("create", "get"):
        print(__doc__, file=sys.stderr)
        return 2
    command, path, origin = argv[0], Path(argv[1]), argv[2]
    options = json.load(sys.stdin)
    if command == "create":
        key = SoftAuthenticator(origin)
        answer = key.create(options)
    else:
        key = load(path)
        answer = key.get(options)
    save(key, path)
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
