"""The chat service's resources, opened and closed with the app: the orders client (with a
breaker and a short cache of its answers) and the hub of sockets fed by pub/sub."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from lib.clients.http import dependency_client
from lib.clients.orders import OrderParties, OrdersClient
from lib.http.guards import authenticated
from lib.http.keys import DB, REDIS
from lib.pubsub import make_pubsub
from services.chat.hub import Hub
from services.chat.settings import ChatSettings

CHAT_SETTINGS = web.AppKey("chat_settings", ChatSettings)
ORDERS = web.AppKey("orders", OrdersClient)
PARTIES: web.AppKey[PartiesCache] = web.AppKey("parties")
HUB = web.AppKey("hub", Hub)


class PartiesCache:
    """(caller, order) -> what orders answered, for `ttl` seconds; least recently used out
    first beyond `size`. Per caller: an answer depends on what the caller may see."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl, self.size = ttl, size
        self._items: OrderedDict[tuple[uuid.UUID, uuid.UUID], tuple[float, OrderParties | None]]
        self._items = OrderedDict()

    def get(self, key: tuple[uuid.UUID, uuid.UUID]) -> tuple[bool, OrderParties | None]:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return False, None
        self._items.move_to_end(key)
        return True, item[1]

    def put(self, key: tuple[uuid.UUID, uuid.UUID], value: OrderParties | None) -> None:
        if self.ttl <= 0:
            return
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def orders_ctx(settings: ChatSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        http = dependency_client("orders", settings)
        app[ORDERS] = OrdersClient(http)
        app[PARTIES] = PartiesCache(settings.orders_cache_ttl, settings.orders_cache_size)
        try:
            yield
        finally:
            await http.close()

    return ctx


def hub_ctx(settings: ChatSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pubsub = make_pubsub(
            app[REDIS], service=settings.service, control_channel=f"{settings.channel_prefix}_"
        )
        app[HUB] = Hub(
            pubsub,
            app[DB],
            service=settings.service,
            prefix=settings.channel_prefix,
            fill_batch=settings.fill_batch,
        )
        await pubsub.start()
        try:
            yield
        finally:
            await pubsub.close()

    return ctx


async def order_parties(
    request: web.Request, order_id: uuid.UUID, admits: Callable[[OrderParties | None], bool]
) -> OrderParties | None:
    """What orders says of the order to this caller (cached briefly); 503 when it is down.
    A cached answer that `admits` refuses is asked again: it may predate the order or the
    offer the caller comes for (a customer starting a conversation with a provider whose
    offer is seconds old), and a refusal must not outlive what it was based on."""
    key = (authenticated(request).user_id, order_id)
    cache = request.app[PARTIES]
    found, parties = cache.get(key)
    if not found or not admits(parties):
        parties = await request.app[ORDERS].parties(order_id, caller=request)
        cache.put(key, parties)
    return parties
