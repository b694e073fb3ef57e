"""The orders service's clients of other services, opened and closed with the app: catalog
(required: down -> 503) and users (optional: down -> the order has no name snapshot),
each with one shared session and its own circuit breaker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from prometheus_client import Counter

from lib.clients.catalog import CatalogClient
from lib.clients.http import dependency_client
from lib.clients.users import UsersClient
from lib.errors import CircuitOpen, ServiceUnavailable
from lib.logging import get_logger
from services.orders.settings import SERVICE, OrdersSettings

log = get_logger("services.orders")
CATALOG: web.AppKey[CatalogClient] = web.AppKey("catalog")
USERS: web.AppKey[UsersClient] = web.AppKey("users")
NAMELESS_ORDERS = Counter(
    "orders_created_without_name_total",
    "Orders created without the customer's name because the users service was unreachable.",
    ["service"],
)


def clients_ctx(settings: OrdersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        catalog = dependency_client("catalog", settings)
        users = dependency_client("users", settings)
        app[CATALOG], app[USERS] = CatalogClient(catalog), UsersClient(users)
        try:
            yield
        finally:
            await catalog.close()
            await users.close()

    return ctx


async def customer_name(request: web.Request, user_id: uuid.UUID) -> str | None:
    """The customer's name from users, or None (logged and counted) when users is down."""
    try:
        return await request.app[USERS].display_name(user_id, caller=request)
    except (ServiceUnavailable, CircuitOpen) as exc:
        log.warning("customer_name_unavailable", error=exc.detail)
        NAMELESS_ORDERS.labels(SERVICE).inc()
        return None
