"""/v1/auth/* on real PostgreSQL (and Redis for the login limits), mails through a local
SMTP sink: every route's good and bad paths, new passwords screened (a breached or personal
one refused, changing nothing; a listed one set earlier still signs in), the refresh token
life cycle (rotation, reuse detection, 20 concurrent refreshes), the cookie Origin rule,
forged access tokens, and the personal id number absent from every response and log line."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from lib.auth.passwords import hash_password
from lib.crypto import FieldCipher, generate_key
from lib.logging import configure_logging
from lib.resilience.ratelimit import FallbackRateLimiter
from services.users.app import create_app
from services.users.auth_kit import AUTH_KIT
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.auth_support import KEYS
from tests.integration.smtp_support import SmtpSink, mail_to, token_in
from tests.integration.users_support import PASSWORD, blocked_on_a_lock, mailing_settings
from tests.servers import env
from tests.unit import test_auth_tokens as forge
from tools.local import seed
from tools.time_scale import scaled

ORIGIN = "http://localhost:8080"
PERSONAL_ID = "PID-7731-QX-90210"  # a value no other text of the run contains
ENCRYPTION_KEY = generate_key()
CHEAP_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "1024", "ARGON2_PARALLELISM": "1"}


def settings(dsn: str, smtp_port: int, **extra: Any) -> UsersSettings:
    defaults = {
        "db_pool_max": 25,
        "encryption_key": SecretStr(ENCRYPTION_KEY),
        "argon2_memory_cost": 1024,
        "cors_allow_origins": [ORIGIN],
        "mail_relay_interval": 0.1,
        "mail_retry_max": 0.2,
    }
    return mailing_settings(dsn, smtp_port, **{**defaults, **extra})


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every log line of this module, checked for the personal id number at the end."""
    path = tmp_path_factory.mktemp("logs") / "users.log"
    configure_logging("users", "DEBUG", str(path))
    yield path
    configure_logging("fixup")
    assert PERSONAL_ID not in path.read_text()


@pytest.fixture(scope="module")
def users_dsn(migrated_db: Callable[[str], str], log_file: Path) -> str:
    from lib.auth import passwords

    dsn = migrated_db("users")
    with env(**CHEAP_ARGON2):
        passwords.hasher.cache_clear()
        seed.seed_users(dsn)
    passwords.hasher.cache_clear()
    return dsn


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str, sink: SmtpSink) -> Any:
    return await aiohttp_client(create_app(settings(users_dsn, sink.port)))


def new_email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@fixup.test"


def customer(address: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": address,
        "password": "correct horse",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+44 20 7946 0000",
        "role": "CUSTOMER",
        **extra,
    }


async def register(client: Any, sink: SmtpSink, **extra: Any) -> tuple[dict[str, Any], str]:
    """A new account and the token of its verification mail."""
    email = new_email()
    resp = await client.post("/v1/auth/register", json=customer(email, **extra))
    assert resp.status == 201, await resp.text()
    user = (await resp.json())["data"]
    mail = await mail_to(sink, email)
    return user, token_in(mail)


async def login(client: Any, email: str, password: str = "correct horse") -> Any:
    resp = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    return resp


async def refresh(client: Any, token: str) -> Any:
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


# --- register ---------------------------------------------------------------------------


async def test_register_answers_the_user_and_mails_a_link(client: Any, sink: SmtpSink) -> None:
    user, token = await register(client, sink)
    assert user["email"].endswith("@fixup.test")
    assert (user["role"], user["verified"], user["picture_url"], user["points"]) == (
        "CUSTOMER",
        False,
        None,
        None,
    )
    assert user["version"] == 1
    assert len(token) == 43


async def test_register_a_provider_stores_the_personal_id_encrypted(
    client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    email = new_email()
    body = customer(email, role="PROVIDER", personal_id_number=PERSONAL_ID)
    resp = await client.post("/v1/auth/register", json=body)
    text = await resp.text()
    assert resp.status == 201, text
    assert PERSONAL_ID not in text
    assert "personal_id" not in text
    user_id = uuid.UUID((await resp.json())["data"]["id"])
    row = await pg.fetchrow(
        users_dsn,
        "SELECT personal_id_encrypted, personal_id_last4 FROM provider_details WHERE user_id = $1",
        user_id,
    )
    assert row is not None
    assert row["personal_id_last4"] == "0210"
    sealed = bytes(row["personal_id_encrypted"])
    assert PERSONAL_ID.encode() not in sealed
    assert FieldCipher(ENCRYPTION_KEY).decrypt(sealed, associated=user_id.bytes) == PERSONAL_ID
    await mail_to(sink, email)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"role": "PROVIDER"}, 400),  # no personal id number
        ({"personal_id_number": "1234-5678"}, 400),  # a CUSTOMER has none
        ({"role": "ADMIN"}, 403),
        ({"verified": True}, 403),
        ({"password": "short"}, 400),
        ({"password": "x" * 73}, 400),
        ({"email": "not-an-email"}, 400),
        ({"nickname": "x"}, 400),
        ({"first_name": "   "}, 400),
    ],
)
async def test_register_refuses_bad_bodies(
    client: Any, change: dict[str, Any], status: int
) -> None:
    resp = await client.post("/v1/auth/register", json=customer(new_email(), **change))
    assert resp.status == status, await resp.text()
    assert (await resp.json())["status"] == status


async def test_register_a_taken_email_answers_as_a_new_one_and_mails_its_owner(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    """ADR 0055: the answer tells nothing (the same 201 and shape, an id naming nothing);
    the owner, in any case of the address, gets a mail saying someone tried."""
    user, _ = await register(client, sink)
    resp = await client.post("/v1/auth/register", json=customer(user["email"].upper()))
    assert resp.status == 201, await resp.text()
    again = (await resp.json())["data"]
    assert again.keys() == user.keys()
    differing = {k for k in user if user[k] != again[k]}
    assert differing <= {"id", "created_at"}
    assert again["id"] != user["id"]
    assert resp.headers["Location"] == f"/v1/users/{again['id']}"
    mail = await mail_to(sink, user["email"])
    assert mail["Subject"] == "Someone tried to register with your address"
    ids = await pg.fetch(users_dsn, "SELECT id FROM users WHERE email = $1", user["email"])
    assert [str(row["id"]) for row in ids] == [user["id"]]  # no second account


async def test_register_replays_with_the_same_idempotency_key(client: Any, sink: SmtpSink) -> None:
    body, key = customer(new_email()), {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/v1/auth/register", json=body, headers=key)
    again = await client.post("/v1/auth/register", json=body, headers=key)
    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await first.json()) == (await again.json())
    await mail_to(sink, body["email"])


async def test_register_is_rate_limited_per_ip(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    app = create_app(settings(users_dsn, sink.port, register_rate=0.001, register_burst=1))
    client = await aiohttp_client(app)
    first = await client.post("/v1/auth/register", json=customer(new_email()))
    second = await client.post("/v1/auth/register", json=customer(new_email()))
    assert (first.status, second.status) == (201, 429)
    assert int(second.headers["Retry-After"]) >= 1


# --- verify, resend ------------------------------------------------------------------------


async def test_verify_once_then_409_and_login_says_verified(client: Any, sink: SmtpSink) -> None:
    user, token = await register(client, sink)
    resp = await client.post("/v1/auth/verify", json={"token": token})
    assert resp.status == 204
    again = await client.post("/v1/auth/verify", json={"token": token})
    assert again.status == 409
    assert (await again.json())["code"] == "LINK_USED"
    body = await (await login(client, user["email"])).json()
    access = body["data"]["access_token"]
    claims = forge.jwt.decode(access, KEYS[1], algorithms=["EdDSA"], audience="fixup")
    assert (claims["sub"], claims["verified"]) == (user["id"], True)


@pytest.mark.parametrize(
    ("token", "code"),
    [("A" * 43, "LINK_INVALID"), ("short", "VALIDATION_ERROR"),
     ("has spaces in it here", "VALIDATION_ERROR")],
)  # fmt: skip
async def test_verify_unknown_or_malformed_token_is_400(client: Any, token: str, code: str) -> None:
    resp = await client.post("/v1/auth/verify", json={"token": token})
    assert resp.status == 400
    assert (await resp.json())["code"] == code


async def test_verify_expired_token_is_400(client: Any, sink: SmtpSink, users_dsn: str) -> None:
    user, token = await register(client, sink)
    await pg.execute(
        users_dsn,
        "UPDATE email_tokens SET created_at = now() - interval '2 days', "
        "expires_at = now() - interval '1 day' WHERE user_id = $1",
        uuid.UUID(user["id"]),
    )
    resp = await client.post("/v1/auth/verify", json={"token": token})
    assert resp.status == 400
    assert (await resp.json())["code"] == "LINK_EXPIRED"


async def test_resend_verification_mails_a_new_link_and_hides_unknown_emails(
    client: Any, sink: SmtpSink
) -> None:
    user, _ = await register(client, sink)
    unknown = await client.post("/v1/auth/resend-verification", json={"email": new_email()})
    assert unknown.status == 204
    resp = await client.post("/v1/auth/resend-verification", json={"email": user["email"]})
    assert resp.status == 204
    token = token_in(await mail_to(sink, user["email"]))
    assert (await client.post("/v1/auth/verify", json={"token": token})).status == 204


# --- login ----------------------------------------------------------------------------------


async def test_login_answers_the_pair_and_sets_the_cookies(client: Any, sink: SmtpSink) -> None:
    user, _ = await register(client, sink)
    resp = await login(client, user["email"].upper())
    body = (await resp.json())["data"]
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 900)
    cookies = resp.headers.getall("Set-Cookie")
    access = next(c for c in cookies if c.startswith("fixup_access="))
    refresh_cookie = next(c for c in cookies if c.startswith("fixup_refresh="))
    for cookie in (access, refresh_cookie):
        assert "HttpOnly" in cookie
        assert "Secure" in cookie
        assert "SameSite=Strict" in cookie
    assert "Path=/;" in access + ";"
    assert "Path=/api/users/v1/auth" in refresh_cookie
    assert resp.headers["Cache-Control"] == "no-store"
    me = await client.get("/v1/users", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status == 403  # authenticated (a CUSTOMER may not list users), not 401


async def test_seed_users_can_log_in(client: Any) -> None:
    await login(client, seed.ADMIN.email, seed.DEFAULT_ADMIN_PASSWORD)
    await login(client, seed.CUSTOMERS[0].email, seed.DEFAULT_USER_PASSWORD)


TIMING_PAIRS = 12  # per-pair ratios whose median is compared (a pair: one of each side)


async def test_unknown_email_and_wrong_password_get_the_same_401_in_similar_time(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    """An unknown email is checked against a decoy hash, so it costs what a wrong password
    costs. On a shared machine a single wall-clock sample says little (another process
    takes the core, and the hashing threads yield to it: argon2_priority), so: the samples
    come in adjacent pairs, wrong then unknown and unknown then wrong in turn (a burst of
    load falls on both sides of a pair, and neither side always goes first); the median of
    the pairs' ratios is compared; and the bound comes from what a request costs without a
    hash (a 400, refused before the lookup), measured between the pairs: a skipped hash
    would bring the ratio down to about that floor over a wrong password's time."""
    # production-like cost so the hash dominates: a skipped hash would show
    app = create_app(settings(users_dsn, sink.port, argon2_memory_cost=32768, argon2_time_cost=2))
    client = await aiohttp_client(app)
    user = (await register(client, sink))[0]["email"]  # hashed with these parameters

    async def timed(email: str, password: str = "wrong!!!", status: int = 401) -> float:
        start = time.perf_counter()
        resp = await client.post("/v1/auth/login", json={"email": email, "password": password})
        assert resp.status == status, await resp.text()
        body = await resp.json()
        took = time.perf_counter() - start
        if status == 401:
            refusals.add(str({k: body[k] for k in ("code", "detail", "title")}))
        return took

    refusals: set[str] = set()
    await timed(new_email())  # the first unknown email makes the decoy hash: not a sample
    ratios, wrong, floor = [], [], []
    for i in range(TIMING_PAIRS):
        if i % 2 == 0:
            w, u = await timed(user), await timed(new_email())
        else:
            u, w = await timed(new_email()), await timed(user)
        ratios.append(u / w)
        wrong.append(w)
        floor.append(await timed(new_email(), "x" * 73, status=400))  # no lookup, no hash
    assert len(refusals) == 1, refusals  # one 401 for both, to the word
    skipped = statistics.median(floor) / statistics.median(wrong)
    assert skipped < 0.2, f"the hash does not dominate a login ({skipped:.2f}): raise its cost"
    # halfway (in log scale) between a skipped hash's ratio and equal times, either side
    bound = skipped**0.5
    ratio = statistics.median(ratios)
    assert bound < ratio < 1 / bound, (ratio, bound, sorted(ratios))


async def test_login_is_limited_per_email_and_per_ip_in_redis(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink, servers: Any, redis_prefix: str
) -> None:
    # this run's own keys (Redis is shared and never flushed)
    prefix = f"{redis_prefix}rl:{uuid.uuid4().hex}:"
    limits = {"login_rate": 0.001, "login_burst": 3, "rate_limit_prefix": prefix}
    app = create_app(settings(users_dsn, sink.port, redis_url=servers.redis_url, **limits))
    client = await aiohttp_client(app)
    kit = app[AUTH_KIT]
    assert isinstance(kit.login_limit, FallbackRateLimiter)  # REDIS_URL set: shared limits
    assert kit.login_limit.shared.prefix == f"{prefix}users:login:"
    email = new_email()
    statuses = []

    def logins() -> list[float]:  # users_logins_total (issue 43)
        values = [
            REGISTRY.get_sample_value("users_logins_total", {"service": "users", "outcome": o})
            for o in ("ok", "failed", "locked")
        ]
        assert None not in values, values  # each at 0 from start-up
        return [value or 0.0 for value in values]

    ok, failed, locked = logins()
    for _ in range(4):
        resp = await client.post("/v1/auth/login", json={"email": email, "password": "x"})
        statuses.append(resp.status)
    assert statuses == [401, 401, 401, 429]
    assert int(resp.headers["Retry-After"]) >= 1
    # another email from the same IP: the IP's budget is spent too
    other = await client.post("/v1/auth/login", json={"email": new_email(), "password": "x"})
    assert other.status == 429
    assert logins() == [ok, failed + 3, locked + 2]


async def test_fifty_parallel_attempts_on_one_account_count_fifty_across_replicas(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink, servers: Any, redis_prefix: str
) -> None:
    """50 wrong passwords for one account at once, from 50 addresses (X-Real-IP through a
    trusted proxy), spread over two replicas sharing Redis: the account's bucket is taken
    atomically (one Lua script), so exactly `login_burst` are verified and every other one
    is a 429 before any hash, not one more even at the same instant."""
    burst = 5
    limits = {
        "login_rate": 0.001,
        "login_burst": burst,
        "rate_limit_prefix": f"{redis_prefix}rl:{uuid.uuid4().hex}:",
        "trusted_proxies": ["127.0.0.1/32"],
        # Redis answers 100 calls at once on a loaded machine, later than the default 0.25 s
        # (a limit Redis cannot check in time refuses: test_ratelimit_outage)
        "rate_limit_redis_timeout": min(10.0, scaled(2.0)),
    }
    replicas = [
        await aiohttp_client(
            create_app(settings(users_dsn, sink.port, redis_url=servers.redis_url, **limits))
        )
        for _ in range(2)
    ]
    user, _ = await register(replicas[0], sink)

    def outcomes() -> list[float]:
        return [
            REGISTRY.get_sample_value("users_logins_total", {"service": "users", "outcome": o})
            or 0.0
            for o in ("failed", "locked")
        ]

    failed, locked = outcomes()
    body = {"email": user["email"], "password": "not the password"}
    answers = await asyncio.gather(
        *(
            replicas[n % 2].post("/v1/auth/login", json=body, headers={"X-Real-IP": f"10.9.0.{n}"})
            for n in range(50)
        )
    )
    statuses = sorted(resp.status for resp in answers)
    assert statuses == [401] * burst + [429] * (50 - burst), statuses
    assert outcomes() == [failed + burst, locked + 50 - burst]  # 5 hashes verified, no more
    # the owner is not locked out for good: the bucket refills at login_rate (documented)
    assert all(int(resp.headers["Retry-After"]) >= 1 for resp in answers if resp.status == 429)


async def test_login_refuses_bad_bodies(client: Any) -> None:
    resp = await client.post("/v1/auth/login", json={"email": "a@b.c"})
    assert resp.status == 400
    resp = await client.post("/v1/auth/login", data="x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415


# --- refresh token life cycle ---------------------------------------------------------------


async def test_refresh_rotates_and_a_replay_revokes_the_family(client: Any, sink: SmtpSink) -> None:
    user, _ = await register(client, sink)
    first = (await (await login(client, user["email"])).json())["data"]
    resp = await refresh(client, first["refresh_token"])
    assert resp.status == 200
    second = (await resp.json())["data"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    replay = await refresh(client, first["refresh_token"])  # the old one, again
    assert replay.status == 401
    # the whole family is revoked: the newest token no longer works either
    assert (await refresh(client, second["refresh_token"])).status == 401
    third = (await (await login(client, user["email"])).json())["data"]
    assert (await refresh(client, third["refresh_token"])).status == 200


async def test_twenty_concurrent_refreshes_make_exactly_one_pair(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    token = (await (await login(client, user["email"])).json())["data"]["refresh_token"]
    responses = await asyncio.gather(*(refresh(client, token) for _ in range(20)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [401] * 19
    winner = next(r for r in responses if r.status == 200)
    new_token = (await winner.json())["data"]["refresh_token"]
    assert (await refresh(client, new_token)).status == 401
    async with pg.connected(users_dsn) as conn:
        families = await conn.fetch(
            "SELECT revoked_at, revoked_reason FROM refresh_token_families WHERE user_id = $1",
            uuid.UUID(user["id"]),
        )
        tokens = await conn.fetchval(
            "SELECT count(*) FROM refresh_tokens t JOIN refresh_token_families f "
            "ON f.id = t.family_id WHERE f.user_id = $1",
            uuid.UUID(user["id"]),
        )
    assert [f["revoked_reason"] for f in families] == ["refresh token reused"]
    assert tokens == 2  # the login's and the one rotation's


async def test_a_login_racing_a_password_change_is_refused(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    """The password was checked, then changed before the session was written: no session."""
    user, _ = await register(client, sink)
    conn = await asyncpg.connect(users_dsn)
    watcher = await asyncpg.connect(users_dsn)
    try:
        change = conn.transaction()
        await change.start()  # a reset in progress: the account row is locked
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", uuid.UUID(user["id"]))
        body = {"email": user["email"], "password": "correct horse"}
        attempt = asyncio.ensure_future(client.post("/v1/auth/login", json=body))
        await blocked_on_a_lock(watcher)
        await conn.execute(
            "UPDATE users SET password_hash = 'changed' WHERE id = $1", uuid.UUID(user["id"])
        )
        await change.commit()
        resp = await attempt
        assert resp.status == 401, await resp.text()
        families = await conn.fetchval(
            "SELECT count(*) FROM refresh_token_families WHERE user_id = $1",
            uuid.UUID(user["id"]),
        )
        assert families == 0
    finally:
        await watcher.close()
        await conn.close()


async def test_a_refresh_racing_the_end_of_every_session_is_refused(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    """A rotation waits for a revocation of its family in progress, then sees it."""
    user, _ = await register(client, sink)
    token = (await (await login(client, user["email"])).json())["data"]["refresh_token"]
    conn = await asyncpg.connect(users_dsn)
    watcher = await asyncpg.connect(users_dsn)
    try:
        change = conn.transaction()
        await change.start()  # a reset's RevokeUserFamilies, not yet committed
        await conn.execute(
            "UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = 'reset' "
            "WHERE user_id = $1",
            uuid.UUID(user["id"]),
        )
        attempt = asyncio.ensure_future(refresh(client, token))
        await blocked_on_a_lock(watcher)
        await change.commit()
        resp = await attempt
        assert resp.status == 401, await resp.text()
        rotated = await conn.fetchval(
            "SELECT count(*) FROM refresh_tokens t JOIN refresh_token_families f "
            "ON f.id = t.family_id WHERE f.user_id = $1 AND t.used_at IS NOT NULL",
            uuid.UUID(user["id"]),
        )
        assert rotated == 0
    finally:
        await watcher.close()
        await conn.close()


async def test_refresh_by_cookie_needs_an_allowed_origin(client: Any, sink: SmtpSink) -> None:
    user, _ = await register(client, sink)
    token = (await (await login(client, user["email"])).json())["data"]["refresh_token"]
    cookie = {"Cookie": f"fixup_refresh={token}"}
    refused = await client.post("/v1/auth/refresh", headers=cookie)
    assert refused.status == 403
    evil = await client.post(
        "/v1/auth/refresh", headers={**cookie, "Origin": "https://evil.example"}
    )
    assert evil.status == 403
    ok = await client.post("/v1/auth/refresh", headers={**cookie, "Origin": ORIGIN})
    assert ok.status == 200, await ok.text()


async def test_a_cookie_authenticated_write_without_origin_is_403(
    client: Any, sink: SmtpSink
) -> None:
    user, _ = await register(client, sink)
    access = (await (await login(client, user["email"])).json())["data"]["access_token"]
    resp = await client.post(
        "/v1/users/me/password",
        json={"old_password": PASSWORD, "new_password": "another-password-1"},
        headers={"Cookie": f"fixup_access={access}"},
    )
    assert resp.status == 403
    # an anonymous route ignores the access cookie (and a bearer token): nothing to forge
    resp = await client.post(
        "/v1/auth/logout",
        json={"refresh_token": "A" * 43},
        headers={"Cookie": f"fixup_access={access}"},
    )
    assert resp.status == 204


async def test_refresh_unknown_missing_or_expired_is_401(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    assert (await refresh(client, "B" * 43)).status == 401
    assert (await client.post("/v1/auth/refresh")).status == 401
    user, _ = await register(client, sink)
    token = (await (await login(client, user["email"])).json())["data"]["refresh_token"]
    await pg.execute(
        users_dsn,
        "UPDATE refresh_tokens t SET created_at = now() - interval '31 days', "
        "expires_at = now() - interval '1 day' FROM refresh_token_families f "
        "WHERE f.id = t.family_id AND f.user_id = $1",
        uuid.UUID(user["id"]),
    )
    assert (await refresh(client, token)).status == 401


async def test_logout_revokes_the_family_and_clears_the_cookies(
    client: Any, sink: SmtpSink
) -> None:
    user, _ = await register(client, sink)
    pair = (await (await login(client, user["email"])).json())["data"]
    other = (await (await login(client, user["email"])).json())["data"]  # another device
    resp = await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert resp.status == 204
    cleared = resp.headers.getall("Set-Cookie")
    assert any(c.startswith('fixup_access=""') or "Max-Age=0" in c for c in cleared)
    assert len(cleared) == 2
    assert (await refresh(client, pair["refresh_token"])).status == 401
    assert (await refresh(client, other["refresh_token"])).status == 200
    assert (await client.post("/v1/auth/logout", json={})).status == 401


# --- password reset -------------------------------------------------------------------------


async def test_password_reset_sets_the_password_and_revokes_every_family(
    client: Any, sink: SmtpSink
) -> None:
    user, _ = await register(client, sink)
    sessions = [(await (await login(client, user["email"])).json())["data"] for _ in range(2)]
    resp = await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    assert resp.status == 204
    token = token_in(await mail_to(sink, user["email"]))
    body = {"token": token, "new_password": "a new secret"}
    assert (await client.post("/v1/auth/password-reset/confirm", json=body)).status == 204
    for session in sessions:
        assert (await refresh(client, session["refresh_token"])).status == 401
    wrong = await client.post(
        "/v1/auth/login", json={"email": user["email"], "password": "correct horse"}
    )
    assert wrong.status == 401
    await login(client, user["email"], "a new secret")
    again = await client.post("/v1/auth/password-reset/confirm", json=body)
    assert again.status == 409
    assert (await again.json())["code"] == "LINK_USED"


async def test_password_reset_of_an_unknown_email_is_204_and_sends_nothing(
    client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    email = new_email()
    resp = await client.post("/v1/auth/password-reset", json={"email": email})
    assert resp.status == 204
    conn = await asyncpg.connect(users_dsn)
    try:  # a mail is queued in the request's own transaction: none is there for `email`
        queued = await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE recipient = $1", email)
    finally:
        await conn.close()
    assert queued == 0
    # nor was one sent already: every mail up to a later one (the relay sends the oldest
    # due first) is read, whoever it is for
    marker = new_email()
    resp = await client.post("/v1/auth/register", json=customer(marker))
    assert resp.status == 201, await resp.text()
    recipients = [(await sink.next_mail())["To"]]
    while recipients[-1] != marker:
        recipients.append((await sink.next_mail())["To"])
    assert email not in recipients


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"token": "C" * 43, "new_password": "long enough"}, "LINK_INVALID"),
        ({"token": "C" * 43, "new_password": "short"}, "VALIDATION_ERROR"),
        ({"token": "C" * 43}, "VALIDATION_ERROR"),
    ],
)
async def test_password_reset_confirm_refuses(client: Any, body: dict[str, Any], code: str) -> None:
    resp = await client.post("/v1/auth/password-reset/confirm", json=body)
    assert resp.status == 400
    assert (await resp.json())["code"] == code


async def test_an_expired_reset_link_is_link_expired_and_changes_nothing(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    assert (
        await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    ).status == 204
    token = token_in(await mail_to(sink, user["email"]))
    await pg.execute(
        users_dsn,
        "UPDATE email_tokens SET created_at = now() - interval '2 hours', "
        "expires_at = now() - interval '1 hour' WHERE user_id = $1 AND purpose = $2",
        uuid.UUID(user["id"]), "PASSWORD_RESET",
    )  # fmt: skip
    body = {"token": token, "new_password": "a new secret"}
    resp = await client.post("/v1/auth/password-reset/confirm", json=body)
    assert resp.status == 400
    assert (await resp.json())["code"] == "LINK_EXPIRED"
    await login(client, user["email"])  # the old password still works


# --- forged access tokens -------------------------------------------------------------------

FORGERIES = {
    "expired": forge.forge_expired,
    "another-key": forge.forge_other_ed25519_key,
    "alg-none": forge.forge_alg_none,
    "hs256-with-public-key": forge.forge_hs256_with_public_key,
    "wrong-iss": forge.claims_case(iss="evil-users"),
    "wrong-aud": forge.claims_case(aud="other"),
    "tampered-payload": forge.forge_tampered_payload,
}


@pytest.mark.parametrize("name", list(FORGERIES))
async def test_forged_access_tokens_are_401(client: Any, name: str) -> None:
    token = FORGERIES[name](forge.Keys(KEYS[0], KEYS[1]))
    resp = await client.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == "UNAUTHORIZED"
    assert body["detail"] == ("token expired" if name == "expired" else "invalid token")


async def test_hashing_queue_full_is_503_with_retry_after(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    app = create_app(
        settings(
            users_dsn,
            sink.port,
            argon2_workers=1,
            argon2_queue=0,
            argon2_memory_cost=65536,
            argon2_time_cost=2,
        )
    )
    client = await aiohttp_client(app)
    body = {"email": new_email(), "password": "whatever1"}  # the decoy hash: full cost
    responses = await asyncio.gather(*(client.post("/v1/auth/login", json=body) for _ in range(6)))
    statuses = sorted(r.status for r in responses)
    assert 401 in statuses, statuses
    assert 503 in statuses, statuses
    busy = next(r for r in responses if r.status == 503)
    assert int(busy.headers["Retry-After"]) >= 1


# --- new passwords screened (services/users/password_screen.py) ---------------------------


def refused(body: dict[str, Any], field: str) -> str:
    assert body["code"] == "VALIDATION_ERROR", body
    assert [e["field"] for e in body["errors"]] == [field]
    return str(body["detail"])


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password1", "common"),
        ("Qwerty123", "common"),
        ("{local} is my secret", "email"),
        ("secret of {email}", "email"),
        ("LOVELACE and more", "name"),
    ],
)
async def test_register_refuses_and_stores_nothing(
    client: Any, users_dsn: str, password: str, why: str
) -> None:
    email = new_email()
    chosen = password.format(email=email, local=email.partition("@")[0])
    resp = await client.post("/v1/auth/register", json=customer(email, password=chosen))
    assert resp.status == 400, await resp.text()
    detail = refused(await resp.json(), "password")
    assert ("common" if why == "common" else "email or name") in detail
    assert chosen not in detail  # the password is never echoed
    assert await pg.fetchval(users_dsn, "SELECT count(*) FROM users WHERE email = $1", email) == 0


async def test_a_change_refused_changes_nothing(client: Any, sink: SmtpSink) -> None:
    user, _ = await register(client, sink)
    access = (await (await login(client, user["email"])).json())["data"]["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    for new in ("iloveyou", f"my {user['email']}!"):
        body = {"old_password": "correct horse", "new_password": new}
        resp = await client.post("/v1/users/me/password", json=body, headers=headers)
        assert resp.status == 400, await resp.text()
        refused(await resp.json(), "new_password")
    await login(client, user["email"])  # the old password, and the session, still hold


async def test_a_reset_refused_keeps_its_link(client: Any, sink: SmtpSink) -> None:
    user, _ = await register(client, sink)
    assert (await client.post("/v1/auth/password-reset", json={"email": user["email"]})).ok
    token = token_in(await mail_to(sink, user["email"]))
    for new in ("trustno1", "Ada forever and ever"):
        body = {"token": token, "new_password": new}
        resp = await client.post("/v1/auth/password-reset/confirm", json=body)
        assert resp.status == 400, await resp.text()
        refused(await resp.json(), "new_password")
    body = {"token": token, "new_password": "a quiet harbour at dawn"}
    assert (await client.post("/v1/auth/password-reset/confirm", json=body)).status == 204
    await login(client, user["email"], "a quiet harbour at dawn")


async def test_an_account_with_a_listed_password_still_signs_in(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    with env(**CHEAP_ARGON2):
        listed = hash_password("password1")
    conn = await asyncpg.connect(users_dsn)
    try:  # set as an earlier version, which took any password, would have stored it
        await conn.execute("UPDATE users SET password_hash = $1 WHERE id = $2", listed, user["id"])
    finally:
        await conn.close()
    await login(client, user["email"], "password1")
