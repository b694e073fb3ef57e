"""Shared helpers of the chat tests: settings, and a world of real services (catalog ->
orders -> chat) with an order, two providers with offers on it and people without."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY

from lib.auth.principal import Role
from services.chat.settings import ChatSettings
from tests.integration.auth_support import service_settings
from tests.integration.orders_support import (
    Caller,
    caller,
    catalog_service,
    offer_body,
    order_body,
)
from tools.time_scale import scaled

ChatFactory = Callable[..., Awaitable[Any]]  # conftest's chat_factory: settings overrides -> client


def chat_settings(dsn: str, prefix: str, **overrides: Any) -> ChatSettings:
    defaults: dict[str, Any] = {
        "orders_url": "http://127.0.0.1:9",  # discard port: orders unreachable unless set
        "channel_prefix": f"{prefix}chat:{uuid.uuid4().hex[:8]}:",
        "redis_url": "",
    }
    return service_settings(ChatSettings, "chat", dsn, **(defaults | overrides))


def token_of(who: Caller) -> str:
    return who.headers["Authorization"].removeprefix("Bearer ")


def closes(reason: str) -> float:
    """chat_websockets_closed_total{reason}: the sockets the server closed for `reason`."""
    value = REGISTRY.get_sample_value(
        "chat_websockets_closed_total", {"service": "chat", "reason": reason}
    )
    return value or 0.0


def open_now() -> float:
    return REGISTRY.get_sample_value("chat_websockets_open", {"service": "chat"}) or 0.0


async def sockets_open(count: float) -> None:
    """Wait until the server holds `count` sockets: it let go of the ones that closed."""

    async def settled() -> bool:
        return open_now() == count

    await eventually(settled, f"{count} sockets open")


@dataclass
class World:
    customer: Caller
    p1: Caller  # has an offer on the order
    p2: Caller  # has an offer on the order
    p3: Caller  # offers the service, no offer on the order
    outsider: Caller  # another customer
    order_id: str
    service_id: str


async def make_world(catalog: Any, orders: Any) -> World:
    customer, outsider = caller(Role.CUSTOMER), caller(Role.CUSTOMER)
    p1, p2, p3 = caller(Role.PROVIDER), caller(Role.PROVIDER), caller(Role.PROVIDER)
    service_id = await catalog_service(catalog, p1.id, p2.id, p3.id)
    resp = await orders.post("/v1/orders", json=order_body(service_id), headers=customer.headers)
    assert resp.status == 201, await resp.text()
    order_id = (await resp.json())["data"]["id"]
    for provider in (p1, p2):
        resp = await orders.post(
            f"/v1/orders/{order_id}/offers", json=offer_body(), headers=provider.headers
        )
        assert resp.status == 201, await resp.text()
    return World(customer, p1, p2, p3, outsider, order_id, service_id)


async def start_conversation(chat: Any, who: Caller, order_id: str, provider: Caller) -> Any:
    body = {"order_id": order_id, "provider_id": str(provider.id)}
    return await chat.post("/v1/conversations", json=body, headers=who.headers)


async def conversation(chat: Any, world: World, provider: Caller | None = None) -> str:
    resp = await start_conversation(chat, world.customer, world.order_id, provider or world.p1)
    assert resp.status in (200, 201), await resp.text()
    made: str = (await resp.json())["data"]["id"]
    return made


async def post_message(chat: Any, conversation_id: str, who: Caller, body: str) -> Any:
    return await chat.post(
        f"/v1/conversations/{conversation_id}/messages", json={"body": body}, headers=who.headers
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10) -> None:
    """Poll a condition of a real system until it holds (bounded; never a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds}s: {what}")


STALLED_WAIT = scaled(10.0)  # bound on each read of a StalledClient


class StalledClient:
    """A WebSocket client that stops reading after the handshake, with a tiny receive
    buffer: the server's writes back up at once, as behind a client that hangs."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.port, self.path, self.token = port, path, token
        self.buffer = b""

    async def handshake(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, ("127.0.0.1", self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: fixup.bearer, {self.token}\r\n\r\n"
        )
        await loop.sock_sendall(self.sock, request.encode())
        while b"\r\n\r\n" not in self.buffer:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), STALLED_WAIT)
            assert chunk, "closed during the handshake"
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    async def frames_until_close(self) -> tuple[int, int]:
        """Read everything now: (text frames before the close, the close code)."""
        loop, texts = asyncio.get_running_loop(), 0
        while True:
            frame = self._frame()
            if frame is None:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), STALLED_WAIT)
                assert chunk, "the connection ended without a close frame"
                self.buffer += chunk
                continue
            opcode, payload = frame
            if opcode == 0x8:
                return texts, struct.unpack("!H", payload[:2])[0]
            texts += opcode == 0x1

    def _frame(self) -> tuple[int, bytes] | None:
        data = self.buffer
        if len(data) < 2:
            return None
        opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + length:
            return None
        self.buffer = data[offset + length :]
        return opcode, data[offset : offset + length]

    def close(self) -> None:
        self.sock.close()
