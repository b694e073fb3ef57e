"""Security on every HTTP service: JWT attacks on every authenticated route, CORS preflight
only for configured origins, security headers on every response, and the secrets of the
run (tokens, passwords) absent from the service's log and error bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import aiohttp
import jwt

from lib.auth.principal import Role
from lib.auth.tokens import generate_keypair
from tests.e2e.service_process import Service
from tests.integration.auth_support import KEYS
from tests.reliability import figures
from tests.reliability.stack import PASSWORD, needs_token, operations, spec_of, token

ALLOWED_ORIGIN = "https://app.fixup.test"  # CORS_ALLOW_ORIGINS of tests/reliability/stack.py
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(value: str) -> dict[str, Any]:
    return dict(jwt.decode(value, options={"verify_signature": False}))


def attack_tokens() -> dict[str, str]:
    """Every forged or unusable token a verifier must refuse."""
    good = token(Role.CUSTOMER)
    claims = _claims(good)
    now = int(time.time())

    def signed(**changes: Any) -> str:
        return jwt.encode({**claims, **changes}, KEYS[0], algorithm="EdDSA")

    header, payload, signature = good.split(".")
    tampered = _b64(json.dumps({**claims, "role": "ADMIN"}).encode())
    none_header = _b64(b'{"alg":"none","typ":"JWT"}')
    hs_header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    hs_payload = _b64(json.dumps({**claims, "role": "ADMIN"}).encode())
    hs_sig = hmac.new(KEYS[1].encode(), f"{hs_header}.{hs_payload}".encode(), hashlib.sha256)
    return {
        "alg none": f"{none_header}.{payload}.",
        "HS256 with the public key": f"{hs_header}.{hs_payload}.{_b64(hs_sig.digest())}",
        "expired": signed(iat=now - 7200, exp=now - 3600),
        "wrong iss": signed(iss="evil-issuer"),
        "wrong aud": signed(aud="someone-else"),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "another key": jwt.encode(claims, generate_keypair()[0], algorithm="EdDSA"),
        "garbage": "not.a.jwt",
    }


def concrete(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4())).replace("{key}", "k" * 20)


async def jwt_attacks(service: Service) -> None:
    guarded = [(m, p) for m, p, op in operations(await spec_of(service)) if needs_token(op)]
    assert guarded, "no authenticated route in the document"
    attacks = attack_tokens()
    refused = 0
    async with aiohttp.ClientSession() as http:
        for method, path in guarded:
            # the control: a valid token gets past authentication on the same request
            control = {"Authorization": f"Bearer {token(Role.ADMIN)}", "If-Match": '"1"'}
            async with http.request(
                method, service.url + concrete(path), json={}, headers=control
            ) as resp:
                assert resp.status != 401, (method, path, await resp.text())
            for what, value in attacks.items():
                headers = {"Authorization": f"Bearer {value}", "If-Match": '"1"'}
                async with http.request(
                    method, service.url + concrete(path), json={}, headers=headers
                ) as resp:
                    body = await resp.text()
                    assert resp.status == 401, (what, method, path, resp.status, body)
                    assert resp.content_type == "application/problem+json", (what, body)
                    refused += 1
    figures.add("JWT attacks refused (401)", refused)


async def test_jwt_attacks_on_every_departments_route(departments: Service) -> None:
    await jwt_attacks(departments)


async def test_jwt_attacks_on_every_users_route(users: Service) -> None:
    await jwt_attacks(users)


async def cors_and_headers(service: Service) -> None:
    document = await spec_of(service)
    async with aiohttp.ClientSession() as http:
        for method, path, _ in operations(document):
            url = service.url + concrete(path)
            preflight = {"Access-Control-Request-Method": method}
            async with http.options(url, headers={**preflight, "Origin": ALLOWED_ORIGIN}) as r:
                assert r.status == 204, (method, path, r.status)
                assert r.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
            async with http.options(
                url, headers={**preflight, "Origin": "https://evil.example"}
            ) as r:
                assert "Access-Control-Allow-Origin" not in r.headers, (method, path)
                assert r.status != 204, (method, path)
            # security headers on whatever the route answers (here, mostly errors)
            async with http.request(method, url, headers={"Origin": "https://evil.example"}) as r:
                for name, value in SECURITY_HEADERS.items():
                    assert r.headers.get(name) == value, (method, path, r.status, name)
                assert "Access-Control-Allow-Origin" not in r.headers
        for url in (f"{service.url}/no/such/route", f"{service.url}/health"):
            async with http.get(url) as r:
                for name, value in SECURITY_HEADERS.items():
                    assert r.headers.get(name) == value, (url, name)


async def test_cors_and_security_headers_departments(departments: Service) -> None:
    await cors_and_headers(departments)


async def test_cors_and_security_headers_users(users: Service) -> None:
    await cors_and_headers(users)


async def secrets_stay_out_of_logs(service: Service) -> None:
    """Send the run's secrets to every operation, then look for them in the log and bodies."""
    valid = token(Role.ADMIN)
    secrets = [valid, PASSWORD, *attack_tokens().values()]
    bodies: list[str] = []
    async with aiohttp.ClientSession() as http:
        for method, path, _ in operations(await spec_of(service)):
            for secret in (valid, attack_tokens()["expired"]):
                body = {"password": PASSWORD, "new_password": PASSWORD, "token": secret}
                async with http.request(
                    method,
                    service.url + concrete(path),
                    json=body,
                    headers={"Authorization": f"Bearer {secret}"},
                ) as resp:
                    bodies.append(await resp.text())
    log = service.log.read_text()
    assert '"event":"request"' in log  # the log was written
    for secret in secrets:
        assert secret not in log, f"a secret is in the log: {secret[:12]}…"
        assert all(secret not in body for body in bodies), f"a secret in a body: {secret[:12]}…"
    figures.add("secrets checked absent from logs and bodies", len(secrets))


async def test_secrets_absent_from_departments_log(departments: Service) -> None:
    await secrets_stay_out_of_logs(departments)


async def test_secrets_absent_from_users_log(users: Service) -> None:
    await secrets_stay_out_of_logs(users)
