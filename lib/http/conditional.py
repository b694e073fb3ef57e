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
previous one: under load a 304 costs a fraction of a round trip, not one. A caller waits for
the shared read at most the pool's acquire timeout, then gets the pool's 503: a frozen
database answers it as fast as a full pool would, not after the stuck read's command timeout.

The page cache (ADR 0056, PAGE_CACHE_BYTES; 0: off) answers a conditional GET without
If-None-Match, or with a tag that is not current, from the body rendered for an identical
earlier request (the same path, the same query parameters in any order, the same
visibility: the caller's role and id on a route that declares roles, no one on a public
route) when that body was rendered under the stamp read now: after the same stamp read as
the 304's, so it sees every write committed before the request, as the handler would. A
moved stamp is a miss; the handler's 200 replaces the entry. Each app keeps its own cache in
its process memory, bounded in bytes (an LRU): a restart loses nothing but warmth.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from lib.db.pool import PoolExhausted
from lib.http.keys import DB, principal_of
from lib.http.openapi import Operation, declared
from lib.http.stamps import ListStamp
from lib.metrics import PAGE_CACHE_BYTES, PAGE_CACHE_EVICTIONS, PAGE_CACHE_HITS, PAGE_CACHE_MISSES

TAG: web.RequestKey[str | None] = web.RequestKey("conditional_tag")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class VersionRead(Protocol):
    """A service's generated `tables_version` query: the sum of the tables' stamps."""

    def __call__(self, conn: Any, *, names: list[str]) -> Awaitable[int | None]: ...


class SharedRead:
    """One read at a time, shared: a caller gets the result of a read that started after it
    called (so it is as fresh as a read of its own), and every caller that arrives while a
    read runs shares the next one. The read runs in a task of its own context: no request's
    connection scope (lib.db.scope), and a caller that goes away cancels nobody's read.

    A caller waits at most `timeout` seconds (the pool's acquire timeout; None: no bound),
    then gets the pool's `PoolExhausted` (503, Retry-After) as if it had waited for a
    connection, while the read goes on for the others: on a frozen database nobody queues
    behind a read stuck until its command timeout."""

    def __init__(
        self, read: Callable[[], Awaitable[int | None]], timeout: float | None = None
    ) -> None:
        self._read = read
        self.timeout = timeout
        self._next: asyncio.Future[int | None] | None = None  # the callers of the next read
        self._running: asyncio.Task[None] | None = None

    async def get(self) -> int | None:
        batch = self._next
        if batch is None:
            batch = self._next = asyncio.get_running_loop().create_future()
            if self._running is None:
                self._start()
        try:
            async with asyncio.timeout(self.timeout) as bound:
                return await asyncio.shield(batch)  # giving up cancels the shield, not the read
        except TimeoutError:
            if not bound.expired():  # the read's own error
                raise
            raise PoolExhausted(
                f"the database stayed busy for {self.timeout:g} s (the shared stamp read)"
            ) from None

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


class TablesStamp(ListStamp):
    """The stamp of a list of one database's tables: their version stamps (`read`: the
    service's `tables_version`), read through one `SharedRead` per database, or called as a
    `Stamp` on the handler's own connection."""

    def __init__(self, read: VersionRead, *tables: str) -> None:
        self.read = read
        self.tables = list(tables)
        self._shared: weakref.WeakKeyDictionary[Any, SharedRead] = weakref.WeakKeyDictionary()

    async def __call__(self, request: web.Request, conn: Any) -> str:
        return list_tag(request, await self.read(conn, names=self.tables) or 0)

    def tag(self, state: Hashable, request: web.Request) -> str:
        assert isinstance(state, int)
        return list_tag(request, state)

    async def state(self, request: web.Request) -> int:
        """The tables' version, read through the database's `SharedRead`."""
        database = request.app[DB]
        reader = self._shared.get(database)
        if reader is None:

            async def read() -> int | None:
                async with database.acquire() as conn:
                    return await self.read(conn, names=self.tables)

            reader = self._shared[database] = SharedRead(read, database.acquire_timeout)
        return await reader.get() or 0


def list_tag(request: web.Request, *versions: int) -> str:
    """A list's tag: the versions of what it shows and the query (each URL is its own
    resource)."""
    shown = ".".join(f"{version:x}" for version in versions)
    return f'"{shown}.{zlib.crc32(request.query_string.encode()):x}"'


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
    """A conditional GET whose tag is current: its 304; else, with the page cache on, the
    body an identical request rendered under the same stamp (ADR 0056); else on to the
    handler (with the tag read, request[TAG]), whose 200 the cache keeps. Innermost, after
    the limits and auth: a 304 or a kept page spends what a 200 spends, and the route's
    access rule is checked first (401 without a token, 403 for a role not declared), so
    neither tells a caller what the route would refuse to show them. With the cache off,
    any GET without If-None-Match costs a header lookup."""
    if request.method != "GET":
        return await handler(request)
    header = request.headers.get("If-None-Match")
    cache = request.app.get(PAGE_CACHE)
    if header is None and cache is None:
        return await handler(request)
    operation = declared(request.match_info.handler)
    stamp = None if operation is None else operation.conditional
    if operation is None or stamp is None:
        return await handler(request)
    await operation.access.enforce(request)
    state: Hashable
    if isinstance(stamp, ListStamp):
        state = await stamp.state(request)
        tag: str | None = None if state is None else stamp.tag(state, request)
    else:
        async with request.app[DB].acquire() as conn:
            tag = state = await stamp(request, conn)
    if tag is not None and header is not None and matches(header, tag):
        return not_modified(tag)
    request[TAG] = tag  # only a request that goes on to the handler needs it
    if cache is None or tag is None or (key := page_key(request, operation)) is None:
        return await handler(request)
    kept = cache.get(key, state)
    if kept is not None:
        return kept.response(tag)
    response = await handler(request)
    cache.keep(key, state, tag, response)
    return response


# --- the page cache (ADR 0056) ----------------------------------------------------------

# what an entry costs beyond its body, headers and key text: the key tuple, the entry and
# the OrderedDict's link (measured with sys.getsizeof, rounded up)
ENTRY_OVERHEAD = 512


def page_key(request: web.Request, operation: Operation) -> Hashable | None:
    """The path, its query parameters in any order, and who may see the answer: no one on
    a public route (it answers every caller alike: tests/integration/test_access_matrix.py;
    a parameter only some roles may give, an archiving list's `state`, was refused to the
    others before this, by the route's access), the caller's role and id on one that
    declares roles. None: not kept (no caller known)."""
    query = tuple(sorted(request.query.items()))
    if operation.access.roles is None:
        return (request.path, query, None)
    principal = principal_of(request)
    if principal is None:
        return None
    return (request.path, query, (str(principal.role), str(principal.user_id)))


def key_size(key: Hashable) -> int:
    """The text a key holds, in bytes (what it costs beyond ENTRY_OVERHEAD)."""
    if isinstance(key, str):
        return len(key.encode())
    if isinstance(key, tuple):
        return sum(key_size(part) for part in key)
    return 8


@dataclass(frozen=True, slots=True)
class Page:
    """A 200 as the handler rendered it under `state` (the stamp read before its data)."""

    state: Hashable
    body: bytes
    headers: tuple[tuple[str, str], ...]  # but ETag: the request's own tag is sent
    size: int

    def response(self, tag: str) -> web.Response:
        response = web.Response(body=self.body)
        for name, value in self.headers:
            response.headers.add(name, value)
        response.headers["ETag"] = tag
        return response


class PageCache:
    """The last pages answered, least recently used first, at most `limit` bytes in all
    (each entry: body, headers, key text and ENTRY_OVERHEAD). A page larger than the
    whole bound is not kept. Hits, misses and evictions are counted in /metrics."""

    def __init__(self, limit: int, service: str = "") -> None:
        if limit <= 0:
            raise ValueError("a page cache holds at least one byte (PAGE_CACHE_BYTES=0: off)")
        self.limit = limit
        self.size = 0
        self._pages: OrderedDict[Hashable, Page] = OrderedDict()
        self._hits = PAGE_CACHE_HITS.labels(service)
        self._misses = PAGE_CACHE_MISSES.labels(service)
        self._evictions = PAGE_CACHE_EVICTIONS.labels(service)
        self._bytes = PAGE_CACHE_BYTES.labels(service)

    def __len__(self) -> int:
        return len(self._pages)

    @property
    def pages(self) -> tuple[Page, ...]:
        """The pages held, least recently used first."""
        return tuple(self._pages.values())

    def get(self, key: Hashable, state: Hashable) -> Page | None:
        """The page kept for `key` when it was rendered under `state`, else None (a miss)."""
        page = self._pages.get(key)
        if page is None or page.state != state:
            self._misses.inc()
            return None
        self._pages.move_to_end(key)
        self._hits.inc()
        return page

    def keep(self, key: Hashable, state: Hashable, tag: str, response: web.StreamResponse) -> None:
        """Keep a 200 the handler answered under `tag` (read before its data, so the body is
        at least as new as `state`); anything else is not kept: another status, a body
        that is not bytes, a cookie, a tag the handler read itself (a write raced)."""
        if (
            type(response) is not web.Response
            or response.status != 200
            or response.headers.get("ETag") != tag
            or not isinstance(response.body, bytes)
            or response.cookies
        ):
            return
        headers = tuple((k, v) for k, v in response.headers.items() if k.lower() != "etag")
        size = (
            len(response.body)
            + sum(len(k) + len(v) for k, v in headers)
            + key_size(key)
            + ENTRY_OVERHEAD
        )
        if size > self.limit:
            return
        self.drop(key)
        while self.size + size > self.limit:
            _, oldest = self._pages.popitem(last=False)
            self.size -= oldest.size
            self._evictions.inc()
        self._pages[key] = Page(state, response.body, headers, size)
        self.size += size
        self._bytes.set(self.size)

    def drop(self, key: Hashable) -> None:
        page = self._pages.pop(key, None)
        if page is not None:
            self.size -= page.size
            self._bytes.set(self.size)


PAGE_CACHE: web.AppKey[PageCache | None] = web.AppKey("page_cache")
