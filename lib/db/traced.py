"""Query spans: each generated query in a sampled trace runs in a span named by sqlc.

Query spans (lib/tracing.py): a connection lent inside a sampled span is wrapped so that
each query of the generated repositories (codegen/) runs in a client span named by its
sqlc query name (`GetUserListPoints`), never with its SQL parameters.

The generated function that runs a query is the caller of `fetch`/`execute`; its name is
sqlc's in snake case and its module holds the SQL as the same name upper-cased (both are
codegen's rules), so the name is found once per function from its code object: no
codegen change, and any other statement (a ping, a savepoint, a hand-written query) runs
without a span. The `iter_*` variants' asyncpg cursors are not traced (no service uses
them).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Generator
from types import CodeType, FrameType
from typing import Any

from lib import tracing

_NAMES: dict[CodeType, str | None] = {}


def query_name(frame: FrameType | None) -> str | None:
    """sqlc's name of the generated query running in `frame`, None for any other code."""
    if frame is None:
        return None
    code = frame.f_code
    try:
        return _NAMES[code]
    except KeyError:
        pass
    func = code.co_name.removeprefix("iter_")
    generated = isinstance(frame.f_globals.get(func.upper()), str) and not func.startswith("_")
    name = sqlc_name(func) if generated else None
    _NAMES[code] = name
    return name


def sqlc_name(func: str) -> str:
    """`get_user_list_points` -> `GetUserListPoints` (codegen.naming.snake, reversed)."""
    return "".join(w[:1].upper() + w[1:] for w in func.split("_"))


async def _traced(
    run: Callable[..., Awaitable[Any]], name: str, system: str, args: tuple[Any, ...]
) -> Any:
    span = tracing.start_leaf(name, tracing.CLIENT, {"db.system.name": system})
    try:
        return await run(*args)
    except BaseException as exc:
        tracing.fail(span, type(exc).__name__)
        raise
    finally:
        span.end()


class TracedPgConnection:
    """An asyncpg connection whose fetch/fetchrow/fetchval/execute/executemany calls from
    generated code are spans; everything else is the connection's own."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _run(self, method: str, args: tuple[Any, ...]) -> Awaitable[Any]:
        run = getattr(self._conn, method)
        name = query_name(sys._getframe(2))
        return run(*args) if name is None else _traced(run, name, "postgresql", args)

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


class TracedMyConnection:
    """An aiomysql connection whose cursors trace `execute`/`executemany` from generated
    code."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

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


class TracedCursor:
    __slots__ = ("_cur",)

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def _run(self, method: str, args: tuple[Any, ...]) -> Awaitable[Any]:
        run = getattr(self._cur, method)
        name = query_name(sys._getframe(2))
        return run(*args) if name is None else _traced(run, name, "mysql", args)

    def execute(self, *args: Any) -> Awaitable[Any]:
        return self._run("execute", args)

    def executemany(self, *args: Any) -> Awaitable[Any]:
        return self._run("executemany", args)

    async def __aenter__(self) -> TracedCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._cur.close()


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
