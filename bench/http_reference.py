"""The two comparison servers of bench/http_list.py, each a separate process.

`reference`: a minimal hand-written aiohttp + asyncpg handler running the same SQL and
returning the same JSON as GET /v1/departments?limit=50 (no middleware, no validation;
the SQL text is the generated query's, so the columns cannot go stale).
`bare`: aiohttp returning fixed bytes (the framework ceiling).
`bare-layers`: the same behind as many pass-through middlewares as create_app chains: what
the depth of lib/'s chain costs by itself, apart from the work its layers do.
Run: python bench/http_reference.py {reference,bare,bare-layers} PORT DSN
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import uvloop
from aiohttp import web

from services.departments.db.departments import COUNT_DEPARTMENTS as COUNT
from services.departments.db.departments import PLAIN_DEPARTMENTS_PAGE as PAGE

# The SQL is the generated query's text, so a new column reaches the reference with the
# next `make sqlc`; tests/integration/test_bench_reference.py compares the two responses.
SERVICE_LAYERS = 11  # create_app's middlewares with tracing off (the same test checks it)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default(value: Any) -> str:
    return str(value)


def reference_app(dsn: str, max_size: int = 10) -> web.Application:
    """The departments list by hand on a pool of `max_size` (the service's DB_POOL_MAX default)."""
    app = web.Application()
    pool_key = web.AppKey("pool", asyncpg.Pool)

    async def pool_ctx(app: web.Application) -> Any:
        app[pool_key] = await asyncpg.create_pool(dsn, min_size=2, max_size=max_size)
        yield
        await app[pool_key].close()

    async def handler(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        async with app[pool_key].acquire() as conn:
            total = await conn.fetchval(COUNT)
            rows = await conn.fetch(PAGE, 0, limit)
        body = {
            "data": [dict(r) for r in rows],
            "meta": {"total": total, "limit": limit, "page": 1},
        }
        return web.Response(
            body=orjson.dumps(body, default=default, option=orjson.OPT_UTC_Z),
            content_type="application/json",
        )

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/v1/departments", handler)
    return app


@web.middleware
async def passthrough(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)


def bare_app(body: bytes, layers: int = 0) -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application(middlewares=[passthrough] * layers)
    app.router.add_get("/v1/departments", handler)
    return app


def main() -> None:
    kind, port, dsn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "reference":
        app = reference_app(dsn)
    else:
        layers = SERVICE_LAYERS if kind == "bare-layers" else 0
        app = bare_app(sys.stdin.buffer.read(), layers)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                loop=uvloop.new_event_loop())  # fmt: skip


if __name__ == "__main__":
    main()
