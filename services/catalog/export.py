"""A provider's part of their data export (lib/http/export.py, ADR 0059): the services
they offer."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from lib.http import export
from lib.http.jsonio import data
from lib.http.keys import DB
from lib.http.openapi import operation
from services.catalog.db import export as q
from services.catalog.db import models

routes = web.RouteTableDef()


@dataclass(frozen=True)
class CatalogExport:
    """Every row of catalog's tables that names the person, one list per table."""

    provider_services: list[models.ProviderService]


@routes.get(export.PATH)
@operation(
    "Export a person's catalog data",
    tags=["export"],
    response=CatalogExport,
    errors=export.ERRORS,
    description=export.DESCRIPTION,
    **export.ACCESS,
)
async def export_user(request: web.Request) -> web.Response:
    _, user_id = export.subject(request)
    async with request.app[DB].acquire() as conn:
        rows = await q.export_provider_services(
            conn, user_id=user_id, row_limit=export.row_limit(request)
        )
    return data(CatalogExport(provider_services=export.bounded(request, "provider_services", rows)))
