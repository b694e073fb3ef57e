"""Load: wrk at each HTTP service's saturation point (no 5xx, p99 printed), the rate
limiter holding its configured rate within 10% across two replicas sharing Redis, and
3 x the pool of concurrent writes on orders and chat (tests/reliability/capacity.py)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from lib.auth.principal import Role
from tests.reliability import capacity, figures
from tests.reliability.budget import LOAD_SECONDS
from tests.reliability.stack import RATE_LIMIT_PREFIX, common_env, start, token
from tests.servers import Servers
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess
from tools.time_scale import scaled

CONNECTIONS = 32  # well past the point where 2 cores are saturated


def wrk(
    url: str, seconds: float, headers: dict[str, str] | None = None, connections: int = 0
) -> str:
    binary = shutil.which("wrk")
    assert binary, "wrk is missing: apt-get install -y wrk"
    clients = connections or CONNECTIONS
    command = [binary, "-t2", f"-c{clients}", f"-d{seconds:g}s", "--latency", url]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + scaled(60.0), check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def count_by_status(service: ServiceProcess, route: str) -> dict[str, float]:
    """The service's own count of GET `route` answers, by status (its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{service.url}/metrics") as r:
        text = await r.text()
    counts: dict[str, float] = {}
    pattern = (
        rf'http_requests_total\{{(?=[^}}]*method="GET")[^}}]*route="{re.escape(route)}"'
        rf'[^}}]*status="(\d+)"\}} (\S+)'
    )
    for status, value in re.findall(pattern, text):
        counts[status] = counts.get(status, 0) + float(value)
    return counts


@pytest.mark.parametrize(
    ("service", "path", "role"),
    [
        ("departments", "/v1/departments?limit=50", None),
        ("users", "/v1/users?limit=20", Role.MODERATOR),
        ("catalog", "/v1/services?limit=50", None),
        ("orders", "/v1/orders?limit=20", Role.CUSTOMER),
        ("chat", "/v1/conversations?limit=20", Role.CUSTOMER),
    ],
    indirect=["service"],
)
async def test_a_list_at_saturation(service: ServiceProcess, path: str, role: Role | None) -> None:
    name, route = service.log.stem, path.split("?")[0]
    headers = {"Authorization": f"Bearer {token(role)}"} if role else {}
    before = await count_by_status(service, route)  # other tests of the module used it too
    output = await asyncio.to_thread(wrk, service.url + path, LOAD_SECONDS, headers)
    after = await count_by_status(service, route)
    counts = {s: n - before.get(s, 0) for s, n in after.items() if n > before.get(s, 0)}
    fives = sum(v for s, v in counts.items() if s.startswith("5"))
    served = sum(counts.values())
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE)  # the distribution line
    rate = re.search(r"Requests/sec:\s+(\S+)", output)
    assert p99, output
    assert rate, output
    print(f"wrk {name} {path}: {rate.group(1)} req/s, p99 {p99.group(1)}, statuses {counts}")
    figures.put(f"load {name}: req/s", float(rate.group(1)))
    figures.put(f"load {name}: p99 ms", _ms(p99.group(1)))
    assert served > 0
    assert fives == 0, counts
    assert set(counts) == {"200"}, counts  # nothing refused either: limits are open here


async def test_orders_creates_and_offers_at_three_times_the_pool(
    orders: ServiceProcess, catalog: ServiceProcess, orders_dsn: str
) -> None:
    await capacity.orders_writes(orders, catalog, orders_dsn)


async def test_orders_updates_at_three_times_the_pool(
    orders: ServiceProcess, catalog: ServiceProcess
) -> None:
    await capacity.orders_updates(orders, catalog)


async def test_registrations_at_three_times_the_pool(users: ServiceProcess, users_dsn: str) -> None:
    await capacity.users_registrations(users, users_dsn)


async def test_chat_conversation_creates_at_three_times_the_pool(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess, chat_dsn: str
) -> None:
    await capacity.chat_conversation_creates(chat, orders, catalog, chat_dsn)


async def test_chat_messages_at_three_times_the_pool(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess, chat_dsn: str
) -> None:
    await capacity.chat_writes(chat, orders, catalog, chat_dsn)


async def test_rate_limit_holds_across_two_replicas_sharing_redis(
    departments_dsn: str, servers: Servers, tmp_path: Path
) -> None:
    # the machine's Redis, shared with other runs: this test's buckets under a prefix of its own
    prefix = f"{RATE_LIMIT_PREFIX}{uuid.uuid4().hex}:"
    rate, burst = 50.0, 10
    env = common_env(
        "departments",
        departments_dsn,
        REDIS_URL=servers.redis_url,
        RATE_LIMIT_PREFIX=prefix,
        RATE_LIMIT_IP_RATE=str(rate),
        RATE_LIMIT_IP_BURST=str(burst),
    )
    replicas = [
        await start("departments", {**env, "DEPARTMENTS_PORT": port}, tmp_path / f"r{i}.log")
        for i, port in enumerate([env["DEPARTMENTS_PORT"], str(free_port())])
    ]
    try:
        began = time.monotonic()
        load = asyncio.gather(
            *(
                # past the limit (thousands/s vs 50/s) but below saturation: the limiter,
                # not load shedding, must decide every answer
                asyncio.to_thread(wrk, f"{r.url}/v1/departments?limit=1", LOAD_SECONDS, None, 4)
                for r in replicas
            )
        )
        # the shared bucket lives under this run's prefix while the load lasts (a drained
        # bucket expires once it would be full again, so it is looked for now, not after)
        keys: list[bytes] = []
        while not keys and not load.done():
            keys = await prefixed_keys(servers.redis_url, prefix, delete=False)
            await asyncio.sleep(0.05)  # a bounded look, once per 50 ms while wrk runs
        await load
        took = time.monotonic() - began
        counts = [await count_by_status(r, "/v1/departments") for r in replicas]
    finally:
        for r in replicas:
            r.stop()
        await prefixed_keys(servers.redis_url, prefix, delete=True)
    # one bucket for the client IP, shared by both replicas, under this run's prefix
    assert len(keys) == 1, keys
    assert keys[0].startswith(f"{prefix}departments:ip:".encode()), keys
    assert keys[0].endswith(b"127.0.0.1"), keys
    accepted = sum(c.get("200", 0) for c in counts)
    refused = sum(c.get("429", 0) for c in counts)
    fives = sum(v for c in counts for s, v in c.items() if s.startswith("5"))
    # wrk's own start-up and the last in-flight requests: measured wall time is an upper bound
    expected_low, expected_high = rate * LOAD_SECONDS + burst, rate * took + burst
    print(
        f"rate limit: {accepted:g} accepted, {refused:g} refused in {took:.2f}s "
        f"(configured {rate:g}/s + burst {burst})"
    )
    figures.put("rate limiter: accepted / configured", accepted / (rate * took + burst))
    assert fives == 0, counts
    assert refused > accepted  # the load really went past the limit
    assert 0.9 * expected_low <= accepted <= 1.1 * expected_high, (accepted, took)
    assert took < LOAD_SECONDS + PROCESS_MARGIN


async def prefixed_keys(url: str, prefix: str, *, delete: bool) -> list[bytes]:
    """The keys under `prefix` (removed when `delete`: Redis is shared, never flushed)."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if delete and keys:
            await client.delete(*keys)
        return keys
    finally:
        await client.aclose()


def _ms(wrk_time: str) -> float:
    """wrk's '49.11ms' / '1.20s' / '900.00us' in milliseconds."""
    for unit, factor in (("ms", 1.0), ("us", 0.001), ("s", 1000.0)):
        if wrk_time.endswith(unit):
            return float(wrk_time[: -len(unit)]) * factor
    raise AssertionError(wrk_time)
