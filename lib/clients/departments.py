"""The departments service as the users service needs it: does a department exist?

And is it archived (ADR 0058)?"""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.clients.http import JsonHttpClient
from lib.errors import ServiceUnavailable


class DepartmentsClient:
    def __init__(self, http: JsonHttpClient) -> None:
        self.http = http

    async def archived(
        self, department_id: uuid.UUID, *, caller: web.Request | None = None
    ) -> bool | None:
        """None on 404 (no such department); on 200 whether it is archived; any other answer
        means departments cannot tell (503)."""
        reply = await self.http.get(f"/v1/departments/{department_id}", caller=caller)
        if reply.status == 200 and isinstance(reply.body, dict):
            return reply.body["data"].get("archived_at") is not None
        if reply.status == 404:
            return None
        raise ServiceUnavailable(f"departments answered {reply.status}", retry_after=1)
