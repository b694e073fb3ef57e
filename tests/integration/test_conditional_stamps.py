"""Every conditional list's stamp covers every table its queries read (ADR 0019), derived
from what runs: each built PostgreSQL service of lib/registry.py, on a migrated database
with the demo data of tools/local/seed.py, each GET route of its app that answers a list with an
ETag and a 304 for it. Which tables a route reads, the server says: with a table locked
(ACCESS EXCLUSIVE) by another transaction, a route that reads it waits for the lock
(pg_locks), one that does not answers. Then a committed write to each table read (a
no-op UPDATE of one row; a TRUNCATE when the table is empty) must turn the old tag into
a 200: a stamp that leaves out one of the tables would keep answering 304 with the old body.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from lib import registry
from tests import pg
from tests.integration.test_access_matrix import plain_app
from tools.local import seed

SERVICES = [s.name for s in registry.gateway_services() if s.built and s.engine == "postgresql"]
# bookkeeping, never what a route answers
NOT_DATA = {"table_versions", "_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock"}


async def tables_of(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    return [r["tablename"] for r in rows if r["tablename"] not in NOT_DATA]


async def ids_in(conn: asyncpg.Connection) -> list[str]:
    """Every uuid of the database: the candidates for a route's path parameter."""
    cols = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type = 'uuid' ORDER BY 1, 2"
    )
    found: list[str] = []
    for c in cols:
        values = await conn.fetch(
            f'SELECT DISTINCT "{c["column_name"]}"::text AS v FROM "{c["table_name"]}"'
            f' WHERE "{c["column_name"]}" IS NOT NULL LIMIT 5'
        )
        found += [v["v"] for v in values if v["v"] not in found]
    return [*found, str(uuid.uuid4())]


async def answer(client: Any, path: str, tag: str | None = None) -> tuple[int, str, Any]:
    resp = await client.get(path, headers={} if tag is None else {"If-None-Match": tag})
    body = await resp.json() if resp.status == 200 else None
    return resp.status, resp.headers.get("ETag", ""), body


async def conditional_lists(client: Any, app: Any, ids: list[str]) -> list[str]:
    """The app's GET routes answering a list with an ETag and a 304 for it, each with the
    path parameters filled by the first id that answers rows (else the first that answers)."""
    paths: list[str] = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path")
        if route.method != "GET" or not template or not template.startswith("/v1/"):
            continue
        chosen = None
        for candidate in ids if "{" in template else [""]:
            path = template.format_map(_Fill(candidate))
            status, tag, body = await answer(client, path)
            if status != 200 or not tag or not isinstance(body, dict):
                continue
            if not isinstance(body.get("data"), list):
                break  # an item or a document, not a list
            chosen = chosen or path
            if body["data"]:
                chosen = path
                break
        if chosen and (await answer(client, chosen, (await answer(client, chosen))[1]))[0] == 304:
            paths.append(chosen)
    return paths


class _Fill(dict[str, str]):
    def __init__(self, value: str) -> None:
        super().__init__()
        self.value = value

    def __missing__(self, key: str) -> str:
        return self.value


async def reads(client: Any, dsn: str, path: str, table: str) -> bool:
    """Whether answering `path` reads `table`: with the table locked, it waits (pg_locks)."""
    locker = await asyncpg.connect(dsn)
    waiting = await asyncpg.connect(dsn)
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        task = asyncio.create_task(answer(client, path))
        blocked = False

        async def check() -> None:
            nonlocal blocked
            blocked = bool(
                await waiting.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass",
                    table,
                )
            )

        while not task.done() and not blocked:
            await check()
            await asyncio.wait({task}, timeout=0)
        await tx.rollback()
        await task
        assert task.result()[0] == 200, (path, task.result())
        return blocked
    finally:
        await locker.close()
        await waiting.close()


async def write_to(dsn: str, table: str) -> None:
    """A committed write that changes nothing one reads: a no-op UPDATE of one row, or a
    TRUNCATE of an empty table."""
    async with pg.connected(dsn) as conn:
        column = await conn.fetchval(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position LIMIT 1",
            table,
        )
        done = await conn.execute(
            f'UPDATE "{table}" SET "{column}" = "{column}"'
            f' WHERE ctid = (SELECT ctid FROM "{table}" LIMIT 1)'
        )
        if done == "UPDATE 0":
            await conn.execute(f'TRUNCATE "{table}" CASCADE')


@pytest.mark.parametrize("service", SERVICES)
async def test_every_table_a_conditional_list_reads_is_in_its_stamp(
    aiohttp_client: Any, migrated_db: Callable[[str], str], service: str
) -> None:
    db = registry.get(service).database
    dsn = migrated_db(db)
    for name, seeder, _ in seed.SEEDERS:
        if name == db:
            seeder(dsn)
    app = plain_app(service, dsn, page_cache_bytes=0)  # the handlers' reads: no kept page
    client = await aiohttp_client(app)
    async with pg.connected(dsn) as conn:
        tables, ids = await tables_of(conn), await ids_in(conn)

    lists = await conditional_lists(client, app, ids)
    checked = 0
    for path in lists:
        read = [t for t in tables if await reads(client, dsn, path, t)]
        assert read, f"{service} {path}: reads no table?"
        for table in read:
            status, tag, _ = await answer(client, path)
            assert status == 200
            await write_to(dsn, table)
            status, new_tag, _ = await answer(client, path, tag)
            assert (status, new_tag != tag) == (200, True), (
                f"{service} GET {path} reads {table}, but a write to {table} keeps its tag"
                f" ({status}): the stamp leaves {table} out"
            )
            checked += 1
    assert checked or not lists
