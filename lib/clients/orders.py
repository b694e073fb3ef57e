"""The orders service as chat needs it: an order's parties, as the caller may see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from lib.clients.http import JsonHttpClient
from lib.errors import ServiceUnavailable

MAX_PAGE = 1000  # the list limit of docs/api.md


@dataclass(frozen=True, slots=True)
class OrderParties:
    customer_id: uuid.UUID
    providers: frozenset[uuid.UUID]  # providers with an offer the caller may see


class OrdersClient:
    def __init__(self, http: JsonHttpClient) -> None:
        self.http = http

    async def parties(
        self, order_id: uuid.UUID, *, caller: web.Request | None = None
    ) -> OrderParties | None:
        """None when the caller may not see the order (orders answers 404); any answer but
        200 or 404 means orders cannot tell (503)."""
        reply = await self.http.get(f"/v1/orders/{order_id}", caller=caller)
        if reply.status == 404:
            return None
        if reply.status != 200 or not isinstance(reply.body, dict):
            raise ServiceUnavailable(f"orders answered {reply.status}", retry_after=1)
        customer_id = uuid.UUID(reply.body["data"]["customer_id"])
        providers: set[uuid.UUID] = set()
        page = 1
        while True:
            path = f"/v1/orders/{order_id}/offers?limit={MAX_PAGE}&page={page}"
            reply = await self.http.get(path, caller=caller)
            if reply.status == 404:
                return None
            if reply.status != 200 or not isinstance(reply.body, dict):
                raise ServiceUnavailable(f"orders answered {reply.status}", retry_after=1)
            providers.update(uuid.UUID(item["provider_id"]) for item in reply.body["data"])
            if page * MAX_PAGE >= int(reply.body["meta"]["total"]):
                return OrderParties(customer_id, frozenset(providers))
            page += 1
