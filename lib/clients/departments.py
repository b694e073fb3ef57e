"""The departments service as the users service needs it: does a department exist?"""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.clients.http import JsonHttpClient
from lib.errors import ServiceUnavailable


class DepartmentsClient:
    def __init__(self, http: JsonHttpClient) -> None:
        self.http = http

    async def exists(self, department_id: uuid.UUID, *, caller: web.Request | None = None) -> bool:
        """True on 200, False on 404; any other answer means departments cannot tell (503)."""
        reply = await self.http.get(f"/v1/departments/{department_id}", caller=caller)
        if reply.status == 200:
            return True
        if reply.status == 404:
            return False
        raise ServiceUnavailable(f"departments answered {reply.status}", retry_after=1)

    async def close(self) -> None:
        await self.http.close()
