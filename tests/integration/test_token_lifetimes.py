"""Every token kind at the edge of its lifetime: one second before its expiry it works, at
the instant and one second after it does not, and a refused one changes nothing.

One rule for all of them: a token expiring at T is refused from T on (JWT `exp`, the SQL
`expires_at <= now()`, a 24 h idempotency record, a signed picture URL).

- Exact seconds where the clock can be pinned: the SQL predicates inside one transaction
  (PostgreSQL's now() is the transaction's start: the row is set to now() - 1 s / now() /
  now() + 1 s and the generated query reads it under that same now()), the token verifier
  and the picture URL check with their `now`.
- Through the HTTP API with the side effects read back: an expired verification link
  leaves the account unverified and the link unused; an expired reset link leaves the
  password and every session alone; an expired refresh token rotates nothing and revokes
  nothing; an expired access token writes nothing; an expired picture URL serves nothing;
  an expired idempotency record runs the request again. There "before" means a minute
  ahead (the request's transaction starts later than the test's clock reading), "at" the
  database's clock_timestamp() when the row is written (the request's now() is past it).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, TokenVerifier
from lib.errors import Unauthorized
from lib.http.keys import SETTINGS
from lib.storage.local import LocalStorage
from services.departments.app import create_app as departments_app
from services.departments.db import idempotency as departments_idem
from services.users.app import create_app as users_app
from services.users.db import auth as q
from services.users.db.models import EmailTokenPurpose
from services.users.pictures import STORAGE
from tests import pg
from tests.integration.auth_support import KEYS, bearer, settings_for
from tests.integration.users_support import PASSWORD, auth, make_user, users_settings
from tests.pictures_support import png

WHEN = {"before": 1, "at": 0, "after": -1}  # seconds from the expiry to the use


@pytest.fixture
async def users(aiohttp_client: Any, users_dsn: str, tmp_path: Any) -> Any:
    return await aiohttp_client(users_app(users_settings(users_dsn, storage_dir=str(tmp_path))))


@pytest.fixture
async def db(users_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with pg.connected(users_dsn) as conn:
        yield conn


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def family_of(db: asyncpg.Connection, user_id: uuid.UUID) -> uuid.UUID:
    family: uuid.UUID = await db.fetchval(
        "SELECT id FROM refresh_token_families WHERE user_id = $1", user_id
    )
    return family


# --- exact seconds: the SQL predicates under one pinned now() --------------------------


@pytest.mark.parametrize("when", WHEN)
async def test_sql_lifetimes_at_the_exact_second(db: asyncpg.Connection, when: str) -> None:
    """Email links (verify and reset share the query), refresh tokens and idempotency
    records, each one second before, at and after its end, under the same now()."""
    tr = db.transaction()
    await tr.start()
    try:
        now: datetime = await db.fetchval("SELECT now()")
        ends = now + timedelta(seconds=WHEN[when])
        made = now - timedelta(hours=25)  # created before any end (the rows' CHECKs)
        user = await db.fetchval(
            "INSERT INTO users (email, password_hash, first_name, last_name, phone_number,"
            " role, verified, created_at) VALUES ($1, 'x', 'A', 'B', '+1 555 0100',"
            " 'CUSTOMER', false, $2) RETURNING id",
            f"{uuid.uuid4().hex}@example.com",
            made,
        )
        family = await db.fetchval(
            "INSERT INTO refresh_token_families (user_id) VALUES ($1) RETURNING id", user
        )
        for purpose in EmailTokenPurpose:
            token = secrets.token_urlsafe()
            await db.execute(
                "INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at, created_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                user, purpose.value, digest(token), ends, made,
            )  # fmt: skip
            row = await q.lock_email_token(db, token_hash=digest(token), purpose=purpose)
            assert row is not None
            assert row.expired is (when != "before"), (purpose, when)
        token = secrets.token_urlsafe()
        await db.execute(
            "INSERT INTO refresh_tokens (family_id, token_hash, expires_at, created_at)"
            " VALUES ($1, $2, $3, $4)",
            family, digest(token), ends, made,
        )  # fmt: skip
        refresh = await q.lock_refresh_token(db, token_hash=digest(token))
        assert refresh is not None
        assert refresh.expired is (when != "before"), when
        # an idempotency record lives 24 h from its creation
        await db.execute(
            "INSERT INTO idempotency_keys (caller, key, request_hash, status_code,"
            " response_body, created_at) VALUES ('user:x', 'k', '\\x00', 201, '{}', $1)",
            ends - timedelta(hours=24),
        )
        stored = await departments_idem.get_idempotency_key(db, caller="user:x", key="k")
        assert (stored is not None) is (when == "before"), when
    finally:
        await tr.rollback()


@pytest.mark.parametrize("when", WHEN)
def test_access_token_and_picture_url_at_the_exact_second(when: str, tmp_path: Any) -> None:
    exp = math.floor(time.time()) + 600  # issued 300 s ago (PyJWT refuses a future iat)
    use = exp - WHEN[when]
    # the access token: signed to expire at `exp`, verified (and then from the verifier's
    # cache) at `use`
    clock = datetime.fromtimestamp(exp - 900, UTC)
    token, _ = TokenSigner(KEYS[0], 900, clock=lambda: clock).issue(uuid.uuid4(), Role.ADMIN, True)
    current = [time.time()]
    verifier = TokenVerifier(KEYS[1], now=lambda: current[0])
    assert verifier.verify(token).role is Role.ADMIN  # today: long before `exp`, remembered
    current[0] = use
    if when == "before":
        assert verifier.verify(token).role is Role.ADMIN
    else:
        with pytest.raises(Unauthorized, match="token expired"):
            verifier.verify(token)
    # the local picture URL, signed for `exp`
    storage = LocalStorage(tmp_path, signing_key=b"k" * 32, ttl=60)
    key = "A" * 32 + ".png"
    sig = storage.sign(key, exp)
    assert storage.check(key, str(exp), sig, now=use) is (when == "before")


# --- through the API, side effects read back -------------------------------------------


async def email_token(
    db: asyncpg.Connection, user_id: uuid.UUID, purpose: EmailTokenPurpose, when: str
) -> str:
    """A link row ending a minute ahead ("before"), at the database's clock now ("at")
    or a second ago ("after"); the raw token."""
    token = secrets.token_urlsafe()
    ends = {"before": "clock_timestamp() + interval '60 s'", "at": "clock_timestamp()",
            "after": "clock_timestamp() - interval '1 s'"}[when]  # fmt: skip
    await db.execute(
        "INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at, created_at)"
        f" VALUES ($1, $2, $3, {ends}, now() - interval '1 h')",
        user_id, purpose.value, digest(token),
    )  # fmt: skip
    return token


async def used_at(db: asyncpg.Connection, token: str) -> Any:
    return await db.fetchval(
        "SELECT used_at FROM email_tokens WHERE token_hash = $1", digest(token)
    )


@pytest.mark.parametrize("when", WHEN)
async def test_reset_link(users: Any, users_dsn: str, db: asyncpg.Connection, when: str) -> None:
    user_id = await make_user(users_dsn)
    before = await db.fetchrow("SELECT password_hash, version FROM users WHERE id = $1", user_id)
    token = await email_token(db, user_id, EmailTokenPurpose.PASSWORD_RESET, when)
    body = {"token": token, "new_password": "a brand new secret 42"}
    resp = await users.post("/v1/auth/password-reset/confirm", json=body)
    family = await db.fetchrow(
        "SELECT revoked_at FROM refresh_token_families WHERE user_id = $1", user_id
    )
    after = await db.fetchrow("SELECT password_hash, version FROM users WHERE id = $1", user_id)
    if when == "before":
        assert resp.status == 204, await resp.text()
        assert after["password_hash"] != before["password_hash"]
        assert family["revoked_at"] is not None
        assert await used_at(db, token) is not None
        return
    problem = await resp.json()
    assert (resp.status, problem["code"]) == (400, "LINK_EXPIRED"), problem
    assert after == before  # the password unchanged
    assert family["revoked_at"] is None  # every session intact
    assert await used_at(db, token) is None  # the link still unused
    login = await users.post(
        "/v1/auth/login",
        json={"email": await db.fetchval("SELECT email FROM users WHERE id = $1", user_id),
              "password": PASSWORD},
    )  # fmt: skip
    assert login.status == 200, await login.text()  # the old password still opens it


@pytest.mark.parametrize("when", WHEN)
async def test_verification_link(
    users: Any, users_dsn: str, db: asyncpg.Connection, when: str
) -> None:
    user_id = await make_user(users_dsn)
    await db.execute("UPDATE users SET verified = false WHERE id = $1", user_id)
    token = await email_token(db, user_id, EmailTokenPurpose.VERIFY_EMAIL, when)
    resp = await users.post("/v1/auth/verify", json={"token": token})
    verified = await db.fetchval("SELECT verified FROM users WHERE id = $1", user_id)
    if when == "before":
        assert resp.status == 204, await resp.text()
        assert verified is True
        assert await used_at(db, token) is not None
        return
    problem = await resp.json()
    assert (resp.status, problem["code"]) == (400, "LINK_EXPIRED"), problem
    assert verified is False
    assert await used_at(db, token) is None


@pytest.mark.parametrize("when", WHEN)
async def test_refresh_token(users: Any, users_dsn: str, db: asyncpg.Connection, when: str) -> None:
    user_id = await make_user(users_dsn)
    family = await family_of(db, user_id)
    token, spare = secrets.token_urlsafe(), secrets.token_urlsafe()
    ends = {"before": "clock_timestamp() + interval '60 s'", "at": "clock_timestamp()",
            "after": "clock_timestamp() - interval '1 s'"}[when]  # fmt: skip
    await db.execute(
        "INSERT INTO refresh_tokens (family_id, token_hash, expires_at, created_at)"
        f" VALUES ($1, $2, {ends}, now() - interval '1 h'),"
        " ($1, $3, now() + interval '1 h', now())",
        family, digest(token), digest(spare),
    )  # fmt: skip
    resp = await users.post("/v1/auth/refresh", json={"refresh_token": token})
    row = await db.fetchrow(
        "SELECT t.used_at, f.revoked_at FROM refresh_tokens t"
        " JOIN refresh_token_families f ON f.id = t.family_id WHERE t.token_hash = $1",
        digest(token),
    )
    tokens = await db.fetchval("SELECT count(*) FROM refresh_tokens WHERE family_id = $1", family)
    if when == "before":
        assert resp.status == 200, await resp.text()
        assert row["used_at"] is not None
        assert tokens == 3
        return
    assert resp.status == 401, await resp.text()
    assert row["used_at"] is None
    assert row["revoked_at"] is None
    assert tokens == 2
    # the session itself is intact: another token of the family still refreshes
    resp = await users.post("/v1/auth/refresh", json={"refresh_token": spare})
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("when", WHEN)
async def test_access_token(users: Any, users_dsn: str, db: asyncpg.Connection, when: str) -> None:
    """Expiring at floor(now) + 60 ("before"), at floor(now) less the configured clock
    leeway (the clock is past it when the service verifies) or a second before that."""
    user_id = await make_user(users_dsn)
    leeway = users.app[SETTINGS].token_clock_leeway
    exp = math.floor(time.time()) + {"before": 60, "at": -leeway, "after": -1 - leeway}[when]
    issued = datetime.fromtimestamp(exp - 900, UTC)
    token, _ = TokenSigner(KEYS[0], 900, clock=lambda: issued).issue(user_id, Role.CUSTOMER, True)
    before = await db.fetchrow("SELECT first_name, version FROM users WHERE id = $1", user_id)
    headers = {"Authorization": f"Bearer {token}", "If-Match": f'"{before["version"]}"'}
    resp = await users.patch("/v1/users/me", json={"first_name": "Eve"}, headers=headers)
    after = await db.fetchrow("SELECT first_name, version FROM users WHERE id = $1", user_id)
    if when == "before":
        assert resp.status == 200, await resp.text()
        assert after["first_name"] == "Eve"
        return
    assert resp.status == 401
    assert (await resp.json())["detail"] == "token expired"
    assert after == before  # nothing written


@pytest.mark.parametrize("when", WHEN)
async def test_picture_url(users: Any, users_dsn: str, when: str) -> None:
    """A signed URL to a stored picture, its `expires` moved (and signed again with the
    service's key, as a URL issued then would be): 200 ahead, 403 at or past it."""
    headers = auth(await make_user(users_dsn))
    form = aiohttp.FormData()
    form.add_field("image", png(), filename="me.png", content_type="image/png")
    resp = await users.put("/v1/users/me/picture", data=form, headers=headers)
    assert resp.status == 204, await resp.text()
    url = (await (await users.get("/v1/users/me", headers=headers)).json())["data"]["picture_url"]
    path, _, _ = url.partition("?")
    key = path.rsplit("/", 1)[1]
    storage = users.server.app[STORAGE]
    expires = math.floor(time.time()) + {"before": 60, "at": 0, "after": -1}[when]
    resp = await users.get(f"{path}?expires={expires}&sig={storage.sign(key, expires)}")
    assert resp.status == (200 if when == "before" else 403), await resp.text()
    if when != "before":
        assert resp.content_type == "application/problem+json"


@pytest.fixture
async def departments(aiohttp_client: Any, departments_dsn: str) -> Any:
    return await aiohttp_client(departments_app(settings_for(departments_dsn)))


@pytest.mark.parametrize("when", WHEN)
async def test_idempotency_record(departments: Any, departments_dsn: str, when: str) -> None:
    """A create with a key, its record then aged to 24 h minus a minute ("before"), 24 h
    by the database's clock ("at") or 24 h and a second: the same request again replays
    the first answer only "before"; else it runs again (the name is taken: 409) and no
    second row appears either way."""
    admin = {**bearer(Role.ADMIN), "Idempotency-Key": uuid.uuid4().hex}
    name = f"Dept {uuid.uuid4().hex[:8]}"
    body = {"name": name, "address": "1 Road"}
    first = await departments.post("/v1/departments", json=body, headers=admin)
    assert first.status == 201, await first.text()
    age = {"before": "interval '24 h' - interval '60 s'", "at": "interval '24 h'",
           "after": "interval '24 h 1 s'"}[when]  # fmt: skip
    async with pg.connected(departments_dsn) as conn:
        aged = await conn.execute(
            f"UPDATE idempotency_keys SET created_at = clock_timestamp() - ({age}) WHERE key = $1",
            admin["Idempotency-Key"],
        )
        assert aged == "UPDATE 1"
        again = await departments.post("/v1/departments", json=body, headers=admin)
        rows = await conn.fetchval("SELECT count(*) FROM departments WHERE name = $1", name)
    if when == "before":
        assert again.status == 201, await again.text()
        assert await again.json() == await first.json()
    else:
        assert again.status == 409, await again.text()
    assert rows == 1
