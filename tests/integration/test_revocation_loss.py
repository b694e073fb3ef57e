"""A Redis that loses its revocations forgets none (ADR 0010): users, catalog, orders and two
chat replicas on loopback with a redis-server of their own. Right after a password change
or an account deletion the server is killed and started again empty, or flushed, or (what
a failover to a lagging replica leaves) keeps its marker but loses the newest write. From
the revocation on, every service is probed with the old token until users has restored
the revocations: no answer but 401 later than the cache's bound after the revocation (the
longest window measured is printed: docs/reliability.md), the open chat socket of the
account is closed (4001), and the restored hash holds the revocation again. About 10 s a
case; `make test` runs three (one per kind of loss), `make revocation-loss` all six."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from lib.auth.revocation import MARKER
from tests import pg
from tests.integration.test_revocation_outage import stack  # noqa: F401  (fixture: own_redis)
from tests.integration.test_revocation_services import (
    CACHE_TTL,
    MARGIN,
    SWEEP,
    Stack,
    change_password,
    delete_account,
    open_chat,
    signed_in,
    start_stack,
    statuses,
)
from tests.reliability.throwaway import RedisServer

RESTORE_CHECK = 1.0  # REVOCATION_RESTORE_CHECK of users (the default)
ACCEPTED = {200, 201}
REVOKERS = {"change": change_password, "delete": delete_account}


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}loss:{uuid.uuid4().hex[:8]}:"


async def restart_empty(server: RedisServer, key: str, subject: uuid.UUID) -> None:
    server.stop()  # SIGTERM, no persistence: what a restart loses
    server.start()  # the same port, empty


async def flush(server: RedisServer, key: str, subject: uuid.UUID) -> None:
    async with aioredis.Redis.from_url(server.url) as client:
        await client.flushall()


async def lose_newest(server: RedisServer, key: str, subject: uuid.UUID) -> None:
    """A replica promoted before it received the revocation: marker kept, field gone."""
    async with aioredis.Redis.from_url(server.url) as client:
        await client.hdel(key, str(subject))


LOSSES = {"restart": restart_empty, "flush": flush, "lagging": lose_newest}


async def field(server: RedisServer, key: str, name: str) -> bytes | None:
    async with aioredis.Redis.from_url(server.url) as client:
        value = await client.hget(key, name)
        return value if isinstance(value, bytes) or value is None else value.encode()


async def marked(server: RedisServer, key: str) -> bool:
    return await field(server, key, MARKER) is not None


async def wait_marked(server: RedisServer, key: str, within: float) -> float:
    """Seconds until users has (re)set the marker; fails after `within`."""
    started = time.monotonic()
    while not await marked(server, key):
        assert time.monotonic() - started < within, "users did not set the marker"
        await _pause()
    return time.monotonic() - started


async def _pause() -> None:
    await asyncio.sleep(0.05)  # a poll's pace: the loop above holds the deadline


FULL = os.environ.get("REVOCATION_LOSS_FULL") == "1"  # make revocation-loss: every case
CASES = [(how, loss) for how in REVOKERS for loss in LOSSES]
BOUNDED = [("change", "restart"), ("delete", "flush"), ("change", "lagging")]


@pytest.mark.parametrize(("how", "loss"), CASES if FULL else BOUNDED)
async def test_no_old_token_is_accepted_after_redis_loses_the_revocations(
    stack: Stack,  # noqa: F811
    own_redis: RedisServer,
    prefix: str,
    how: str,
    loss: str,
) -> None:
    key = f"{prefix}all"
    await wait_marked(own_redis, key, RESTORE_CHECK + MARGIN)  # the start-up restore
    account = await signed_in(stack)
    socket = await open_chat(stack, account)
    assert set((await statuses(stack, account.headers)).values()) <= ACCEPTED  # caches warm

    resp = await REVOKERS[how](stack, account)
    assert resp.status == 204, await resp.text()
    revoked_at = time.monotonic()
    await LOSSES[loss](own_redis, key, account.id)

    # bound: the cache's TTL for a loss the marker shows; the keeper's round on top for
    # a lost write behind a kept marker (lagging replica)
    bound = CACHE_TTL + (RESTORE_CHECK if loss == "lagging" else 0.0)
    longest = 0.0  # the latest moment an old token was accepted, after the revocation
    restored = False
    deadline = revoked_at + bound + RESTORE_CHECK + 2 * MARGIN
    while time.monotonic() < deadline:
        answers = await statuses(stack, account.headers)
        answers["chat_2"] = (await stack.chat_2.get("/v1/conversations",
                                                    headers=account.headers)).status  # fmt: skip
        at = time.monotonic() - revoked_at
        if set(answers.values()) & ACCEPTED:
            longest = at
        restored = restored or await marked(own_redis, key)
        if restored and at > bound + MARGIN:
            break
    print(f"revocation loss {loss}/{how}: old token accepted until {longest:.3f} s")
    assert longest < bound + MARGIN, f"accepted {longest:.2f} s after the revocation"
    assert restored, "users did not restore the revocations"

    # the restore put the revocation back: Redis alone decides again
    row = await pg.fetchrow(stack.users_dsn, "SELECT not_before FROM token_revocations "
                          "WHERE user_id = $1", account.id)  # fmt: skip
    held = await field(own_redis, key, str(account.id))
    assert held is not None
    assert int(held) >= int(row[0].timestamp() * 1000)
    assert set((await statuses(stack, account.headers)).values()) == {401}
    # the socket opened before is closed: the sweep asked the record while Redis could not tell
    closed = await socket.receive(timeout=SWEEP + bound + MARGIN)
    assert closed.type == aiohttp.WSMsgType.CLOSE, closed
    assert (closed.data, closed.extra) == (4001, "token revoked")
    await socket.close()


async def test_a_fresh_token_works_while_redis_has_lost_the_revocations(
    aiohttp_server: Any,
    aiohttp_client: Any,
    own_redis: RedisServer,
    prefix: str,
    migrated_db: Callable[[str], str],
) -> None:
    """No marker: every service asks users' record, and an account with no revocation is
    served normally meanwhile (and after the restore, which a shorter
    REVOCATION_RESTORE_CHECK brings sooner: a flush is seen within it)."""
    dsns = tuple(migrated_db(db) for db in ("users", "catalog", "orders", "chat"))
    users, catalog, orders, chat = dsns
    fresh = await start_stack(aiohttp_server, aiohttp_client, (users, catalog, orders, chat),
                              own_redis.url, prefix, revocation_restore_check=0.2)  # fmt: skip
    key = f"{prefix}all"
    await wait_marked(own_redis, key, 0.2 + MARGIN)
    own_redis.stop()
    own_redis.start()
    account = await signed_in(fresh)  # seen by no process: every cache asks
    answers = await statuses(fresh, account.headers)
    assert answers == {"orders": 201, "catalog": 200, "chat": 200, "users": 200}
    await wait_marked(own_redis, key, 0.2 + MARGIN)
    assert set((await statuses(fresh, account.headers)).values()) <= ACCEPTED
    await flush(own_redis, key, account.id)
    assert await wait_marked(own_redis, key, 0.2 + MARGIN) < 0.2 + MARGIN
