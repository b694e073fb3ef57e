"""The chat WebSocket against real PostgreSQL, the real orders app and the real Redis: the
whole life cycle (a socket's frame and an HTTP post reach both sides, as a page lists
them), the slow-consumer close (4008) of a real peer that stops reading while another
keeps up, and two app instances sharing Redis. The handshake's refusals, pings and
every close in detail: tests/integration/test_chat_socket.py."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.integration.chat_support import (
    ChatFactory,
    StalledClient,
    World,
    closes,
    conversation,
    post_message,
    sockets_open,
    token_of,
)
from tests.integration.orders_support import Caller
from tests.servers import Servers
from tools.time_scale import scaled

RECEIVE = scaled(10.0)  # bound on every wait for a frame (the frames come in milliseconds)


def ws_path(conversation_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/ws"


async def open_socket(chat: Any, conversation_id: str, who: Caller, **kw: Any) -> Any:
    return await chat.ws_connect(
        ws_path(conversation_id), protocols=("fixup.bearer", token_of(who)), **kw
    )


async def next_json(ws: Any) -> dict[str, Any]:
    message = await ws.receive(timeout=RECEIVE)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    payload: dict[str, Any] = orjson.loads(message.data)
    return payload


async def test_life_cycle(chat: Any, chat_world: World) -> None:
    made = await conversation(chat, chat_world)
    customer, provider = chat_world.customer, chat_world.p1
    mine = await open_socket(chat, made, customer)
    theirs = await open_socket(chat, made, provider)

    await mine.send_str(orjson.dumps({"type": "send", "body": "  hello  "}).decode())
    got = [await next_json(mine), await next_json(theirs)]  # the sender's socket too
    assert got[0] == got[1]
    assert got[0]["type"] == "message"
    message = got[0]["data"]
    assert (message["body"], message["author_id"]) == ("hello", str(customer.id))

    resp = await post_message(chat, made, provider, "over HTTP")
    posted = (await resp.json())["data"]
    for ws in (mine, theirs):
        assert await next_json(ws) == {"type": "message", "data": posted}
    listed = await chat.get(
        f"/v1/conversations/{made}/messages?after={message['cursor']}", headers=customer.headers
    )
    assert (await listed.json())["data"] == [posted]  # the same shape as a page's item

    await mine.close()
    assert mine.closed
    await post_message(chat, made, provider, "mine is gone")
    assert (await next_json(theirs))["data"]["body"] == "mine is gone"
    await theirs.close()
    await sockets_open(0)


def kernel_buffer_max(name: str) -> int:
    """The largest a TCP buffer may grow to (the third of net.ipv4.<name>)."""
    return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])


async def test_a_slow_consumer_is_closed_with_4008(
    chat_factory: ChatFactory, chat_world: World
) -> None:
    chat = await chat_factory(ws_send_queue=4, ws_close_timeout=0.5)
    made = await conversation(chat, chat_world)
    reader = await open_socket(chat, made, chat_world.customer)  # a normal one, reading
    stalled = StalledClient(chat.port, ws_path(made), token_of(chat_world.p1))
    await stalled.handshake()
    before = closes("slow")
    big = "\U0001f600" * 3990  # ~16 KB a frame
    # what the kernel may buffer before the server's writes back up: its largest send and
    # receive buffers (autotuned, so larger on some machines and loads than on others)
    most = (kernel_buffer_max("tcp_wmem") + kernel_buffer_max("tcp_rmem")) // len(big.encode()) + 8
    posted = 0
    try:
        while closes("slow") == before:
            assert posted < most, f"the stalled socket was never closed ({posted} frames)"
            resp = await post_message(chat, made, chat_world.customer, f"{posted} {big}")
            assert resp.status == 201
            posted += 1
            assert (await next_json(reader))["data"]["body"].startswith(f"{posted - 1} ")
        texts, code = await stalled.frames_until_close()
    finally:
        stalled.close()
    assert code == 4008
    assert texts < posted  # it had fallen behind

    await sockets_open(1)  # the server let go of the stalled socket
    # the reader kept up and is still served
    await post_message(chat, made, chat_world.p1, "still flowing")
    assert (await next_json(reader))["data"]["body"] == "still flowing"
    await reader.close()


async def test_two_instances_share_redis(
    chat_factory: ChatFactory, chat_world: World, servers: Servers
) -> None:
    prefix = f"fixup:test:{uuid.uuid4().hex[:8]}:chat:"
    a = await chat_factory(redis_url=servers.redis_url, channel_prefix=prefix)
    b = await chat_factory(redis_url=servers.redis_url, channel_prefix=prefix)
    made = await conversation(a, chat_world)
    on_b = await open_socket(b, made, chat_world.p1)
    on_a = await open_socket(a, made, chat_world.customer)
    resp = await post_message(a, made, chat_world.customer, "from A")
    posted = (await resp.json())["data"]
    assert await next_json(on_b) == {"type": "message", "data": posted}
    assert await next_json(on_a) == {"type": "message", "data": posted}
    await on_b.send_str('{"type": "send", "body": "from B"}')
    for ws in (on_a, on_b):
        assert (await next_json(ws))["data"]["body"] == "from B"
    # concurrent posts on both: each socket gets every message once, in seq order
    sent = await asyncio.gather(
        *(post_message((a, b)[n % 2], made, chat_world.customer, f"c{n}") for n in range(20))
    )
    assert {r.status for r in sent} == {201}
    for ws in (on_a, on_b):
        bodies = [(await next_json(ws))["data"] for _ in range(20)]
        cursors = [m["cursor"] for m in bodies]
        listed = await a.get(
            f"/v1/conversations/{made}/messages?after={posted['cursor']}&limit=100",
            headers=chat_world.customer.headers,
        )
        expected = [m for m in (await listed.json())["data"] if m["body"] != "from B"]
        assert cursors == [m["cursor"] for m in expected]
    await on_a.close()
    await on_b.close()
