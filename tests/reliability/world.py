"""The things the reliability tests act on, made through the running services' own APIs:
callers with tokens, a catalog service a provider offers, and orders, offers and jobs in
every state (the IDOR sweep, the outbox and shutdown tests)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from lib.auth.principal import Role
from tests.integration.orders_support import offer_body, order_body
from tests.reliability.stack import bearer


@dataclass(frozen=True)
class Actor:
    id: uuid.UUID
    role: Role
    headers: dict[str, str]


def actor(role: Role, user_id: uuid.UUID | None = None) -> Actor:
    """A caller with a valid, verified token (a users row is the caller's business)."""
    user_id = user_id or uuid.uuid4()
    return Actor(user_id, role, bearer(role, user_id))


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    who: Actor | None,
    expect: int,
    body: Any = None,
    **headers: str,
) -> Any:
    """One request; asserts the status and returns the JSON body (None when empty)."""
    sent = {**(who.headers if who else {}), **headers}
    async with http.request(method, url, json=body, headers=sent) as resp:
        text = await resp.text()
        assert resp.status == expect, (method, url, resp.status, text[:400])
        return await resp.json(content_type=None) if text else None


async def catalog_service(http: aiohttp.ClientSession, catalog_url: str, *providers: Actor) -> str:
    """A new service (type -> category -> subcategory -> service) offered by `providers`."""
    admin = actor(Role.ADMIN)
    tag = uuid.uuid4().hex[:8]
    kind = await call(http, "POST", f"{catalog_url}/v1/category-types", admin, 201,
                      {"name": f"Type {tag}"})  # fmt: skip
    category = await call(http, "POST", f"{catalog_url}/v1/categories", admin, 201,
                          {"type_id": kind["data"]["id"], "name": "Plumbing"})  # fmt: skip
    sub = await call(http, "POST", f"{catalog_url}/v1/subcategories", admin, 201,
                     {"category_id": category["data"]["id"], "name": "Leaks"})  # fmt: skip
    service = await call(
        http, "POST", f"{catalog_url}/v1/services", admin, 201,
        {"subcategory_id": sub["data"]["id"], "name": "Fix a leak", "base_price": "80.50"},
    )  # fmt: skip
    service_id: str = service["data"]["id"]
    for provider in providers:
        url = f"{catalog_url}/v1/providers/{provider.id}/services/{service_id}"
        await call(http, "PUT", url, admin, 204)
    return service_id


@dataclass
class Orders:
    """The order -> offer -> job steps of one customer and one provider on one service."""

    http: aiohttp.ClientSession
    url: str
    service_id: str
    customer: Actor
    provider: Actor

    async def order(self) -> dict[str, Any]:
        made = await call(self.http, "POST", f"{self.url}/v1/orders", self.customer, 201,
                          order_body(self.service_id))  # fmt: skip
        return dict(made["data"])

    async def offer(self, order_id: str) -> dict[str, Any]:
        made = await call(self.http, "POST", f"{self.url}/v1/orders/{order_id}/offers",
                          self.provider, 201, offer_body())  # fmt: skip
        return dict(made["data"])

    async def job(self, status: str = "PENDING") -> dict[str, Any]:
        """A job in `status` (PENDING, IN_PROGRESS or COMPLETED), with its order and offer."""
        order = await self.order()
        offer = await self.offer(order["id"])
        accept = f"{self.url}/v1/orders/{order['id']}/offers/{offer['id']}/accept"
        job = dict((await call(self.http, "POST", accept, self.customer, 200))["data"])
        if status in {"IN_PROGRESS", "COMPLETED"}:
            await self.move(job["id"], "start")
        if status == "COMPLETED":
            await self.move(job["id"], "complete")
        return {**job, "order_id": order["id"], "offer_id": offer["id"], "status": status}

    async def jobs(self, count: int, status: str = "PENDING") -> list[str]:
        """The ids of `count` jobs in `status`, made four at a time."""
        made: list[str] = []
        while len(made) < count:
            batch = [self.job(status) for _ in range(min(4, count - len(made)))]
            made += [job["id"] for job in await asyncio.gather(*batch)]
        return made

    async def move(self, job_id: str, step: str, expect: int = 200) -> Any:
        return await call(self.http, "POST", f"{self.url}/v1/jobs/{job_id}/{step}",
                          self.provider, expect)  # fmt: skip


@dataclass
class Talk:
    """A conversation of the chat service between an order's customer and a provider with
    an offer on it, and the messages they post (through chat's own API)."""

    http: aiohttp.ClientSession
    url: str
    id: str
    order_id: str
    customer: Actor
    provider: Actor

    async def post(self, who: Actor, body: str, expect: int = 201, **headers: str) -> Any:
        url = f"{self.url}/v1/conversations/{self.id}/messages"
        return await call(self.http, "POST", url, who, expect, {"body": body}, **headers)

    async def messages(self, who: Actor | None = None) -> list[dict[str, Any]]:
        """Every message, oldest first (read back as a participant)."""
        url = f"{self.url}/v1/conversations/{self.id}/messages?limit=1000"
        page = await call(self.http, "GET", url, who or self.customer, 200)
        assert page["meta"]["next_cursor"] is None
        return list(reversed(page["data"]))


async def talk(steps: Orders, chat_url: str, order_id: str | None = None) -> Talk:
    """An order of `steps.customer` (new unless given), an offer on it by `steps.provider`,
    and their conversation, started by the customer."""
    order_id = order_id or (await steps.order())["id"]
    await steps.offer(order_id)
    body = {"order_id": order_id, "provider_id": str(steps.provider.id)}
    made = await call(steps.http, "POST", f"{chat_url}/v1/conversations", steps.customer, 201,
                      body)  # fmt: skip
    return Talk(steps.http, chat_url, made["data"]["id"], order_id, steps.customer, steps.provider)


def ws_url(chat_url: str, conversation_id: str) -> str:
    return f"{chat_url.replace('http://', 'ws://')}/v1/conversations/{conversation_id}/ws"


async def ws_handshake(
    http: aiohttp.ClientSession, url: str, token: str | None, **headers: str
) -> int:
    """The status of a WebSocket handshake offering `fixup.bearer` and `token` (or only
    `headers` when no token): 101 when it opened (the socket is closed again at once)."""
    protocols = ("fixup.bearer", token) if token is not None else ()
    try:
        socket = await http.ws_connect(url, protocols=protocols, headers=headers)
    except aiohttp.WSServerHandshakeError as refused:
        return refused.status
    await socket.close()
    return 101
