"""The orders service: settings and the app factory."""

from __future__ import annotations

from aiohttp import web

from lib.config import load_settings
from lib.http.app import create_app as base_app
from services.orders import export, facts, jobs, offers
from services.orders.deps import clients_ctx
from services.orders.handlers import routes
from services.orders.relay import relay_ctx
from services.orders.settings import SERVICE, OrdersSettings

TITLE = "Fixup orders"


def create_app(settings: OrdersSettings | None = None) -> web.Application:
    settings = settings or load_settings(OrdersSettings, SERVICE)
    app = base_app(
        settings, routes=routes, title=TITLE, cleanup=(clients_ctx(settings), relay_ctx(settings))
    )
    app.add_routes(offers.routes)
    app.add_routes(jobs.routes)
    app.add_routes(export.routes)
    for counter in facts.ALL:
        counter.start(SERVICE)  # the label its handlers count with
    return app
