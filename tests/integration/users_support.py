"""Helpers of the users profile tests: a users app on real servers, users made in SQL,
tokens for them."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Any

import asyncpg
from pydantic import SecretStr

from lib.auth.passwords import make_hasher
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.auth_support import KEYS, TEST_STORAGE, TEST_TOKEN_TTL
from tests.servers import pooler_settings

CHEAP = make_hasher(1, 8, 1)  # verification reads the cost from the hash itself
PASSWORD = "correct horse battery"


# the users service's own limits (login, mail, register) out of the way of a test's traffic
AUTH_LIMITS_OFF: dict[str, float] = {
    "login_rate": 1e6, "login_burst": 10**6, "mail_rate": 1e6, "mail_burst": 10**6,
    "register_rate": 1e6, "register_burst": 10**6,
}  # fmt: skip


def mailing_settings(dsn: str, smtp_port: int, **extra: Any) -> UsersSettings:
    """users_settings with mail to a local sink on `smtp_port` and no auth limits."""
    mail = {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_timeout": 2.0}
    return users_settings(dsn, **{**AUTH_LIMITS_OFF, **mail, **extra})


def users_settings(dsn: str, **extra: Any) -> UsersSettings:
    return UsersSettings.model_validate(
        {
            "service": "users",
            "database_url": dsn,
            "jwt_public_key": SecretStr(KEYS[1]),
            "jwt_private_key": SecretStr(KEYS[0]),
            "encryption_key": SecretStr(base64.b64encode(b"k" * 32).decode()),
            "argon2_time_cost": 1,
            "argon2_memory_cost": 8,
            "argon2_parallelism": 1,
            "points_grpc_addr": "",
            "rate_limit_ip_rate": 1e6,
            "rate_limit_ip_burst": 10**6,
            "rate_limit_user_rate": 1e6,
            "rate_limit_user_burst": 10**6,
            "cors_allow_origins": ["https://app.fixup.test"],
            "storage_dir": TEST_STORAGE,
            **pooler_settings(dsn),  # make test-pgbouncer: through PgBouncer
            **extra,
        }
    )


# --- accounts made through /v1/auth/register (the auth tests) ----------------------------

SIGN_UP_PASSWORD = "correct horse"  # the password of a `customer` registration body


def new_email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@fixup.test"  # one length: one Content-Length


def customer(address: str, **extra: Any) -> dict[str, Any]:
    """The body registering a CUSTOMER at `address`."""
    return {
        "email": address,
        "password": SIGN_UP_PASSWORD,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone_number": "+44 20 7946 0000",
        "role": "CUSTOMER",
        **extra,
    }


async def login(client: Any, email: str, password: str = SIGN_UP_PASSWORD) -> dict[str, Any]:
    """POST /v1/auth/login, which must succeed: the token pair."""
    resp = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    pair: dict[str, Any] = (await resp.json())["data"]
    return pair


async def refresh(client: Any, token: str) -> Any:
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


async def blocked_on_a_lock(conn: asyncpg.Connection, seconds: float = 10.0) -> None:
    """Return once another session of this database waits for a row lock."""
    deadline = time.monotonic() + seconds
    while not await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ):
        assert time.monotonic() < deadline, "no request came to wait for the lock"
        await asyncio.sleep(0.01)


async def make_user(dsn: str, role: Role = Role.CUSTOMER, **fields: Any) -> uuid.UUID:
    """A user row (password PASSWORD) and one open refresh family, signed in now, whose id
    is the user's: the session `auth` names in its tokens (`sid`). Returns the id."""
    async with pg.connected(dsn) as conn:
        user_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO users (email, password_hash, first_name, last_name, phone_number,"
            " role, verified, age) VALUES ($1, $2, 'Ada', 'Lovelace', '+1 555 0100', $3,"
            " true, $4) RETURNING id",
            f"{uuid.uuid4().hex}@example.com",
            CHEAP.hash(PASSWORD),
            str(role),
            fields.get("age", 36),
        )
        await conn.execute(
            "INSERT INTO refresh_token_families (id, user_id, authenticated_at)"
            " VALUES ($1, $1, now())",
            user_id,
        )
    return user_id


def auth(user_id: uuid.UUID, role: Role = Role.CUSTOMER, verified: bool = True) -> dict[str, str]:
    """A token of `user_id` in the session `make_user` opened (sid: the user's id)."""
    signer = TokenSigner(KEYS[0], TEST_TOKEN_TTL)
    value, _ = signer.issue(user_id, role, verified, session_id=user_id)
    return {"Authorization": f"Bearer {value}"}


async def age_sign_in(dsn: str, user_id: uuid.UUID, seconds: float) -> None:
    """Every session of the user signed in (or re-authenticated) `seconds` ago, as if that
    time had passed: a test derives it from REAUTH_MAX_AGE instead of sleeping."""
    await pg.execute(
        dsn,
        "UPDATE refresh_token_families SET authenticated_at = now() - make_interval("
        "secs => $2) WHERE user_id = $1",
        user_id,
        float(seconds),
    )


def reauthentication_required(status: int, body: dict[str, Any]) -> bool:
    """The documented refusal of a sensitive action to a stale session (ADR 0055)."""
    return (status, body["type"], body["code"]) == (
        403,
        "https://fixup.dev/problems/reauthentication-required",
        "REAUTHENTICATION_REQUIRED",
    )


async def reauthenticate(client: Any, headers: dict[str, str]) -> None:
    """POST /v1/auth/reauth with the password: the caller's session is recent again."""
    resp = await client.post("/v1/auth/reauth", json={"password": PASSWORD}, headers=headers)
    assert resp.status == 204, await resp.text()
