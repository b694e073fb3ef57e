"""The catalog service: settings and the app factory."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web
from sqlc_fixup_runtime import PgConn

from lib.config import load_settings
from lib.erasure import Then, erasure_ctx
from lib.http.app import create_app as base_app
from services.catalog import export
from services.catalog.db import audit, erasures
from services.catalog.db import services as services_q
from services.catalog.handlers import routes
from services.catalog.settings import SERVICE, CatalogSettings

TITLE = "Fixup catalog"


def create_app(settings: CatalogSettings | None = None) -> web.Application:
    settings = settings or load_settings(CatalogSettings, SERVICE)
    consumer = erasure_ctx(settings, erasures, erase, stop_within=settings.shutdown_timeout)
    app = base_app(settings, routes=routes, title=TITLE, audit=audit, cleanup=(consumer,))
    app.add_routes(export.routes)
    return app


async def erase(app: web.Application, conn: PgConn, user_id: UUID) -> Then | None:
    """A person's erasure here (docs/operations.md "Data retention"): as a provider they
    offer nothing any more; the catalog holds nothing else about people."""
    await services_q.erase_provider(conn, provider_id=user_id)
    return None
