"""Sessions a person controls and re-authentication (ADR 0055) on real PostgreSQL and
Redis: the list (its fields, the caller's marked, a coarse address), ending one (its
refresh token and the account's access tokens refused), ending every other one, and the
sensitive actions refused to a session whose sign-in is older than REAUTH_MAX_AGE until
POST /v1/auth/reauth raises it - kept across a refresh."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pytest

from lib.auth.principal import Role
from lib.http.keys import SETTINGS
from services.users.app import create_app
from services.users.auth_kit import new_secret
from services.users.session_list import coarse_address
from tests import pg
from tests.integration.smtp_support import SmtpSink
from tests.integration.users_support import (
    CHEAP,
    PASSWORD,
    auth,
    mailing_settings,
    make_user,
    reauthentication_required,
)
from tools.time_scale import scaled

AGENT = "Mozilla/5.0 (X11; Linux x86_64) FixupTest/1.0"


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str, sink: SmtpSink, servers: Any) -> Any:
    settings = mailing_settings(users_dsn, sink.port, redis_url=servers.redis_url)
    return await aiohttp_client(create_app(settings))


async def new_account(dsn: str) -> str:
    email = f"s{uuid.uuid4().hex[:12]}@fixup.test"
    await pg.execute(
        dsn,
        "INSERT INTO users (email, password_hash, first_name, last_name, phone_number, role,"
        " verified) VALUES ($1, $2, 'Ada', 'Lovelace', '+1 555 0100', 'CUSTOMER', true)",
        email,
        CHEAP.hash(PASSWORD),
    )
    return email


async def login(client: Any, email: str, ip: str = "203.0.113.77") -> dict[str, Any]:
    resp = await client.post(
        "/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"User-Agent": AGENT, "X-Real-IP": ip},
    )
    assert resp.status == 200, await resp.text()
    pair: dict[str, Any] = (await resp.json())["data"]
    return pair


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def sessions(client: Any, pair: dict[str, Any]) -> list[dict[str, Any]]:
    resp = await client.get("/v1/users/me/sessions", headers=bearer(pair))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    listed: list[dict[str, Any]] = (await resp.json())["data"]["sessions"]
    return listed


async def age_sign_ins(dsn: str, email: str, seconds: int) -> None:
    """Every session of the account signed in `seconds` ago (as if time had passed)."""
    await pg.execute(
        dsn,
        "UPDATE refresh_token_families f SET authenticated_at = now() - make_interval("
        "secs => $2) FROM users u WHERE u.id = f.user_id AND u.email = $1",
        email,
        seconds,
    )


def test_refresh_tokens_carry_256_random_bits() -> None:
    """ASVS V7.2.3: a reference token from the CSPRNG, at least 128 bits; only its digest
    is stored."""
    tokens = {new_secret()[0] for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(base64.urlsafe_b64decode(t + "=")) == 32 for t in tokens)
    token, stored = new_secret()
    assert stored == hashlib.sha256(token.encode()).digest()


def test_the_address_kept_is_the_network() -> None:
    assert coarse_address("203.0.113.77") == "203.0.113.0/24"
    assert coarse_address("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert coarse_address("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert coarse_address("not an address") is None


async def test_the_list_shows_each_session_and_marks_the_callers(
    client: Any, users_dsn: str
) -> None:
    email = await new_account(users_dsn)
    first, second = await login(client, email), await login(client, email, "2001:db8:9::5")
    listed = await sessions(client, second)
    assert len(listed) == 2
    assert [s["current"] for s in listed] == [True, False]  # the most recently used first
    assert {s["address"] for s in listed} == {"203.0.113.0/24", "2001:db8:9::/48"}
    assert {s["user_agent"] for s in listed} == {AGENT}
    assert all(s["created_at"] and s["last_used_at"] for s in listed)
    assert [s["current"] for s in await sessions(client, first)] == [False, True]
    # a refresh keeps the session (same id) and moves its last use
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert resp.status == 200
    renewed = (await resp.json())["data"]
    after = await sessions(client, renewed)
    assert after[0]["current"]
    assert after[0]["id"] == listed[1]["id"]
    assert after[0]["last_used_at"] > listed[1]["last_used_at"]


async def test_ending_one_session_refuses_its_tokens(client: Any, users_dsn: str) -> None:
    email = await new_account(users_dsn)
    mine, other = await login(client, email), await login(client, email)
    target = next(s for s in await sessions(client, mine) if not s["current"])
    resp = await client.delete(f"/v1/users/me/sessions/{target['id']}", headers=bearer(mine))
    assert resp.status == 204, await resp.text()
    # the ended session: its access token and its refresh token are refused
    resp = await client.get("/v1/users/me", headers=bearer(other))
    assert resp.status == 401
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert resp.status == 401
    # the caller's session lives on: one refresh, and the list shows it alone
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]})
    assert resp.status == 200, await resp.text()
    renewed = (await resp.json())["data"]
    assert [s["current"] for s in await sessions(client, renewed)] == [True]
    # again, or someone else's session, or not an id: 404 / 400, nothing ended
    resp = await client.delete(f"/v1/users/me/sessions/{target['id']}", headers=bearer(renewed))
    assert (resp.status, (await resp.json())["code"]) == (404, "NOT_FOUND")
    stranger = await login(client, await new_account(users_dsn))
    own = (await sessions(client, renewed))[0]["id"]
    resp = await client.delete(f"/v1/users/me/sessions/{own}", headers=bearer(stranger))
    assert resp.status == 404
    resp = await client.delete("/v1/users/me/sessions/nope", headers=bearer(renewed))
    assert resp.status == 400
    assert len(await sessions(client, renewed)) == 1


async def test_ending_every_other_session_keeps_the_callers(client: Any, users_dsn: str) -> None:
    email = await new_account(users_dsn)
    pairs = [await login(client, email) for _ in range(3)]
    mine = pairs[0]
    resp = await client.delete("/v1/users/me/sessions", headers=bearer(mine))
    assert resp.status == 204, await resp.text()
    for pair in pairs[1:]:
        resp = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert resp.status == 401
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]})
    assert resp.status == 200
    assert [s["current"] for s in await sessions(client, (await resp.json())["data"])] == [True]


async def test_sensitive_actions_need_a_recent_sign_in(client: Any, users_dsn: str) -> None:
    email = await new_account(users_dsn)
    pair = await login(client, email)
    await age_sign_ins(users_dsn, email, client.app[SETTINGS].reauth_max_age + 60)
    # a refresh does not make a sign-in recent: the time is the session's
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    pair = (await resp.json())["data"]
    change = {"old_password": PASSWORD, "new_password": "plum tree orbit seven"}
    own = (await sessions(client, pair))[0]["id"]
    attempts = [
        ("POST", "/v1/users/me/password", change),
        ("DELETE", "/v1/users/me/sessions", None),
        ("DELETE", f"/v1/users/me/sessions/{own}", None),
    ]
    for method, path, body in attempts:
        resp = await client.request(method, path, json=body, headers=bearer(pair))
        assert reauthentication_required(resp.status, await resp.json()), (path, resp.status)
    resp = await client.delete("/v1/users/me", headers={**bearer(pair), "If-Match": '"1"'})
    assert reauthentication_required(resp.status, await resp.json())
    sql = "SELECT deleted_at, password_hash FROM users WHERE email = $1"
    row = await pg.fetchrow(users_dsn, sql, email)
    assert row["deleted_at"] is None
    assert CHEAP.verify(row["password_hash"], PASSWORD)

    # a wrong password raises nothing; the right one makes the session recent
    resp = await client.post("/v1/auth/reauth", json={"password": "wrong"}, headers=bearer(pair))
    assert (resp.status, (await resp.json())["errors"][0]["field"]) == (400, "password")
    resp = await client.post("/v1/auth/reauth", json={"password": PASSWORD}, headers=bearer(pair))
    assert resp.status == 204, await resp.text()
    # ... kept across a refresh
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    pair = (await resp.json())["data"]
    resp = await client.post("/v1/users/me/password", json=change, headers=bearer(pair))
    assert resp.status == 204, await resp.text()


async def test_reauth_needs_a_live_session(client: Any, users_dsn: str) -> None:
    email = await new_account(users_dsn)
    pair = await login(client, email)
    resp = await client.post("/v1/auth/reauth", json={"password": PASSWORD})
    assert resp.status == 401  # no token
    resp = await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert resp.status == 204
    resp = await client.post("/v1/auth/reauth", json={"password": PASSWORD}, headers=bearer(pair))
    assert resp.status == 401, await resp.text()  # its session has ended


async def test_an_admin_ends_a_users_sessions(client: Any, users_dsn: str) -> None:
    """ASVS V7.4.5: DELETE /v1/users/{id}/sessions (ADMIN) ends every session of the user,
    its refresh and access tokens refused; anyone else 403, nothing ended."""
    email = await new_account(users_dsn)
    pairs = [await login(client, email) for _ in range(2)]
    user_id = (await (await client.get("/v1/users/me", headers=bearer(pairs[0]))).json())["data"][
        "id"
    ]
    resp = await client.delete(f"/v1/users/{user_id}/sessions", headers=bearer(pairs[0]))
    assert resp.status == 403  # not an ADMIN: not even for oneself
    admin = auth(await make_user(users_dsn, Role.ADMIN), Role.ADMIN)
    resp = await client.delete(f"/v1/users/{uuid.uuid4()}/sessions", headers=admin)
    assert resp.status == 404
    resp = await client.delete("/v1/users/nope/sessions", headers=admin)
    assert resp.status == 400
    assert len(await sessions(client, pairs[1])) == 2

    resp = await client.delete(f"/v1/users/{user_id}/sessions", headers=admin)
    assert resp.status == 204, await resp.text()
    for pair in pairs:
        assert (await client.get("/v1/users/me", headers=bearer(pair))).status == 401
        resp = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert resp.status == 401
    assert [s["current"] for s in await sessions(client, await login(client, email))] == [True]


async def age_session(dsn: str, email: str, seconds: float) -> None:
    """Every session of the account started `seconds` ago (as if time had passed)."""
    await pg.execute(
        dsn,
        "UPDATE refresh_token_families f SET created_at = now() - make_interval("
        "secs => $2) FROM users u WHERE u.id = f.user_id AND u.email = $1",
        email,
        float(seconds),
    )


async def test_a_session_refreshes_until_its_max_lifetime(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink, servers: Any
) -> None:
    """ASVS V7.3.2: SESSION_MAX_LIFETIME (the test app's: its smallest) from the sign-in,
    however often the session refreshes; each refresh token expires by then, and a refresh
    after it is refused and ends the session."""
    lifetime = 60
    settings = mailing_settings(
        users_dsn, sink.port, redis_url=servers.redis_url, session_max_lifetime=lifetime
    )
    client = await aiohttp_client(create_app(settings))
    email = await new_account(users_dsn)
    pair = await login(client, email)
    await age_session(users_dsn, email, lifetime - scaled(5))  # the margin: this request's
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert resp.status == 200, await resp.text()
    pair = (await resp.json())["data"]
    sql = (
        "SELECT bool_and(t.expires_at <= f.created_at + make_interval(secs => $2))"
        " FROM refresh_tokens t JOIN refresh_token_families f ON f.id = t.family_id"
        " JOIN users u ON u.id = f.user_id WHERE u.email = $1 AND t.used_at IS NULL"
    )
    assert await pg.fetchval(users_dsn, sql, email, float(lifetime)) is True  # the new one

    await age_session(users_dsn, email, lifetime + 1)
    resp = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert resp.status == 401, await resp.text()
    fresh = await login(client, email)  # signing in again starts a new one
    assert [s["current"] for s in await sessions(client, fresh)] == [True]
