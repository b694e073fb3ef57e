"""The catalog service as orders needs it: does a service exist, who offers it.

And is it archived (ADR 0058)? A provider's services include its archived ones."""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.clients.http import JsonHttpClient
from lib.errors import ServiceUnavailable

MAX_PAGE = 1000  # the list limit of docs/api.md


class CatalogClient:
    def __init__(self, http: JsonHttpClient) -> None:
        self.http = http

    async def service_archived(
        self, service_id: uuid.UUID, *, caller: web.Request | None = None
    ) -> bool | None:
        """None on 404 (no such service); on 200 whether it is archived; any other answer
        means catalog cannot tell (503)."""
        reply = await self.http.get(f"/v1/services/{service_id}", caller=caller)
        if reply.status == 200 and isinstance(reply.body, dict):
            return reply.body["data"].get("archived_at") is not None
        if reply.status == 404:
            return None
        raise ServiceUnavailable(f"catalog answered {reply.status}", retry_after=1)

    async def services_of_provider(
        self, provider_id: uuid.UUID, *, caller: web.Request | None = None
    ) -> set[uuid.UUID]:
        """The ids of every service the provider offers (all pages)."""
        offered: set[uuid.UUID] = set()
        page = 1
        while True:
            path = f"/v1/providers/{provider_id}/services?limit={MAX_PAGE}&page={page}"
            reply = await self.http.get(path, caller=caller)
            if reply.status != 200 or not isinstance(reply.body, dict):
                raise ServiceUnavailable(f"catalog answered {reply.status}", retry_after=1)
            offered.update(uuid.UUID(item["id"]) for item in reply.body["data"])
            if page * MAX_PAGE >= int(reply.body["meta"]["total"]):
                return offered
            page += 1
