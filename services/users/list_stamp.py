"""The users list's stamp (ADR 0056): what its page shows comes from three places, and the
stamp moves with each.

- the users table (`table_versions`, bumped by every write in its transaction; the
  statistics summary moves only with it);
- the points service's balances (`GetPointsVersion`), read once for the requests that
  arrive together, like the table's (a `SharedRead`);
- the window its picture URLs were signed in: half their lifetime, so a 304 or a kept page
  never hands out a URL with less than half its lifetime left.

While points cannot answer, the state is unknown: no 304 and no kept page, and the handler
renders the degraded page (points null; never kept) without asking points again, so a
request waits one points deadline at most.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Hashable

from aiohttp import web

from lib.http.conditional import SharedRead, TablesStamp, list_tag
from lib.http.stamps import ListStamp
from services.users.db import table_versions
from services.users.pictures import STORAGE
from services.users.points import POINTS, POINTS_DOWN, PointsLookup, degraded


class UsersListStamp(ListStamp):
    def __init__(self) -> None:
        self.users = TablesStamp(table_versions.tables_version, "users")
        self._points: weakref.WeakKeyDictionary[PointsLookup, SharedRead] = (
            weakref.WeakKeyDictionary()
        )

    async def state(self, request: web.Request) -> tuple[int, int, int] | None:
        lookup = request.app[POINTS]
        if lookup is None:
            return None
        users = await self.users.state(request)
        reader = self._points.get(lookup)
        if reader is None:  # bounded by the points client's own timeout
            reader = self._points[lookup] = SharedRead(lookup.get_points_version)
        try:
            points = await reader.get() or 0
        except Exception as exc:  # points is down: the page is degraded, at once
            degraded(exc)
            request[POINTS_DOWN] = True
            return None
        window = max(1, request.app[STORAGE].ttl // 2)
        return users, points, int(time.time()) // window

    def tag(self, state: Hashable, request: web.Request) -> str:
        assert isinstance(state, tuple)
        return list_tag(request, *state)
