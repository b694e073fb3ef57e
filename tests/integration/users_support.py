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
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL
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
            **pooler_settings(dsn),  # make test-pgbouncer: through PgBouncer
            **extra,
        }
    )


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
    """A user row (password PASSWORD) and one open refresh family; returns its id."""
    conn = await asyncpg.connect(dsn)
    try:
        user_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO users (email, password_hash, first_name, last_name, phone_number,"
            " role, verified, age) VALUES ($1, $2, 'Ada', 'Lovelace', '+1 555 0100', $3,"
            " true, $4) RETURNING id",
            f"{uuid.uuid4().hex}@example.com",
            CHEAP.hash(PASSWORD),
            str(role),
            fields.get("age", 36),
        )
        await conn.execute("INSERT INTO refresh_token_families (user_id) VALUES ($1)", user_id)
    finally:
        await conn.close()
    return user_id


def auth(user_id: uuid.UUID, role: Role = Role.CUSTOMER, verified: bool = True) -> dict[str, str]:
    value, _ = TokenSigner(KEYS[0], TEST_TOKEN_TTL).issue(user_id, role, verified)
    return {"Authorization": f"Bearer {value}"}


async def fetch_row(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()
