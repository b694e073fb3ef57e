"""The users service as the orders service needs it: the caller's display name."""

from __future__ import annotations

import uuid

from aiohttp import web

from lib.clients.http import JsonHttpClient
from lib.errors import DependencyRefused, ServiceUnavailable


class UsersClient:
    def __init__(self, http: JsonHttpClient) -> None:
        self.http = http

    async def display_name(
        self, user_id: uuid.UUID, *, caller: web.Request | None = None
    ) -> str | None:
        """ "First Last" of the user (read with the caller's token), None when users does not
        show it to the caller; raises ServiceUnavailable / CircuitOpen when users is down."""
        try:
            reply = await self.http.get(f"/v1/users/{user_id}", caller=caller)
        except DependencyRefused:  # the name is optional: an order does not fail for it
            return None
        if 400 <= reply.status < 500:  # not shown to this caller: no name
            return None
        if reply.status != 200 or not isinstance(reply.body, dict):
            raise ServiceUnavailable(f"users answered {reply.status}", retry_after=1)
        user = reply.body["data"]
        name = f"{user.get('first_name') or ''} {user.get('last_name') or ''}".strip()
        return name[:201] or None
