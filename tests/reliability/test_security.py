"""Security on every HTTP service: JWT attacks on every authenticated route, IDOR on every
route with an id (tests/reliability/idor.py), refresh-token reuse, a deleted account's
tokens, CORS preflight only for configured origins, security headers on every response,
and the secrets of the run (tokens, passwords, personal id numbers) absent from the
services' logs and error bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest

from lib.auth.pem import load_private_key
from lib.auth.principal import Role
from lib.auth.tokens import generate_keypair, signed_header
from tests.integration.auth_support import KEYS
from tests.integration.orders_support import offer_body, order_body
from tests.integration.smtp_support import SmtpSink, token_in
from tests.integration.users_support import make_user
from tests.reliability import figures, idor
from tests.reliability.readback import fingerprint
from tests.reliability.stack import PASSWORD, needs_token, operations, spec_of, token
from tests.reliability.world import (
    Actor,
    Orders,
    actor,
    catalog_service,
    talk,
    ws_handshake,
    ws_url,
)
from tools.local.service_process import ServiceProcess

ALLOWED_ORIGIN = "https://app.fixup.test"  # CORS_ALLOW_ORIGINS of tests/reliability/stack.py
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# the HTTP services of tests/reliability/conftest.py but chat, whose tests add its WebSocket
BUT_CHAT = ["departments", "users", "catalog", "orders"]
PNG_HEADER = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\x00" * 17


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
        return jwt.encode(
            {**claims, **changes}, KEYS[0], algorithm="EdDSA", headers=signed_header(KEYS[0])
        )

    def typed(typ: str | None) -> str:
        """The valid token's claims, signed by the real key, typed other than at+jwt."""
        headers = {"typ": typ} if typ is not None else None
        untyped = jwt.encode(claims, KEYS[0], algorithm="EdDSA", headers=headers)
        if typ is None:  # PyJWT writes typ JWT by default: drop it from the header
            untyped = jwt.api_jws.encode(
                json.dumps(claims).encode(), KEYS[0], algorithm="EdDSA", headers={"typ": None}
            )
        return untyped

    header, payload, signature = good.split(".")
    tampered = _b64(json.dumps({**claims, "role": "ADMIN"}).encode())
    none_header = _b64(b'{"alg":"none","typ":"JWT"}')
    hs_header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    hs_payload = _b64(json.dumps({**claims, "role": "ADMIN"}).encode())
    hs_sig = hmac.new(KEYS[1].encode(), f"{hs_header}.{hs_payload}".encode(), hashlib.sha256)

    def with_kid(kid: object) -> str:
        """The valid token's claims signed by the real key, the header's kid replaced
        (None: no kid), written by hand: PyJWT refuses a kid that is not a string."""
        fields: dict[str, Any] = {**jwt.get_unverified_header(good), "kid": kid}
        if kid is None:
            del fields["kid"]
        signing_input = f"{_b64(json.dumps(fields).encode())}.{payload}"
        signature = load_private_key(KEYS[0]).sign(signing_input.encode())
        return f"{signing_input}.{_b64(signature)}"

    return {
        "no kid": with_kid(None),
        "unknown kid": with_kid(_b64(hashlib.sha256(b"not a key of ours").digest())),
        "kid path traversal": with_kid("../../var/keys/jwt/keys.json"),
        "kid URL": with_kid("https://attacker.test/.well-known/jwks.json"),
        "kid header injection": with_kid("x\r\nX-Injected: 1"),
        "kid huge": with_kid("k" * 2500),
        "kid number": with_kid(7),
        "kid object": with_kid({"jku": "https://attacker.test/jwks.json"}),
        "alg none": f"{none_header}.{payload}.",
        "HS256 with the public key": f"{hs_header}.{hs_payload}.{_b64(hs_sig.digest())}",
        "expired": signed(iat=now - 7200, exp=now - 3600),
        "wrong iss": signed(iss="evil-issuer"),
        "wrong aud": signed(aud="someone-else"),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "another key": jwt.encode(
            claims,
            (other := generate_keypair()[0]),
            algorithm="EdDSA",
            headers=signed_header(other),
        ),
        "garbage": "not.a.jwt",
        "typ JWT": typed("JWT"),
        "typ dpop+jwt": typed("dpop+jwt"),
        "typ secevent+jwt": typed("secevent+jwt"),
        "no typ": typed(None),
    }


def concrete(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4())).replace("{key}", "k" * 20)


async def jwt_attacks(service: ServiceProcess) -> None:
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
                    assert resp.headers["WWW-Authenticate"].startswith("Bearer"), what
                    refused += 1
    figures.add("JWT attacks refused (401)", refused)


@pytest.mark.parametrize("service", BUT_CHAT, indirect=True)
async def test_jwt_attacks_on_every_route(service: ServiceProcess) -> None:
    await jwt_attacks(service)


async def test_jwt_attacks_on_every_chat_route_and_the_websocket_handshake(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess
) -> None:
    """Every route of the document, then the handshake of a real conversation: each forged
    token offered as the subprotocol and as the Authorization header → 401 before the
    upgrade; the participant's own token opens the socket (the control)."""
    await jwt_attacks(chat)
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        conversation = await talk(Orders(http, orders.url, service_id, customer, provider),
                                  chat.url)  # fmt: skip
        url = ws_url(chat.url, conversation.id)
        own = customer.headers["Authorization"].removeprefix("Bearer ")
        assert await ws_handshake(http, url, own) == 101
        assert await ws_handshake(http, url, None, Authorization=f"Bearer {own}") == 101
        assert await ws_handshake(http, url, None) == 401  # no token at all
        refused = 1
        for what, value in attack_tokens().items():
            assert await ws_handshake(http, url, value) == 401, what
            assert await ws_handshake(http, url, None, Authorization=f"Bearer {value}") == 401
            refused += 2
    figures.add("JWT attacks refused (401)", refused)
    figures.add("JWT attacks refused (401): chat WebSocket handshake", refused)


async def test_idor_on_every_chat_route_and_the_websocket(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess, chat_dsn: str
) -> None:
    await idor.chat_sweep(chat, orders, catalog, chat_dsn)


async def test_idor_on_every_orders_offers_jobs_and_reviews_route(
    orders: ServiceProcess, catalog: ServiceProcess, orders_dsn: str
) -> None:
    await idor.orders_sweep(orders, catalog, orders_dsn)


async def test_idor_on_every_users_route_and_picture(users: ServiceProcess, users_dsn: str) -> None:
    await idor.users_sweep(users, users_dsn)


@pytest.mark.parametrize("service", [*BUT_CHAT, "chat"], indirect=True)
async def test_cors_and_security_headers(service: ServiceProcess) -> None:
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


async def secrets_stay_out_of_logs(service: ServiceProcess) -> None:
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


@pytest.mark.parametrize("service", BUT_CHAT, indirect=True)
async def test_secrets_absent_from_the_log(service: ServiceProcess) -> None:
    await secrets_stay_out_of_logs(service)


async def test_secrets_absent_from_chat_log(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess
) -> None:
    """The generic sweep, then a real conversation: tokens offered on the WebSocket as the
    subprotocol (valid and forged), messages carrying a password and a personal id
    number: none of it in chat's log."""
    await secrets_stay_out_of_logs(chat)
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    personal_id = f"PID-{uuid.uuid4().hex[:10]}-CHAT"
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        conversation = await talk(Orders(http, orders.url, service_id, customer, provider),
                                  chat.url)  # fmt: skip
        sent = await conversation.post(customer, f"my id is {personal_id}, pw {PASSWORD}")
        own = customer.headers["Authorization"].removeprefix("Bearer ")
        forged = attack_tokens()["tampered payload"]
        url = ws_url(chat.url, conversation.id)
        assert await ws_handshake(http, url, own) == 101
        assert await ws_handshake(http, url, forged) == 401
        assert [m["body"] for m in await conversation.messages()] == [sent["data"]["body"]]
    log = chat.log.read_text()
    assert conversation.id in log  # the handshakes were logged
    for secret in (own, forged, personal_id, PASSWORD):
        assert secret not in log, f"a secret is in chat's log: {secret[:12]}…"
    figures.add("secrets checked absent from logs and bodies", 4)


@dataclass
class Recorder:
    """Every answer of a flow, to search the error bodies for secrets afterwards."""

    http: aiohttp.ClientSession
    base: str
    answers: list[tuple[int, str]] = field(default_factory=list)

    async def __call__(
        self, method: str, path: str, expect: int, body: Any = None, **headers: str
    ) -> Any:
        async with self.http.request(method, self.base + path, json=body, headers=headers) as resp:
            text = await resp.text()
            self.answers.append((resp.status, text))
            assert resp.status == expect, (method, path, resp.status, text[:300])
            return json.loads(text) if text else None


async def test_refresh_reuse_revokes_the_family_and_a_deleted_accounts_tokens_get_401(
    users: ServiceProcess, mail_sink: SmtpSink
) -> None:
    """register (PROVIDER, with a personal id number) -> verify -> login -> refresh; the used
    refresh token replayed: 401 and the whole family revoked. Then the account deleted:
    every token it had, access or refresh, is refused with 401 on every route of its own.
    None of the run's secrets shows in the log or in any error body."""
    personal_id = f"PID-{uuid.uuid4().hex[:10]}-REL"
    email = f"rel{uuid.uuid4().hex[:12]}@fixup.test"
    account = {
        "email": email, "password": PASSWORD, "first_name": "Grace", "last_name": "Hopper",
        "phone_number": "+1 555 0100", "role": "PROVIDER", "personal_id_number": personal_id,
    }  # fmt: skip
    async with aiohttp.ClientSession() as http:
        api = Recorder(http, users.url)
        user_id = (await api("POST", "/v1/auth/register", 201, account))["data"]["id"]
        while (mail := await mail_sink.next_mail())["To"] != email:
            pass  # another test's mail
        verification = token_in(mail)
        await api("POST", "/v1/auth/verify", 204, {"token": verification})
        credentials = {"email": email, "password": PASSWORD}
        first = (await api("POST", "/v1/auth/login", 200, credentials))["data"]
        rotate = {"refresh_token": first["refresh_token"]}
        second = (await api("POST", "/v1/auth/refresh", 200, rotate))["data"]
        # the replay: refused, and the family ends, the newest token of it included
        await api("POST", "/v1/auth/refresh", 401, {"refresh_token": first["refresh_token"]})
        await api("POST", "/v1/auth/refresh", 401, {"refresh_token": second["refresh_token"]})
        third = (await api("POST", "/v1/auth/login", 200, credentials))["data"]
        me = {"Authorization": f"Bearer {third['access_token']}"}
        version = (await api("GET", "/v1/users/me", 200, **me))["data"]["version"]
        await api("DELETE", "/v1/users/me", 204, **me, **{"If-Match": f'"{version}"'})
        # every token of the deleted account, on every route that is its own
        for access in (first, second, third):
            auth = {"Authorization": f"Bearer {access['access_token']}"}
            again = {**auth, "If-Match": f'"{version + 1}"'}
            await api("GET", "/v1/users/me", 401, **auth)
            await api("GET", f"/v1/users/{user_id}", 401, **auth)
            await api("PATCH", "/v1/users/me", 401, {"first_name": "Back"}, **again)
            await api("DELETE", "/v1/users/me", 401, **again)
            change = {"old_password": PASSWORD, "new_password": PASSWORD + "2"}
            await api("POST", "/v1/users/me/password", 401, change, **auth)
            form = aiohttp.FormData()
            form.add_field("image", PNG_HEADER, filename="p.png", content_type="image/png")
            async with http.put(f"{users.url}/v1/users/me/picture", data=form, headers=auth) as r:
                api.answers.append((r.status, await r.text()))
                assert r.status == 401, api.answers[-1]
        await api("POST", "/v1/auth/refresh", 401, {"refresh_token": third["refresh_token"]})
        await api("POST", "/v1/auth/login", 401, credentials)
    tokens = [t[k] for t in (first, second, third) for k in ("access_token", "refresh_token")]
    secrets = [PASSWORD, personal_id, verification, *tokens]
    log = users.log.read_text()
    assert user_id in log  # the log names the account, and nothing secret of it
    for secret in secrets:
        assert secret not in log, f"a secret is in the log: {secret[:12]}…"
        errors = [text for status, text in api.answers if status >= 400]
        assert all(secret not in text for text in errors), f"a secret in an error: {secret[:12]}…"
    assert all(personal_id not in text and PASSWORD not in text for _, text in api.answers)
    figures.add("refresh replays refused with the family revoked", 1)
    figures.add("deleted account's tokens refused (401)", 3 * 6 + 1)
    figures.add("secrets checked absent from logs and bodies", len(secrets))


async def test_mass_assignment_is_refused_on_every_write(
    orders: ServiceProcess,
    catalog: ServiceProcess,
    users: ServiceProcess,
    orders_dsn: str,
    users_dsn: str,
) -> None:
    """Fields a caller may not set (ids, owners, status, versions, role, verified, email,
    points, timestamps), added to otherwise valid bodies: 400 (unknown field) or 403 (not
    yours to set), the error naming the field, and nothing written."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    me = actor(Role.CUSTOMER, await make_user(users_dsn, Role.CUSTOMER))
    other = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        steps = Orders(http, orders.url, service_id, customer, provider)
        order = await steps.order()
        done = await steps.job("COMPLETED")
        smuggled = {
            "id": other, "customer_id": other, "provider_id": other, "job_id": other,
            "status": "COMPLETED", "version": 99, "customer_name": "Mallory",
            "created_at": "2020-01-01T00:00:00Z", "role": "ADMIN", "verified": True,
            "email": "mallory@evil.test", "points": 10**6, "password_hash": "x",
            "deleted_at": None, "picture_key": "../../etc/passwd",
        }  # fmt: skip
        account = {
            "email": f"mass{uuid.uuid4().hex[:10]}@fixup.test", "password": PASSWORD,
            "first_name": "Eve", "last_name": "Smuggler", "phone_number": "+1 555 0100",
            "role": "CUSTOMER",
        }  # fmt: skip
        writes: list[tuple[Actor, str, str, dict[str, Any], dict[str, str], list[str]]] = [
            (customer, "POST", f"{orders.url}/v1/orders", order_body(service_id), {},
             ["id", "customer_id", "status", "version", "customer_name", "created_at"]),
            (customer, "PATCH", f"{orders.url}/v1/orders/{order['id']}",
             {"description": "ok"}, {"If-Match": '"1"'},
             ["id", "customer_id", "status", "version", "customer_name", "created_at"]),
            (provider, "POST", f"{orders.url}/v1/orders/{order['id']}/offers", offer_body(), {},
             ["id", "status", "provider_id"]),
            (customer, "POST", f"{orders.url}/v1/jobs/{done['id']}/review", {"rating": 4}, {},
             ["id", "job_id", "customer_id"]),
            (me, "PATCH", f"{users.url}/v1/users/me", {"first_name": "Eve"},
             {"If-Match": '"1"'},
             ["id", "role", "verified", "email", "points", "password_hash", "deleted_at",
              "picture_key", "version", "created_at"]),
            (me, "POST", f"{users.url}/v1/auth/register", account, {},
             ["id", "verified", "points", "version", "password_hash"]),
        ]  # fmt: skip
        before = (await fingerprint(orders_dsn), await fingerprint(users_dsn))
        refused = 0
        for who, method, url, body, headers, fields in writes:
            for name in fields:
                sent = {**body, name: smuggled[name]}
                async with http.request(
                    method, url, json=sent, headers={**who.headers, **headers}
                ) as resp:
                    answer = await resp.json(content_type=None)
                    label = (method, url, name, resp.status, answer)
                    assert resp.status in {400, 403}, label
                    assert resp.content_type == "application/problem+json", label
                    assert name in {e["field"] for e in answer.get("errors", [])}, label
                    refused += 1
        after = (await fingerprint(orders_dsn), await fingerprint(users_dsn))
        assert after == before, "a refused write changed the data"
        # the controls: each body without the smuggled field is accepted
        for (who, method, url, body, headers, _), expect in zip(
            writes, [201, 200, 201, 201, 200, 201], strict=True
        ):
            async with http.request(
                method, url, json=body, headers={**who.headers, **headers}
            ) as resp:
                assert resp.status == expect, (method, url, resp.status, await resp.text())
    figures.add("mass assignment attempts refused (nothing written)", refused)
