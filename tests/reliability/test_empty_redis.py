"""Redis holds nothing that must survive (ADR 0027): the release drill's stack on a Redis of
the test's own (rate-limit buckets, revocation copies and chat's fan-out in it), whole
stories through the gateway, then the Redis emptied (FLUSHALL) under the load: every
request after it succeeds, the invariants hold (every acknowledged create once, one
accepted offer per order, points = 10 x completed jobs), and the services go on using
the empty Redis. Revocations through an empty Redis are ADR 0028's tests (issue 57)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path

import aiohttp
import redis

from lib.auth.principal import Role
from tests.reliability.drill import start_drill
from tests.reliability.test_release_drill import CLIENTS, Load, invariants, stories
from tests.reliability.throwaway import RedisServer
from tests.reliability.world import actor, catalog_service
from tools.local.service_process import PROCESS_MARGIN

STORIES = 3  # whole stories before the flush, and after it


def commands(client: redis.Redis) -> int:
    """Commands the server has run so far (INFO stats)."""
    return int(client.info("stats")["total_commands_processed"])


async def test_the_system_comes_back_whole_from_an_empty_redis(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    dsn = functools.cache(migrated_db)  # one new database each, asked for many times

    server = RedisServer()
    await asyncio.to_thread(server.start)
    client = redis.Redis.from_url(server.url)
    try:
        # the copy is gone until users restores it: each service asks users' record, whose
        # answer on a machine this loaded may take longer than production's 0.5 s bound: the
        # setting's ceiling, 10 s
        shared = {"REDIS_URL": server.url, "REVOCATION_RECORD_TIMEOUT": "10"}
        drill = await start_drill(tmp_path, dsn, shared)
        stop = asyncio.Event()
        try:
            timeout = aiohttp.ClientTimeout(total=2 * PROCESS_MARGIN)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                providers = [actor(Role.PROVIDER) for _ in range(CLIENTS)]
                service_id = await catalog_service(http, drill.api("catalog"), *providers)
                load = Load(drill, http, service_id, providers)
                tasks = [asyncio.create_task(load.client(stop, p)) for p in providers]
                try:
                    await stories(load, STORIES)
                    before = await asyncio.to_thread(commands, client)
                    await asyncio.to_thread(client.flushall)
                    flushed = await asyncio.to_thread(commands, client)
                    load.phase = "during"
                    await stories(load, STORIES)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks, return_exceptions=True)
            held = await invariants(drill, load, dsn)
        finally:
            drill.stop()
        after = await asyncio.to_thread(commands, client)
    finally:
        client.close()
        await asyncio.to_thread(server.stop)
    failed = {k: n for k, n in load.outcomes.items() if k != "ok"}
    lines = [
        f"empty Redis: {load.stories} stories; Redis commands {before} before the flush,"
        f" {after - flushed} after it",
        f"failed {failed}",
        *load.failures[:5],
        *(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in held.items()),
    ]
    print("\n".join(lines))
    assert before > CLIENTS * STORIES, lines  # the stack used this Redis
    assert after - flushed > CLIENTS * STORIES, lines  # and goes on using the empty one
    assert failed == {}, lines
    assert all(held.values()), lines
