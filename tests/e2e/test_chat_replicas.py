"""Two chat replicas as real processes behind real NGINX (one upstream, the upgrade
headers), sharing a Redis of their own (this test restarts it), with the real orders and
catalog apps on loopback: a message posted on one replica reaches the sockets of the
other, through NGINX too; Redis restarted -> subscriptions restored, and what was posted
while it was away is delivered once it is back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis
from prometheus_client.parser import text_string_to_metric_families

from lib.auth.revocation import HASH_NAME, MARKER
from lib.config import ServiceSettings
from services.catalog.app import create_app as catalog_app
from services.orders.app import create_app as orders_app
from tests.e2e.gateway_stack import Gateway, require_nginx
from tests.integration.auth_support import KEYS
from tests.integration.catalog_support import catalog_settings
from tests.integration.chat_support import World, eventually, make_world, token_of
from tests.integration.orders_support import Caller, orders_settings
from tests.reliability import figures
from tests.reliability.throwaway import RedisServer
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess

RECEIVE = 10.0


@dataclass
class Replicas:
    a: ServiceProcess
    b: ServiceProcess
    gateway: Gateway
    redis: RedisServer
    world: World


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return 0.0


# chat's REVOCATION_PREFIX: the default (chat_env sets none)
REVOCATION_PREFIX = ServiceSettings.model_fields["revocation_prefix"].default


def no_revocations(url: str) -> None:
    """What users does on a Redis that holds no revocation and has none to restore: mark
    the hash intact (ADR 0028). No users runs here, and without the marker every verifier
    would ask the (absent) record."""
    client = redis.Redis.from_url(url)
    try:
        client.hset(f"{REVOCATION_PREFIX}{HASH_NAME}", MARKER, "no-users-here")
    finally:
        client.close()


def chat_env(dsn: str, port: int, redis_url: str, orders_port: int, prefix: str) -> dict[str, str]:
    return {
        "CHAT_DATABASE_URL": dsn,
        "CHAT_PORT": str(port),
        "CHAT_ORDERS_URL": f"http://127.0.0.1:{orders_port}",
        "CHAT_CHANNEL_PREFIX": prefix,
        "REDIS_URL": redis_url,
        "REVOCATION_RECORD_URL": "http://127.0.0.1:9",  # no users here: the discard port
        "WORKERS": "1",
        "DB_POOL_MIN": "1",
        "LOG_LEVEL": "WARNING",
        "JWT_PUBLIC_KEY": KEYS[1],
        "JWT_PUBLIC_KEY_FILE": "",
        "RATE_LIMIT_IP_RATE": "10000",
        "RATE_LIMIT_IP_BURST": "10000",
        "RATE_LIMIT_USER_RATE": "10000",
        "RATE_LIMIT_USER_BURST": "10000",
    }


@contextlib.asynccontextmanager
async def replicas(
    tmp: Path, aiohttp_server: Any, aiohttp_client: Any, migrated_db: Callable[[str], str]
) -> AsyncIterator[Replicas]:
    require_nginx()
    catalog_server = await aiohttp_server(catalog_app(catalog_settings(migrated_db("catalog"))))
    orders_server = await aiohttp_server(
        orders_app(
            orders_settings(
                migrated_db("orders"), catalog_url=f"http://127.0.0.1:{catalog_server.port}"
            )
        )
    )
    world = await make_world(
        await aiohttp_client(catalog_server), await aiohttp_client(orders_server)
    )
    redis_server = RedisServer()
    redis_server.start()
    no_revocations(redis_server.url)
    dsn, prefix = migrated_db("chat"), f"fixup:e2e:{free_port()}:chat:"
    a = b = None
    gateway = None
    try:
        a, b = (
            ServiceProcess(
                chat_env(dsn, free_port(), redis_server.url, orders_server.port, prefix),
                tmp / f"chat-{name}.log",
                name="chat",
            )
            for name in ("a", "b")
        )
        await a.wait_healthy()
        await b.wait_healthy()
        down = free_port()
        upstreams = {
            name: [f"127.0.0.1:{down}"] for name in ("departments", "users", "catalog", "orders")
        }
        upstreams["chat"] = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        (tmp / "docs").mkdir()
        gateway = await Gateway(tmp, upstreams, tmp / "docs").start()
        yield Replicas(a, b, gateway, redis_server, world)
    finally:
        if gateway is not None:
            gateway.stop()
        for service in (a, b):
            if service is not None:
                service.stop()
        redis_server.stop()


async def next_message(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    frame = await ws.receive(timeout=RECEIVE)
    assert frame.type == aiohttp.WSMsgType.TEXT, frame
    payload: dict[str, Any] = orjson.loads(frame.data)
    assert payload["type"] == "message", payload
    data: dict[str, Any] = payload["data"]
    return data


async def post(
    http: aiohttp.ClientSession, base: str, conversation_id: str, who: Caller, body: str
) -> dict[str, Any]:
    url = f"{base}/v1/conversations/{conversation_id}/messages"
    async with http.post(url, json={"body": body}, headers=who.headers) as resp:
        assert resp.status == 201, await resp.text()
        made: dict[str, Any] = (await resp.json())["data"]
        return made


async def test_replicas_share_redis_through_nginx_and_survive_a_redis_restart(
    tmp_path: Path, aiohttp_server: Any, aiohttp_client: Any, migrated_db: Callable[[str], str]
) -> None:
    async with (
        replicas(tmp_path, aiohttp_server, aiohttp_client, migrated_db) as r,
        aiohttp.ClientSession() as http,
    ):
        world, gw = r.world, f"{r.gateway.url}/api/chat"
        body = {"order_id": world.order_id, "provider_id": str(world.p1.id)}
        async with http.post(
            f"{gw}/v1/conversations", json=body, headers=world.customer.headers
        ) as resp:
            assert resp.status == 201, await resp.text()
            made = (await resp.json())["data"]["id"]
        path = f"/v1/conversations/{made}/ws"
        sockets = [
            await http.ws_connect(
                f"{r.b.url}{path}", protocols=("fixup.bearer", token_of(world.p1))
            ),
            # through NGINX (least_conn: one on each replica)
            await http.ws_connect(
                f"{gw}{path}", protocols=("fixup.bearer", token_of(world.customer))
            ),
            await http.ws_connect(f"{gw}{path}", protocols=("fixup.bearer", token_of(world.p1))),
        ]
        assert all(ws.protocol == "fixup.bearer" for ws in sockets)
        assert await metric(r.a.url, "chat_websockets_open") >= 1  # NGINX used both
        assert await metric(r.b.url, "chat_websockets_open") >= 2

        first = await post(http, r.a.url, made, world.customer, "posted on A")
        for ws in sockets:
            assert await next_message(ws) == first
        second = await post(http, gw, made, world.p1, "posted through NGINX")
        for ws in sockets:
            assert await next_message(ws) == second

        # Redis goes away: posting still works (the message is stored), and comes back
        r.redis.stop()

        async def disconnected() -> bool:
            return all([await metric(s.url, "pubsub_connected") == 0 for s in (r.a, r.b)])

        await eventually(disconnected, "both replicas noticed Redis is gone")
        during = await post(http, r.a.url, made, world.customer, "posted while Redis was away")
        r.redis.start()
        no_revocations(r.redis.url)

        async def restored() -> bool:
            return all(
                [
                    await metric(s.url, "pubsub_connected") == 1
                    and await metric(s.url, "pubsub_reconnects_total") >= 1
                    for s in (r.a, r.b)
                ]
            )

        await eventually(restored, "both replicas subscribed again", seconds=20)
        for ws in sockets:  # read back from the database once pub/sub was restored
            assert await next_message(ws) == during
        after = await post(http, r.a.url, made, world.customer, "posted after the restart")
        for ws in sockets:
            assert await next_message(ws) == after
        figures.add("faults survived", 1)
        figures.add("chat: Redis stopped under live sockets, every message delivered after", 1)
        # SIGTERM: the replica tells its sockets to reconnect elsewhere before it drains
        r.b.proc.terminate()
        closing = await sockets[0].receive(timeout=RECEIVE)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        assert await asyncio.to_thread(r.b.proc.wait, RECEIVE) == 0
        for ws in sockets:
            await ws.close()
