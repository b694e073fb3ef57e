"""The chat service: settings and the app factory."""

from __future__ import annotations

from aiohttp import web

from lib.config import load_settings
from lib.http.app import create_app as base_app
from services.chat import export, facts, ws
from services.chat.deps import CHAT_SETTINGS, hub_ctx, orders_ctx
from services.chat.handlers import routes
from services.chat.settings import SERVICE, ChatSettings

TITLE = "Fixup chat"


def create_app(settings: ChatSettings | None = None) -> web.Application:
    settings = settings or load_settings(ChatSettings, SERVICE)
    app = base_app(
        settings, routes=routes, title=TITLE, cleanup=(orders_ctx(settings), hub_ctx(settings))
    )
    app[CHAT_SETTINGS] = settings
    app[ws.SOCKETS] = set()
    # the WebSocket delivery SLO's errors (lib/slo.py): at 0 from start-up
    ws.SOCKETS_CLOSED.labels(settings.service, "slow")
    app.cleanup_ctx.append(ws.revocation_sweep)
    app.on_shutdown.append(ws.close_all)
    app.add_routes(ws.routes)
    app.add_routes(export.routes)
    for counter in facts.ALL:
        counter.start(settings.service)
    return app
