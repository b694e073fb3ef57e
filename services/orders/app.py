"""The orders service: settings and the app factory."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web
from sqlc_fixup_runtime import PgConn

from lib.config import load_settings
from lib.erasure import Then, erasure_ctx
from lib.http.app import create_app as base_app
from services.orders import export, facts, jobs, offers
from services.orders.db import audit, erasures
from services.orders.db import offers as offers_q
from services.orders.db import orders as orders_q
from services.orders.db import reviews as reviews_q
from services.orders.deps import clients_ctx
from services.orders.handlers import routes
from services.orders.relay import relay_ctx
from services.orders.settings import SERVICE, OrdersSettings

TITLE = "Fixup orders"


def create_app(settings: OrdersSettings | None = None) -> web.Application:
    settings = settings or load_settings(OrdersSettings, SERVICE)
    consumer = erasure_ctx(settings, erasures, erase, stop_within=settings.shutdown_timeout)
    cleanup = (clients_ctx(settings), relay_ctx(settings), consumer)
    app = base_app(settings, routes=routes, title=TITLE, audit=audit, cleanup=cleanup)
    app.add_routes(offers.routes)
    app.add_routes(jobs.routes)
    app.add_routes(export.routes)
    for counter in facts.ALL:
        counter.start(SERVICE)  # the label its handlers count with
    return app


async def erase(app: web.Application, conn: PgConn, user_id: UUID) -> Then | None:
    """A person's erasure here (docs/operations.md "Data retention"): orders, offers, jobs
    and reviews stay with their amounts and ratings (accounting); the person's words go:
    their orders' description, address and name, their offers' messages, their reviews'
    comments."""
    await orders_q.erase_customer_orders(conn, user_id=user_id)
    await offers_q.erase_provider_offers(conn, user_id=user_id)
    await reviews_q.erase_customer_reviews(conn, user_id=user_id)
    return None
