"""A person's part of their data export (lib/http/export.py, ADR 0059): the orders they
placed, the offers they made, the jobs and reviews they are a party to."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from lib.http import export
from lib.http.jsonio import data
from lib.http.keys import DB
from lib.http.openapi import operation
from services.orders.db import export as q
from services.orders.db import models

routes = web.RouteTableDef()


@dataclass(frozen=True)
class OrdersExport:
    """Every row of orders' tables that names the person, one list per table."""

    orders: list[models.Order]
    offers: list[models.Offer]
    jobs: list[models.Job]
    reviews: list[models.Review]


@routes.get(export.PATH)
@operation(
    "Export a person's orders data",
    tags=["export"],
    response=OrdersExport,
    errors=export.ERRORS,
    description=export.DESCRIPTION,
    **export.ACCESS,
)
async def export_user(request: web.Request) -> web.Response:
    _, user_id = export.subject(request)
    limit = export.row_limit(request)
    async with request.app[DB].acquire() as conn:
        orders = await q.export_orders(conn, user_id=user_id, row_limit=limit)
        offers = await q.export_offers(conn, user_id=user_id, row_limit=limit)
        jobs = await q.export_jobs(conn, user_id=user_id, row_limit=limit)
        reviews = await q.export_reviews(conn, user_id=user_id, row_limit=limit)
    part = OrdersExport(
        orders=export.bounded(request, "orders", orders),
        offers=export.bounded(request, "offers", offers),
        jobs=export.bounded(request, "jobs", jobs),
        reviews=export.bounded(request, "reviews", reviews),
    )
    return data(part)
