"""Redis with Sentinel loses its master (issue 50): tools/ha/ha_redis.py's master, replica and
3 Sentinels on free ports, a real departments process connected through Sentinel
(`REDIS_SENTINELS`), the master SIGKILLed. While the Sentinels elect a new master the
service keeps answering and its rate limits keep their documented behaviour (each process
decides with its own bucket, one warning: docs/api.md "Rate limits", ADR 0005); once the
replica is promoted the limits are back in Redis, on the new master, without a restart.
Chat's fan-out (lib/pubsub.py) through Sentinel reaches another process again after the
promotion; the failover drill's Redis fault (a writer through Sentinel) is the last test."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import redis

from lib.config import ServiceSettings
from lib.pubsub import RedisPubSub
from lib.redis_client import connect_redis
from tests.reliability import figures
from tests.reliability.stack import RATE_LIMIT_PREFIX, common_env, start
from tools.drills.failover_drill import run
from tools.drills.failover_redis import RECOVERY_LIMIT, TIMEOUT, kill_master
from tools.ha import ha_tier
from tools.ha.ha_redis import RedisLayout, master_address
from tools.local.service_process import PROCESS_MARGIN


async def redis_tier(var: Path) -> tuple[RedisLayout, list[int]]:
    """A master, a replica and 3 Sentinels on free ports under `var` (all stopped again
    when one cannot start)."""
    try:
        await asyncio.to_thread(ha_tier.up, var, free_ports=True, parts=("redis",))
    except BaseException:
        await asyncio.to_thread(ha_tier.down, var)
        raise
    return ha_tier.read_redis(var)


def bucket_keys(port: int) -> list[bytes]:
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return list(client.scan_iter(match=f"{RATE_LIMIT_PREFIX}*"))
    finally:
        client.close()


async def test_a_service_keeps_its_limits_through_a_redis_master_killed(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    layout, groups = await redis_tier(tmp_path)
    env = common_env(
        "departments",
        migrated_db("departments"),
        REDIS_SENTINELS=layout.sentinels_setting,
        RATE_LIMIT_IP_RATE="2",
        RATE_LIMIT_IP_BURST="5",
    )
    try:
        service = await start("departments", env, tmp_path / "svc.log")
    except BaseException:
        await asyncio.to_thread(ha_tier.down, tmp_path)
        raise
    url = f"{service.url}/v1/departments?limit=1"

    async def burst() -> Counter[int]:
        async with aiohttp.ClientSession() as http:
            statuses: Counter[int] = Counter()
            for _ in range(20):
                async with http.get(url) as resp:
                    statuses[resp.status] += 1
            return statuses

    def lines(event: str) -> list[str]:
        return [line for line in service.log.read_text().splitlines() if f'"{event}"' in line]

    try:
        limited = await burst()
        assert limited[429] >= 10, limited  # the shared limiter, through Sentinel
        assert bucket_keys(layout.master), "no bucket on the first master"
        killed_at = time.monotonic()
        old, _ = await asyncio.to_thread(kill_master, layout, groups)
        during: Counter[int] = Counter()
        deadline = killed_at + RECOVERY_LIMIT
        while (await asyncio.to_thread(master_address, layout) or ("", old))[1] == old:
            assert time.monotonic() < deadline, f"no promotion within {RECOVERY_LIMIT} s"
            during += await burst()
        promotion = time.monotonic() - killed_at
        # while a new master is elected: the process's own bucket, still 429, never a 5xx
        assert set(during) <= {200, 429}, during
        assert during[429] >= during[200], during
        deadline = time.monotonic() + PROCESS_MARGIN  # the store retries every second
        while not lines("rate_limit_store_restored"):
            assert time.monotonic() < deadline, "the limits never went to the new master"
            assert set(await burst()) <= {200, 429}
        again = await burst()
        assert again[429] >= 10, again  # limiting in Redis again, on the promoted replica
        new = await asyncio.to_thread(master_address, layout)
        assert new is not None
        assert new[1] == layout.replica, new
        assert bucket_keys(layout.replica), "no bucket on the new master"
        assert len(lines("rate_limit_store_unreachable")) == 1  # one warning per outage
        async with aiohttp.ClientSession() as http, http.get(f"{service.url}/ready") as resp:
            assert resp.status == 200
            assert (await resp.json())["checks"]["redis"] == "ok"
        assert service.proc.poll() is None
    finally:
        service.stop()
        await asyncio.to_thread(ha_tier.down, tmp_path)
    print(f"redis master killed: a new master after {promotion:.1f} s; during it {dict(during)}")
    figures.put("seconds to a new Redis master (Sentinel)", round(promotion, 1))
    figures.add("faults survived", 1)


async def test_the_fan_out_follows_the_promoted_master(tmp_path: Path) -> None:
    layout, groups = await redis_tier(tmp_path)
    settings = ServiceSettings(redis_sentinels=layout.sentinels_setting.split(","))
    links = [connect_redis(settings), connect_redis(settings)]  # two processes' clients
    sender, receiver = (
        RedisPubSub(link.client, service="chat", control_channel="fixup:test:control")
        for link in links
        if link is not None
    )
    received: list[bytes] = []
    try:
        for side in (sender, receiver):
            await side.start()
            await asyncio.wait_for(side.wait_connected(), PROCESS_MARGIN)
        await receiver.subscribe("fixup:test:room", lambda _, payload: received.append(payload))

        async def delivered(payload: bytes, limit: float) -> None:
            deadline = time.monotonic() + limit
            while payload not in received:  # the receiver only hears it through Redis
                assert time.monotonic() < deadline, f"{payload!r} never reached the receiver"
                await sender.publish("fixup:test:room", payload)
                await asyncio.sleep(0.1)

        await delivered(b"before", PROCESS_MARGIN)
        killed_at = time.monotonic()
        await asyncio.to_thread(kill_master, layout, groups)
        await delivered(b"after", RECOVERY_LIMIT)
        print(f"fan-out through Sentinel again {time.monotonic() - killed_at:.1f} s after the kill")
        assert receiver.sessions >= 2  # its connection was lost and restored, not kept
        new = await asyncio.to_thread(master_address, layout)
        assert new is not None
        assert new[1] == layout.replica
    finally:
        for side in (sender, receiver):
            await side.close()
        for link in links:
            if link is not None:
                await link.aclose()
        await asyncio.to_thread(ha_tier.down, tmp_path)


def test_the_drill_s_redis_fault_loses_at_most_the_write_in_flight(tmp_path: Path) -> None:
    (result,) = run(tmp_path, ["redis"])
    assert result.passed, result
    assert 0 <= result.recovery_seconds < RECOVERY_LIMIT
    assert result.longest_failure <= TIMEOUT + 1
    assert "Redis master" in result.fault
