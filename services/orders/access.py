"""Who sees an order (docs/api.md, "orders"): its customer; a provider when it is OPEN and
of a service they offer (asked of catalog, with no connection held), or when they have an
offer or a job on it; an ADMIN. Anyone else gets 404, never 403."""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.auth.principal import Principal, Role
from lib.errors import NotFound
from lib.http.guards import authenticated
from lib.http.keys import DB
from services.orders.db import models
from services.orders.db import orders as q
from services.orders.deps import CATALOG


def no_such_order() -> NotFound:
    return NotFound("no such order")


async def offered_services(request: web.Request, principal: Principal) -> set[uuid.UUID]:
    """The services a PROVIDER offers (catalog); nobody else offers any."""
    if principal.role is not Role.PROVIDER:
        return set()
    return await request.app[CATALOG].services_of_provider(principal.user_id, caller=request)


async def visible_order(request: web.Request, order_id: uuid.UUID) -> models.Order:
    """The order if the caller may see it, else 404."""
    principal = authenticated(request)
    async with request.app[DB].acquire() as conn:
        order = await q.get_order(conn, id=order_id)
        involved = (
            order is not None
            and principal.role is Role.PROVIDER
            and bool(
                await q.provider_involved(conn, order_id=order_id, provider_id=principal.user_id)
            )
        )
    if order is None:
        raise no_such_order()
    if principal.role is Role.ADMIN or order.customer_id == principal.user_id or involved:
        return order
    if order.status is models.OrderStatus.OPEN and order.service_id in await offered_services(
        request, principal
    ):
        return order
    raise no_such_order()
