"""The chat service: settings and the app factory."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web
from sqlc_fixup_runtime import PgConn

from lib.config import load_settings
from lib.erasure import Then, erasure_ctx
from lib.http.app import create_app as base_app
from services.chat import export, facts, ws
from services.chat.db import audit, erasures
from services.chat.db import chat as chat_q
from services.chat.deps import CHAT_SETTINGS, hub_ctx, orders_ctx
from services.chat.handlers import routes
from services.chat.settings import SERVICE, ChatSettings

TITLE = "Fixup chat"


def create_app(settings: ChatSettings | None = None) -> web.Application:
    settings = settings or load_settings(ChatSettings, SERVICE)
    consumer = erasure_ctx(settings, erasures, erase, stop_within=settings.shutdown_timeout)
    cleanup = (orders_ctx(settings), hub_ctx(settings), consumer)
    app = base_app(settings, routes=routes, title=TITLE, audit=audit, cleanup=cleanup)
    app[CHAT_SETTINGS] = settings
    app[ws.SOCKETS] = set()
    # the WebSocket delivery SLO's errors (rules/slo.yml): at 0 from start-up
    ws.SOCKETS_CLOSED.labels(settings.service, "slow")
    app.cleanup_ctx.append(ws.revocation_sweep)
    app.on_shutdown.append(ws.close_all)
    app.add_routes(ws.routes)
    app.add_routes(export.routes)
    for counter in facts.ALL:
        counter.start(settings.service)
    return app


async def erase(app: web.Application, conn: PgConn, user_id: UUID) -> Then | None:
    """A person's erasure here (docs/operations.md "Data retention"): the words of every
    message they wrote; the conversations and the other party's messages stay."""
    await chat_q.erase_author_messages(conn, user_id=user_id)
    return None
