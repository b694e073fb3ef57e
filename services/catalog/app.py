"""The catalog service: settings and the app factory."""

from __future__ import annotations

from aiohttp import web

from lib.config import load_settings
from lib.http.app import create_app as base_app
from services.catalog import export
from services.catalog.handlers import routes
from services.catalog.settings import SERVICE, CatalogSettings

TITLE = "Fixup catalog"


def create_app(settings: CatalogSettings | None = None) -> web.Application:
    settings = settings or load_settings(CatalogSettings, SERVICE)
    app = base_app(settings, routes=routes, title=TITLE)
    app.add_routes(export.routes)
    return app
