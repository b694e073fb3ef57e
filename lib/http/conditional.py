"""Conditional reads (RFC 9110 If-None-Match -> 304; ADR 0019).

A GET route declares how to read its current tag with `@operation(conditional=stamp)`: for
a list, the version stamps of the tables it reads (table_versions, bumped by the writes in
their own transaction), for an item, the row's version. The innermost middleware (after the
limits and auth) answers its 304: the route's declared access is checked first
(401/403 as the handler would answer), then a request whose If-None-Match holds the current
tag gets its 304 from that one cheap read, without the page query and without serializing a
row. A 304 spends the rate-limit budget a 200 spends (one token; ADR 0026). Any other
request goes on to the handler, which reuses the tag read here (request[TAG]) or reads it
itself BEFORE the data or in the same statement (departments: with the total), so a tag
never names data older than itself: a read racing a write can answer a newer body under the
older tag (the next request just gets a 200), never a 304 for a stale one. The stamp lives
in the database, so every replica sees every write.

A list's stamp is a `TablesStamp`: its conditional GETs share their reads (ADR 0038). Each
waits for a read that STARTED after it arrived, so it sees every write committed before it
arrived (no stale 304), while one read answers every request that arrived during the
previous one: under load a 304 costs a fraction of a round trip, not one.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from lib.http.keys import DB
from lib.http.openapi import declared

TAG: web.RequestKey[str | None] = web.RequestKey("conditional_tag")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class VersionRead(Protocol):
    """A service's generated `tables_version` query: the sum of the tables' stamps."""

    def __call__(self, conn: Any, *, names: list[str]) -> Awaitable[int | None]: ...


class SharedRead:
    """One read at a time, shared: a caller gets the result of a read that started after it
    called (so it is as fresh as a read of its own), and every caller that arrives while a
    read runs shares the next one. The read runs in a task of its own context: no request's
    connection scope (lib.db.scope), and a caller that goes away cancels nobody's read."""

    def __init__(self, read: Callable[[], Awaitable[int | None]]) -> None:
        self._read = read
        self._next: asyncio.Future[int | None] | None = None  # the callers of the next read
        self._running: asyncio.Task[None] | None = None

    async def get(self) -> int | None:
        batch = self._next
        if batch is None:
            batch = self._next = asyncio.get_running_loop().create_future()
            if self._running is None:
                self._start()
        return await asyncio.shield(batch)

    def _start(self) -> None:
        self._running = asyncio.create_task(self._run(), context=contextvars.Context())

    async def _run(self) -> None:
        # every caller until the read begins shares it: they all called before it started
        batch, self._next = self._next, None
        assert batch is not None
        try:
            batch.set_result(await self._read())
        except Exception as exc:  # every caller of this read gets its error
            batch.set_exception(exc)
        finally:
            self._running = None
            if self._next is not None:
                self._start()


class TablesStamp:
    """A list's stamp: the version stamps of the tables it reads (`read`: the service's
    `tables_version`). Called as a `Stamp` on the handler's connection; `shared` reads it
    through one `SharedRead` per database, for the 304s of `answer_unchanged`."""

    def __init__(self, read: VersionRead, *tables: str) -> None:
        self.read = read
        self.tables = list(tables)
        self._shared: weakref.WeakKeyDictionary[Any, SharedRead] = weakref.WeakKeyDictionary()

    async def __call__(self, request: web.Request, conn: Any) -> str:
        return list_tag(await self.read(conn, names=self.tables) or 0, request)

    async def shared(self, request: web.Request) -> str:
        database = request.app[DB]
        reader = self._shared.get(database)
        if reader is None:

            async def read() -> int | None:
                async with database.acquire() as conn:
                    return await self.read(conn, names=self.tables)

            reader = self._shared[database] = SharedRead(read)
        return list_tag(await reader.get() or 0, request)


def list_tag(version: int, request: web.Request) -> str:
    """A list's tag: the tables' version and the query (each URL is its own resource)."""
    return f'"{version:x}.{zlib.crc32(request.query_string.encode()):x}"'


def matches(header: str, tag: str) -> bool:
    """If-None-Match's weak comparison: `*`, or any listed tag equal to `tag` (W/ ignored)."""
    if header == tag:  # what a client sends back: the one tag it was given
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def not_modified(tag: str) -> web.Response:
    return web.Response(status=304, headers={"ETag": tag})


def check_conditional_routes(app: web.Application) -> None:
    """Refuse to start with a conditional route that is not a GET. Raises ValueError naming
    the route. (A conditional route whose `@operation` is wrapped again is not `declared`:
    it never answers a 304, so no 304 skips its access rule.)"""
    for route in app.router.routes():
        operation = declared(route.handler)
        if operation is None or operation.conditional is None:
            continue
        if route.method not in ("GET", "HEAD"):
            where = route.resource.canonical if route.resource is not None else "?"
            raise ValueError(f"{route.method} {where}: a conditional route is a GET")


@web.middleware
async def not_modified_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A conditional GET whose tag is current: its 304, else on to the handler (with the
    tag read, request[TAG]). Innermost, after the limits and auth: a 304 spends what a 200
    spends, and the route's access rule is checked first (401 without a token, 403 for a
    role not declared), so a 304 tells no caller what the route would refuse to show them.
    Any other request costs a header lookup."""
    if "If-None-Match" not in request.headers or request.method != "GET":
        return await handler(request)
    operation = declared(request.match_info.handler)
    stamp = None if operation is None else operation.conditional
    if operation is None or stamp is None:
        return await handler(request)
    await operation.access.enforce(request)
    header = request.headers["If-None-Match"]
    if isinstance(stamp, TablesStamp):
        tag: str | None = await stamp.shared(request)
    else:
        async with request.app[DB].acquire() as conn:
            tag = await stamp(request, conn)
    if tag is not None and matches(header, tag):
        return not_modified(tag)
    request[TAG] = tag  # only a request that goes on to the handler needs it
    return await handler(request)
