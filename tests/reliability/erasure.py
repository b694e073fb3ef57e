"""The restore drill's erasure (ADR 0060): a provider with rows in every service is erased
through the gateway after T, under the story load; the databases restored to T have the
person back, and the services started on the restored copies (with the deployment's
storage, where the erasure ledger is) erase them again, timed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from lib.auth.principal import Role
from tests import pg
from tests.reliability.stack import common_env, start, users_env
from tests.reliability.world import Actor, actor, call
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

SERVICES = ("users", "catalog", "orders", "chat")
INTERVAL = 0.1  # ERASURE_INTERVAL of the services started on the restored copies
# the person's rows as the retention table leaves them (docs/operations.md)
LEFT = {
    "users": "SELECT first_name = 'Deleted' FROM users WHERE id = $1",
    "catalog": "SELECT NOT EXISTS (SELECT FROM provider_services WHERE provider_id = $1)",
    "orders": "SELECT NOT EXISTS (SELECT FROM offers WHERE provider_id = $1"
    " AND message IS NOT NULL)",
    "chat": "SELECT NOT EXISTS (SELECT FROM messages WHERE author_id = $1 AND body <> '[erased]')",
}
RECORDED = "SELECT EXISTS (SELECT FROM erased_users WHERE user_id = $1)"


async def account(users_dsn: str, person: Actor) -> None:
    """The person's users row (the drill's actors carry tokens, not accounts)."""
    await pg.execute(
        users_dsn,
        "INSERT INTO users (id, email, password_hash, first_name, last_name, phone_number,"
        " role, verified) VALUES ($1, $2, '!', 'Ada', 'Lovelace', '+1 555 0100',"
        " 'PROVIDER', true)",
        person.id,
        f"erased{uuid.uuid4().hex[:12]}@fixup.test",
    )


async def erase(http: aiohttp.ClientSession, users_api: str, person: Actor) -> None:
    await call(
        http, "DELETE", f"{users_api}/v1/users/{person.id}", actor(Role.ADMIN), 204,
        **{"If-Match": '"1"'},
    )  # fmt: skip


async def erased(dsn_of: Callable[[str], str], person: Actor) -> dict[str, bool]:
    """Per service: the person's rows as the retention table says, and the erasure recorded."""
    out = {}
    for name in SERVICES:
        async with pg.connected(dsn_of(name)) as conn:
            left = await conn.fetchval(LEFT[name], person.id)
            out[name] = bool(left) and await conn.fetchval(RECORDED, person.id)
    return out


async def until_erased(dsn_of: Callable[[str], str], person: Actor, bound: float) -> float:
    """Seconds until the person is erased in every service (AssertionError past `bound`)."""
    began = time.monotonic()
    while not all((found := await erased(dsn_of, person)).values()):
        assert time.monotonic() - began < bound, f"not erased within {bound:.0f} s: {found}"
        await asyncio.sleep(INTERVAL)  # a poll of the consumers' own period
    return time.monotonic() - began


async def erased_again(
    tmp: Path, storage: Path, dsn_of: Callable[[str], str], person: Actor
) -> tuple[dict[str, bool], float, float]:
    """On the restored copies: what was erased before the services start (nothing: the
    restore rewound it); the seconds from the first service's start until the person is
    erased again in every service, and the seconds the four took to start (one after
    another, each waited for until healthy)."""
    before = await erased(dsn_of, person)
    shared = {
        "STORAGE_DIR": str(storage),
        "ERASURE_INTERVAL": str(INTERVAL),
        "ORDERS_POINTS_GRPC_ADDR": "",  # the restored outbox is the award check's, not ours
    }
    processes: list[ServiceProcess] = []
    try:
        began = time.monotonic()
        for name in SERVICES:
            env = (users_env if name == "users" else common_env)(
                *((dsn_of(name),) if name == "users" else (name, dsn_of(name))), **shared
            )
            processes.append(await start(name, env, tmp / f"{name}-restored.log"))
        started = time.monotonic() - began
        await until_erased(dsn_of, person, PROCESS_MARGIN + 50 * INTERVAL)
        return before, time.monotonic() - began, started
    finally:
        for process in processes:
            process.stop()
