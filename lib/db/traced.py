"""Query spans: each generated query in a sampled trace runs in a span named by sqlc.

A connection lent inside a sampled span (lib/tracing.py) is wrapped; a query's span never
holds its SQL parameters.

The generated SQL starts with sqlc's own comment line, `-- name: GetUserListPoints :many`
(codegen's rule, as sqlc's Go generator writes it): the span takes its name from there,
read once per SQL string. Any other statement (a ping, a savepoint, a hand-written query)
runs without a span. The `iter_*` variants' asyncpg cursors are not traced (no service
uses them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any

from lib import tracing

NAME_COMMENT = "-- name: "
CACHE_LIMIT = 4096  # SQL strings remembered (generated ones are a few hundred; beyond: parsed)
_NAMES: dict[str, str | None] = {}


def query_name(sql: object) -> str | None:
    """sqlc's name of a generated query from its first line, None for any other SQL."""
    if not isinstance(sql, str):
        return None
    try:
        return _NAMES[sql]
    except KeyError:
        pass
    first = sql.lstrip().partition("\n")[0]
    words = first.removeprefix(NAME_COMMENT).split() if first.startswith(NAME_COMMENT) else []
    name = words[0] if words else None
    if len(_NAMES) < CACHE_LIMIT:
        _NAMES[sql] = name
    return name


async def _traced(
    run: Callable[..., Awaitable[Any]], name: str, system: str, args: tuple[Any, ...]
) -> Any:
    span = tracing.start_child(name, tracing.CLIENT, {"db.system.name": system})
    try:
        return await run(*args)
    except BaseException as exc:
        tracing.fail(span, type(exc).__name__)
        raise
    finally:
        span.end()


class _Traced:
    """A driver object whose query calls with generated SQL are spans of `system`;
    everything else is the object's own."""

    __slots__ = ("_conn",)
    system = ""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _run(self, method: str, args: tuple[Any, ...]) -> Awaitable[Any]:
        run = getattr(self._conn, method)
        name = query_name(args[0]) if args else None
        return run(*args) if name is None else _traced(run, name, self.system, args)


class TracedPgConnection(_Traced):
    """An asyncpg connection: fetch/fetchrow/fetchval/execute/executemany traced."""

    __slots__ = ()
    system = "postgresql"

    def fetch(self, *args: Any) -> Awaitable[Any]:
        return self._run("fetch", args)

    def fetchrow(self, *args: Any) -> Awaitable[Any]:
        return self._run("fetchrow", args)

    def fetchval(self, *args: Any) -> Awaitable[Any]:
        return self._run("fetchval", args)

    def execute(self, *args: Any) -> Awaitable[Any]:
        return self._run("execute", args)

    def executemany(self, *args: Any) -> Awaitable[Any]:
        return self._run("executemany", args)


class TracedMyConnection(_Traced):
    """An aiomysql connection whose cursors trace `execute`/`executemany`."""

    __slots__ = ()

    def cursor(self, *args: Any) -> _CursorContext:
        return _CursorContext(self._conn.cursor(*args))


class _CursorContext:
    """`async with conn.cursor() as cur` (the form generated code uses), or
    `cur = await conn.cursor()`."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __await__(self) -> Generator[Any, None, TracedCursor]:
        return self._open().__await__()

    async def _open(self) -> TracedCursor:
        return TracedCursor(await self._inner)

    async def __aenter__(self) -> TracedCursor:
        return TracedCursor(await self._inner.__aenter__())

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


class TracedCursor(_Traced):
    __slots__ = ()
    system = "mysql"

    def execute(self, *args: Any) -> Awaitable[Any]:
        return self._run("execute", args)

    def executemany(self, *args: Any) -> Awaitable[Any]:
        return self._run("executemany", args)

    async def __aenter__(self) -> TracedCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._conn.close()


def traced(conn: Any, engine: str) -> Any:
    """`conn` wrapped for query spans when the current span is sampled, else `conn`."""
    if not tracing.recording():
        return conn
    return TracedPgConnection(conn) if engine == "postgresql" else TracedMyConnection(conn)


def unwrap(conn: Any) -> Any:
    """The driver's connection under a traced one."""
    if isinstance(conn, TracedPgConnection | TracedMyConnection):
        return conn._conn
    return conn
