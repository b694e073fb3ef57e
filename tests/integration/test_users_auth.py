"""/v1/auth/* under pressure and at its edges, on real PostgreSQL (and Redis for the login
limits), mails through a local SMTP sink: the register and login limits (per IP, per email,
50 attempts across two replicas), a login's time whether the account exists or not,
concurrent refreshes and a refresh racing the end of every session, the hashing queue, and
new passwords screened (a breached or personal one refused, changing nothing; a listed one
set earlier still signs in). Each route's exact answers and rows are pinned in
test_users_auth_guards.py."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import math
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import jwt
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from lib.auth.passwords import hash_password
from lib.auth.tokens import TokenSigner
from lib.crypto import generate_key
from lib.resilience.ratelimit import FallbackRateLimiter
from services.users.app import create_app
from services.users.auth_kit import AUTH_KIT
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL
from tests.integration.smtp_support import SmtpSink, mail_to, token_in
from tests.integration.users_support import (
    SIGN_UP_PASSWORD,
    blocked_on_a_lock,
    customer,
    login,
    mailing_settings,
    new_email,
    refresh,
)
from tests.servers import env
from tools.local import seed
from tools.local.ports import free_port
from tools.time_scale import scaled

ORIGIN = "http://localhost:8080"
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
def users_dsn(migrated_db: Callable[[str], str]) -> str:
    """Seeded (make seed's accounts), argon2 at its cheapest."""
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


async def register(client: Any, sink: SmtpSink, **extra: Any) -> tuple[dict[str, Any], str]:
    """A new account and the token of its verification mail."""
    email = new_email()
    resp = await client.post("/v1/auth/register", json=customer(email, **extra))
    assert resp.status == 201, await resp.text()
    user = (await resp.json())["data"]
    mail = await mail_to(sink, email)
    return user, token_in(mail)


# --- register ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status"),
    [  # the role and personal id refusals: test_users_auth_guards.py
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


# --- login ----------------------------------------------------------------------------------


async def test_a_token_s_iat_is_the_database_clock_not_the_signer_s(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    """ADR 0010: AuthKit.issue reads the database's clock on the connection it is given,
    for the token's iat; the signer's own clock (here 90 s ahead) is never asked."""
    app = create_app(settings(users_dsn, sink.port))
    await aiohttp_client(app)  # started: auth_ctx has made the kit

    def ahead() -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=90)

    signer = TokenSigner(KEYS[0], TEST_TOKEN_TTL, clock=ahead)
    kit = dataclasses.replace(app[AUTH_KIT], signer=signer)
    clock = "SELECT extract(epoch FROM clock_timestamp())::float8"
    conn = await asyncpg.connect(users_dsn)
    try:
        before = await conn.fetchval(clock)
        token = await kit.issue(conn, uuid.uuid4(), "CUSTOMER", True, session_id=uuid.uuid4())
        after = await conn.fetchval(clock)
    finally:
        await conn.close()
    iat = jwt.decode(token, options={"verify_signature": False})["iat"]
    assert math.floor(before * 1000) / 1000 <= iat <= after  # iat is in milliseconds


async def test_argon2_priority_reaches_the_hashing_threads(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    """ARGON2_PRIORITY=idle: the users app's hashing threads run under SCHED_IDLE (what
    each value does to a thread: tests/unit/test_hashing_priority.py)."""
    app = create_app(settings(users_dsn, sink.port, argon2_priority="idle"))
    await aiohttp_client(app)  # started: auth_ctx has made the hasher
    policy = await app[AUTH_KIT].hasher.bulkhead.run(lambda: os.sched_getscheduler(0))
    assert policy == os.SCHED_IDLE


async def test_a_login_is_refused_503_when_redis_cannot_count_the_account_s_attempts(
    aiohttp_client: Any, users_dsn: str, sink: SmtpSink
) -> None:
    """The attempts per email are strict (ADR 0010): with REDIS_URL's server away, the
    per-IP limit falls back to this process's count, the account's refuses with 503: a
    per-process count would give every replica its own budget of guesses."""
    away = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(settings(users_dsn, sink.port, redis_url=away))
    client = await aiohttp_client(app)
    resp = await client.post("/v1/auth/login", json={"email": new_email(), "password": "x"})
    assert resp.status == 503, await resp.text()
    assert (await resp.json())["detail"] == "the login limit cannot be checked"


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


# --- refresh token life cycle ---------------------------------------------------------------


async def test_twenty_concurrent_refreshes_make_exactly_one_pair(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    user, _ = await register(client, sink)
    token = (await login(client, user["email"]))["refresh_token"]
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


async def test_a_refresh_racing_the_end_of_every_session_is_refused(
    client: Any, sink: SmtpSink, users_dsn: str
) -> None:
    """A rotation waits for a revocation of its family in progress, then sees it."""
    user, _ = await register(client, sink)
    token = (await login(client, user["email"]))["refresh_token"]
    async with pg.connected(users_dsn) as conn, pg.connected(users_dsn) as watcher:
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


# --- the hashing queue ----------------------------------------------------------------------


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
    access = (await login(client, user["email"]))["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    for new in ("iloveyou", f"my {user['email']}!"):
        body = {"old_password": SIGN_UP_PASSWORD, "new_password": new}
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
    # set as an earlier version, which took any password, would have stored it
    await pg.execute(
        users_dsn, "UPDATE users SET password_hash = $1 WHERE id = $2", listed, user["id"]
    )
    await login(client, user["email"], "password1")
