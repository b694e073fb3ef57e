"""Passkeys at the API (ADR 0053) on real PostgreSQL, answered by a software authenticator
(tools/softkey.py): register, list, sign in (a token pair and a refresh family of
its own), remove; a replayed assertion, one from another origin or for another RP ID, one
without user verification, a counter that went back, an expired or used challenge, a
registration for someone else's challenge: each a problem+json that changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from webauthn.helpers import bytes_to_base64url as b64url

from lib.http.keys import SETTINGS
from services.users.app import create_app
from tests import pg
from tests.integration.users_support import (
    age_sign_in,
    auth,
    make_user,
    reauthenticate,
    reauthentication_required,
    users_settings,
)
from tests.problems import problem
from tools.softkey import SoftAuthenticator
from tools.time_scale import scaled

ORIGIN = "https://fixup.test"
RP_ID = "fixup.test"


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str) -> Any:
    settings = users_settings(users_dsn, public_base_url=ORIGIN, login_rate=1e6, login_burst=10**6)
    return await aiohttp_client(create_app(settings))


async def count(dsn: str, sql: str, *args: Any) -> int:
    async with pg.connected(dsn) as conn:
        found: int = await conn.fetchval(sql, *args)
        return found


async def registration_options(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.post("/v1/users/me/passkeys/options", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    options: dict[str, Any] = (await resp.json())["data"]["public_key"]
    return options


async def registered(client: Any, user_id: uuid.UUID) -> SoftAuthenticator:
    """A user's new passkey, registered."""
    headers = auth(user_id)
    key = SoftAuthenticator(ORIGIN)
    credential = key.create(await registration_options(client, headers))
    resp = await client.post(
        "/v1/users/me/passkeys", json={"credential": credential, "name": "Laptop"}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    return key


async def sign_in_options(client: Any) -> dict[str, Any]:
    resp = await client.post("/v1/auth/passkey/options")
    assert resp.status == 200, await resp.text()
    options: dict[str, Any] = (await resp.json())["data"]["public_key"]
    return options


async def test_register_list_sign_in_and_remove(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    options = await registration_options(client, headers)
    assert (options["rp"]["id"], options["user"]["id"]) == (RP_ID, b64url(user_id.bytes))
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    key = SoftAuthenticator(ORIGIN)
    resp = await client.post(
        "/v1/users/me/passkeys",
        json={"credential": key.create(options), "name": " Laptop "},
        headers=headers,
    )
    assert resp.status == 201, await resp.text()
    made = (await resp.json())["data"]
    assert (made["name"], made["last_used_at"]) == ("Laptop", None)

    # a second registration excludes the first passkey
    again = await registration_options(client, headers)
    assert [c["id"] for c in again["excludeCredentials"]] == [b64url(key.credential_id)]

    options = await sign_in_options(client)
    assert (options["rpId"], options["allowCredentials"], options["userVerification"]) == (
        RP_ID, [], "required"
    )  # fmt: skip
    families = "SELECT count(*) FROM refresh_token_families WHERE user_id = $1"
    before = await count(users_dsn, families, user_id)
    resp = await client.post("/v1/auth/passkey/login", json={"credential": key.get(options)})
    assert resp.status == 200, await resp.text()
    pair = (await resp.json())["data"]
    assert pair["token_type"] == "Bearer"
    assert {"fixup_access", "fixup_refresh"} <= set(resp.cookies)
    assert await count(users_dsn, families, user_id) == before + 1
    me = await client.get(
        "/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert (await me.json())["data"]["id"] == str(user_id)
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status == 200  # the same refresh family life as a password login's

    listed = await client.get("/v1/users/me/passkeys", headers=headers)
    rows = (await listed.json())["data"]
    assert [(r["id"], r["name"]) for r in rows] == [(made["id"], "Laptop")]
    assert rows[0]["last_used_at"] is not None
    stored = "SELECT sign_count FROM passkeys WHERE id = $1"
    assert await count(users_dsn, stored, uuid.UUID(made["id"])) == key.counter == 1

    other = await make_user(users_dsn)  # someone else's passkey: 404, as an unknown one
    resp = await client.delete(f"/v1/users/me/passkeys/{made['id']}", headers=auth(other))
    await problem(resp, 404, "NOT_FOUND")
    resp = await client.delete(f"/v1/users/me/passkeys/{made['id']}", headers=headers)
    assert resp.status == 204
    resp = await client.post(
        "/v1/auth/passkey/login", json={"credential": key.get(await sign_in_options(client))}
    )
    await problem(resp, 401, "UNAUTHORIZED")  # removed: it signs in no more
    resp = await client.delete(f"/v1/users/me/passkeys/{made['id']}", headers=headers)
    await problem(resp, 404, "NOT_FOUND")
    resp = await client.delete("/v1/users/me/passkeys/not-a-uuid", headers=headers)
    assert (await problem(resp, 400, "VALIDATION_ERROR"))["errors"][0]["field"] == "id"


async def test_a_replayed_assertion_is_refused(client: Any, users_dsn: str) -> None:
    key = await registered(client, await make_user(users_dsn))
    assertion = key.get(await sign_in_options(client))
    first = await client.post("/v1/auth/passkey/login", json={"credential": assertion})
    assert first.status == 200, await first.text()
    replayed = await client.post("/v1/auth/passkey/login", json={"credential": assertion})
    body = await problem(replayed, 401, "UNAUTHORIZED")
    assert body["detail"] == "the passkey was not accepted"  # no reason told


@pytest.mark.parametrize(
    "forge",
    ["cross_origin", "other_rp_id", "no_user_verification", "counter_back", "unknown_key"],
)
async def test_a_bad_assertion_is_refused_and_uses_its_challenge(
    client: Any, users_dsn: str, forge: str
) -> None:
    user_id = await make_user(users_dsn)
    key = await registered(client, user_id)
    options = await sign_in_options(client)
    origin = None
    if forge == "cross_origin":
        origin = "https://evil.example"
    elif forge == "other_rp_id":
        options = {**options, "rpId": "evil.example"}
    elif forge == "no_user_verification":
        key.verified = False
    elif forge == "counter_back":
        key.get(await sign_in_options(client))  # signed, never sent: counter 1 unseen
        ok = key.get(await sign_in_options(client))  # counter 2 signs in
        resp = await client.post("/v1/auth/passkey/login", json={"credential": ok})
        assert resp.status == 200, await resp.text()
        key.counter = 0  # a clone of the authenticator as it was: its next says 1
    elif forge == "unknown_key":
        key = SoftAuthenticator(ORIGIN, user_handle=user_id.bytes)
    families = "SELECT count(*) FROM refresh_token_families WHERE user_id = $1"
    before = await count(users_dsn, families, user_id)
    assertion = key.get(options, origin=origin)
    resp = await client.post("/v1/auth/passkey/login", json={"credential": assertion})
    await problem(resp, 401, "UNAUTHORIZED")
    assert await count(users_dsn, families, user_id) == before
    hashes = (
        "SELECT count(*) FROM webauthn_challenges"
        " WHERE ceremony = 'SIGN_IN' AND challenge_hash = sha256(decode($1, 'base64'))"
    )
    assert await count(users_dsn, hashes, padded(options["challenge"])) == 0  # used up


def padded(b64url_text: str) -> str:
    """base64url as PostgreSQL's decode(..., 'base64') reads it."""
    text = b64url_text.replace("-", "+").replace("_", "/")
    return text + "=" * (-len(text) % 4)


async def test_an_expired_sign_in_challenge_is_refused(client: Any, users_dsn: str) -> None:
    key = await registered(client, await make_user(users_dsn))
    options = await sign_in_options(client)
    conn = await asyncpg.connect(users_dsn)
    try:  # its expiry passed (the database's clock decides, as for every token)
        await conn.execute(
            "UPDATE webauthn_challenges SET created_at = now() - interval '1 hour',"
            " expires_at = now() - interval '1 second'"
            " WHERE challenge_hash = sha256(decode($1, 'base64'))",
            padded(options["challenge"]),
        )
    finally:
        await conn.close()
    resp = await client.post("/v1/auth/passkey/login", json={"credential": key.get(options)})
    await problem(resp, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "forge", ["someone_elses_challenge", "used_challenge", "cross_origin", "not_verified"]
)
async def test_a_bad_registration_is_refused_and_adds_nothing(
    client: Any, users_dsn: str, forge: str
) -> None:
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    key, origin = SoftAuthenticator(ORIGIN), None
    if forge == "someone_elses_challenge":
        options = await registration_options(client, auth(await make_user(users_dsn)))
    else:
        options = await registration_options(client, headers)
    if forge == "used_challenge":
        first = SoftAuthenticator(ORIGIN).create(options)
        resp = await client.post(
            "/v1/users/me/passkeys", json={"credential": first}, headers=headers
        )
        assert resp.status == 201, await resp.text()
    elif forge == "cross_origin":
        origin = "https://evil.example"
    elif forge == "not_verified":
        key.verified = False
    passkeys = "SELECT count(*) FROM passkeys WHERE user_id = $1"
    before = await count(users_dsn, passkeys, user_id)
    credential = key.create(options, origin=origin)
    resp = await client.post(
        "/v1/users/me/passkeys", json={"credential": credential}, headers=headers
    )
    await problem(resp, 400, "PASSKEY_REFUSED")
    assert await count(users_dsn, passkeys, user_id) == before


async def test_the_same_credential_twice_is_409(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    key = SoftAuthenticator(ORIGIN)
    for status in (201, 409):
        credential = key.create(await registration_options(client, headers))
        resp = await client.post(
            "/v1/users/me/passkeys", json={"credential": credential}, headers=headers
        )
        assert resp.status == status, await resp.text()
    assert await count(users_dsn, "SELECT count(*) FROM passkeys WHERE user_id = $1", user_id) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"credential": {}},
        {"credential": {"id": "x", "rawId": "x", "type": "public-key", "response": {}}},
        {"credential": "not an object"},
        {"credential": {"id": "AA", "rawId": "AA", "type": "public-key",
                        "response": {"clientDataJSON": "!!", "authenticatorData": "AA",
                                     "signature": "AA"}}},
        {"credential": {}, "extra": 1},
    ],
)  # fmt: skip
async def test_malformed_sign_in_bodies_are_problems(client: Any, body: dict[str, Any]) -> None:
    resp = await client.post("/v1/auth/passkey/login", json=body)
    assert resp.status in (400, 401), await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_the_relying_party_and_the_challenge_life_come_from_the_settings(
    aiohttp_client: Any, users_dsn: str
) -> None:
    origin = "https://login.fixup.test"
    settings = users_settings(
        users_dsn,
        public_base_url=ORIGIN,
        webauthn_rp_id="login.fixup.test",
        webauthn_rp_name="Fixup Login",
        webauthn_origins=[origin],
        webauthn_challenge_ttl=30,
    )
    client = await aiohttp_client(create_app(settings))
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    options = await registration_options(client, headers)
    assert (options["rp"], options["timeout"]) == (
        {"name": "Fixup Login", "id": "login.fixup.test"}, 30_000
    )  # fmt: skip
    life = (
        "SELECT extract(epoch FROM expires_at - created_at) FROM webauthn_challenges"
        " WHERE challenge_hash = sha256(decode($1, 'base64'))"
    )
    assert await count(users_dsn, life, padded(options["challenge"])) == 30
    # PUBLIC_BASE_URL's origin is no longer one an answer may come from
    refused = SoftAuthenticator(ORIGIN).create(options)
    resp = await client.post("/v1/users/me/passkeys", json={"credential": refused}, headers=headers)
    await problem(resp, 400, "PASSKEY_REFUSED")
    key = SoftAuthenticator(origin)
    accepted = key.create(await registration_options(client, headers))
    resp = await client.post(
        "/v1/users/me/passkeys", json={"credential": accepted}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        "/v1/auth/passkey/login", json={"credential": key.get(await sign_in_options(client))}
    )
    assert resp.status == 200, await resp.text()


async def test_a_challenge_made_by_one_replica_is_answered_at_the_other(
    aiohttp_client: Any, users_dsn: str
) -> None:
    """Two replicas share nothing but the database: options from one, the answer to the
    other; the same assertion sent to both at once signs in exactly once."""
    settings = users_settings(users_dsn, public_base_url=ORIGIN)
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    key = SoftAuthenticator(ORIGIN)
    credential = key.create(await registration_options(first, headers))
    resp = await second.post(
        "/v1/users/me/passkeys", json={"credential": credential}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    assertion = key.get(await sign_in_options(second))
    answers = await asyncio.gather(
        *(c.post("/v1/auth/passkey/login", json={"credential": assertion}) for c in (first, second))
    )
    assert sorted(r.status for r in answers) == [200, 401]
    families = "SELECT count(*) FROM refresh_token_families WHERE user_id = $1"
    assert await count(users_dsn, families, user_id) == 2  # make_user's and this one


async def test_adding_and_removing_a_passkey_need_a_recent_sign_in(
    aiohttp_client: Any, users_dsn: str
) -> None:
    """REAUTH_MAX_AGE of the test's app (its smallest) decides: a session signed in a little
    less long ago registers; one signed in longer ago gets 403 for the options and the
    removal, nothing changes, and POST /v1/auth/reauth lets both through."""
    max_age = 30
    settings = users_settings(
        users_dsn, public_base_url=ORIGIN, login_rate=1e6, login_burst=10**6, reauth_max_age=max_age
    )
    client = await aiohttp_client(create_app(settings))
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    await age_sign_in(users_dsn, user_id, max_age - scaled(5))  # the margin: this request's
    await registered(client, user_id)
    [passkey] = (await (await client.get("/v1/users/me/passkeys", headers=headers)).json())["data"]

    await age_sign_in(users_dsn, user_id, max_age + 1)
    stale = [
        ("POST", "/v1/users/me/passkeys/options"),
        ("DELETE", f"/v1/users/me/passkeys/{passkey['id']}"),
    ]
    for method, path in stale:
        resp = await client.request(method, path, headers=headers)
        assert reauthentication_required(resp.status, await resp.json()), (path, resp.status)
    passkeys = "SELECT count(*) FROM passkeys WHERE user_id = $1"
    assert await count(users_dsn, passkeys, user_id) == 1
    # a bad id is a 400 before the session is asked about
    resp = await client.delete("/v1/users/me/passkeys/nope", headers=headers)
    await problem(resp, 400, "VALIDATION_ERROR")

    await reauthenticate(client, headers)
    await registration_options(client, headers)
    resp = await client.delete(f"/v1/users/me/passkeys/{passkey['id']}", headers=headers)
    assert resp.status == 204, await resp.text()
    assert await count(users_dsn, passkeys, user_id) == 0


async def test_a_passkey_re_authenticates(client: Any, users_dsn: str) -> None:
    """POST /v1/auth/reauth with an assertion of one of the account's passkeys (for the
    sign-in options' challenge) makes a stale session recent and starts no session; the
    assertion replayed, or another account's passkey: 400 PASSKEY_REFUSED, still stale."""
    user_id = await make_user(users_dsn)
    headers = auth(user_id)
    key = await registered(client, user_id)
    stranger = await registered(client, await make_user(users_dsn))
    stale = client.app[SETTINGS].reauth_max_age + 1
    families = "SELECT count(*) FROM refresh_token_families WHERE user_id = $1"
    before = await count(users_dsn, families, user_id)

    async def still_stale() -> None:
        resp = await client.post("/v1/users/me/passkeys/options", headers=headers)
        assert reauthentication_required(resp.status, await resp.json()), resp.status

    await age_sign_in(users_dsn, user_id, stale)
    await still_stale()
    assertion = key.get(await sign_in_options(client))
    resp = await client.post("/v1/auth/reauth", json={"credential": assertion}, headers=headers)
    assert resp.status == 204, await resp.text()
    await registration_options(client, headers)  # recent now

    await age_sign_in(users_dsn, user_id, stale)
    for refused in (assertion, stranger.get(await sign_in_options(client))):
        resp = await client.post("/v1/auth/reauth", json={"credential": refused}, headers=headers)
        await problem(resp, 400, "PASSKEY_REFUSED")
        await still_stale()
    assert await count(users_dsn, families, user_id) == before
