"""The departments service: settings and the app factory."""

from __future__ import annotations

from aiohttp import web

from lib.config import load_settings
from lib.http.app import create_app as base_app
from services.departments.db import audit
from services.departments.handlers import routes
from services.departments.settings import SERVICE, DepartmentsSettings

TITLE = "Fixup departments"


def create_app(settings: DepartmentsSettings | None = None) -> web.Application:
    settings = settings or load_settings(DepartmentsSettings, SERVICE)
    return base_app(settings, routes=routes, title=TITLE, audit=audit)
