"""Conditional reads of the departments and catalog APIs (ADR 0019) against real
PostgreSQL: every public GET answers an ETag; If-None-Match with the current tag is a 304
that runs no page query and spends the rate-limit budget a 200 spends (a flood of them meets
the limit; a bad token is 401 whatever the conditional headers); every committed write changes the
tag, an uncommitted one does not; a read racing writes never 304s a stale copy. A write to
each table a list reads, for every list: tests/integration/test_conditional_stamps.py; a
write through one replica seen by another: tests/integration/test_page_cache.py's restart
test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from lib.auth.principal import Role
from services.catalog.app import create_app as catalog_app
from services.departments.app import create_app
from tests import pg
from tests.integration.auth_support import bearer, settings_for
from tests.integration.catalog_support import ADMIN, catalog_settings, chain

LIST = "/v1/departments?limit=100&orderby=name"


async def create(client: Any, name: str) -> dict[str, Any]:
    resp = await client.post(
        "/v1/departments", json={"name": name, "address": "1 Main St"}, headers=bearer(Role.ADMIN)
    )
    assert resp.status == 201, await resp.text()
    return dict((await resp.json())["data"])


async def get(client: Any, path: str, tag: str | None = None) -> tuple[int, str, bytes]:
    headers = {} if tag is None else {"If-None-Match": tag}
    resp = await client.get(path, headers=headers)
    return resp.status, resp.headers.get("ETag", ""), await resp.read()


async def test_list_and_item_answer_etag_and_304(client: Any) -> None:
    dept = await create(client, "Conditional one")
    status, tag, body = await get(client, LIST)
    assert status == 200
    assert tag.startswith('"')
    assert b"Conditional one" in body

    status, again, body = await get(client, LIST, tag)
    assert (status, again, body) == (304, tag, b"")
    assert (await get(client, LIST, f'W/{tag}, "other"'))[0] == 304  # weak, in a list
    assert (await get(client, LIST, '"not-the-tag"'))[0] == 200
    # another URL of the same list is another resource: its own tag
    other = await get(client, "/v1/departments?limit=99&orderby=name", tag)
    assert other[0] == 200
    assert other[1] != tag

    item = f"/v1/departments/{dept['id']}"
    status, item_tag, _ = await get(client, item)
    assert (status, item_tag) == (200, f'"{dept["version"]}"')
    assert (await get(client, item, item_tag))[:2] == (304, item_tag)
    # a missing item is still a 404, whatever the caller sends
    missing = "/v1/departments/00000000-0000-0000-0000-000000000000"
    assert (await get(client, missing, '"1"'))[0] == 404
    assert (await get(client, "/v1/departments/nope", '"1"'))[0] == 400


async def test_every_committed_write_changes_the_tag(client: Any) -> None:
    dept = await create(client, "Written once")
    _, tag, _ = await get(client, LIST)
    seen = {tag}

    resp = await client.patch(
        f"/v1/departments/{dept['id']}",
        json={"address": "2 Main St"},
        headers={**bearer(Role.ADMIN), "If-Match": f'"{dept["version"]}"'},
    )
    assert resp.status == 200, await resp.text()
    status, tag, body = await get(client, LIST, tag)
    assert status == 200
    assert b"2 Main St" in body
    assert tag not in seen
    seen.add(tag)

    resp = await client.delete(
        f"/v1/departments/{dept['id']}",
        headers={**bearer(Role.ADMIN), "If-Match": f'"{dept["version"] + 1}"'},
    )
    assert resp.status == 204, await resp.text()
    status, tag, body = await get(client, LIST, tag)
    assert status == 200
    assert b"Written once" not in body
    assert tag not in seen
    seen.add(tag)

    await create(client, "Written twice")
    status, tag, body = await get(client, LIST, tag)
    assert status == 200
    assert b"Written twice" in body
    assert tag not in seen


async def test_a_refused_write_keeps_the_tag(client: Any) -> None:
    """A statement that changes no row (a stale If-Match: 412) wrote nothing: the clients'
    copies stay current."""
    dept = await create(client, "Refused a write")
    _, tag, _ = await get(client, LIST)
    resp = await client.patch(
        f"/v1/departments/{dept['id']}",
        json={"address": "3 Main St"},
        headers={**bearer(Role.ADMIN), "If-Match": f'"{dept["version"] + 5}"'},
    )
    assert resp.status == 412, await resp.text()
    assert (await get(client, LIST, tag))[:2] == (304, tag)


async def test_an_uncommitted_write_keeps_the_tag_until_it_commits(
    client: Any, departments_dsn: str
) -> None:
    _, tag, _ = await get(client, LIST)
    async with pg.connected(departments_dsn) as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "INSERT INTO departments (name, address) VALUES ('Not yet committed', 'x')"
        )
        assert (await get(client, LIST, tag))[0] == 304  # nobody can see the row yet
        await tx.commit()
    status, _, body = await get(client, LIST, tag)
    assert status == 200
    assert b"Not yet committed" in body


async def test_a_304_runs_no_page_query(client: Any, departments_dsn: str) -> None:
    """With departments locked by another transaction, the page query would wait: the 304
    answers from table_versions alone."""
    _, tag, _ = await get(client, LIST)
    async with pg.connected(departments_dsn) as conn, conn.transaction():
        await conn.execute("LOCK TABLE departments IN ACCESS EXCLUSIVE MODE")
        status, again, _ = await asyncio.wait_for(get(client, LIST, tag), 5)
        assert (status, again) == (304, tag)


async def test_a_flood_of_304s_meets_the_per_ip_limit(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    """A 304 costs one token of the per-IP budget, as a 200 does (ADR 0026): conditional
    GETs from one address are limited like plain ones, and stay limited."""
    burst = 5
    settings = settings_for(departments_dsn, rate_limit_ip_rate=0.01, rate_limit_ip_burst=burst)
    client = await aiohttp_client(create_app(settings))
    _, tag, _ = await get(client, LIST)  # one token
    statuses = [(await get(client, LIST, tag))[0] for _ in range(3 * burst)]
    assert statuses == [304] * (burst - 1) + [429] * (2 * burst + 1)
    assert (await get(client, LIST))[0] == 429
    assert (await get(client, LIST, '"stale"'))[0] == 429


async def test_a_bad_token_is_401_whatever_the_conditional_headers(client: Any) -> None:
    _, tag, _ = await get(client, LIST)
    for value in (tag, "*", f"W/{tag}", '"other"'):
        for auth in ("Bearer not-a-token", "Basic x", "Bearer "):
            resp = await client.get(LIST, headers={"If-None-Match": value, "Authorization": auth})
            assert resp.status == 401, (value, auth, resp.status)
            assert resp.content_type == "application/problem+json"
    ok = await client.get(LIST, headers={"If-None-Match": tag, **bearer(Role.CUSTOMER)})
    assert ok.status == 304


async def test_reads_racing_writes_never_304_a_stale_copy(
    client: Any, departments_dsn: str
) -> None:
    """A writer commits departments one by one while eight readers revalidate their copies
    at once (so their stamp reads are shared: ADR 0038): every answer (200 or 304) holds
    each department committed before the request was sent."""
    committed: list[str] = []
    done = asyncio.Event()

    async def writer() -> None:
        conn = await asyncpg.connect(departments_dsn)
        try:
            for n in range(40):
                name = f"Race {n:03d}"
                await conn.execute("INSERT INTO departments (name, address) VALUES ($1, 'x')", name)
                committed.append(name)  # after the commit (autocommit statement)
                await asyncio.sleep(0)
        finally:
            await conn.close()
            done.set()

    async def reader() -> tuple[int, int]:
        tag, names, answers = None, set[str](), {200: 0, 304: 0}
        while True:
            finished = done.is_set()
            before = set(committed)
            status, new_tag, body = await get(client, LIST, tag)
            assert status in answers, body  # a 503 says why (the database, the pool)
            answers[status] += 1
            if status == 200:
                doc = json.loads(body)
                names = {d["name"] for d in doc["data"]}
                tag = new_tag
            assert before <= names, f"a {status} misses {sorted(before - names)}"
            if finished:
                # nothing is written any more: the copy the last read left is current
                assert (await get(client, LIST, tag))[0] == 304
                return answers[200], answers[304]

    async with asyncio.TaskGroup() as group:  # a failed reader stops the writer: the module's
        group.create_task(writer())  # next tests share its database
        readers = [group.create_task(reader()) for _ in range(8)]
    assert all(fresh >= 2 for fresh, _ in (task.result() for task in readers))


# --- catalog: the taxonomy, the services and the provider links ---------------------------


@pytest.fixture
async def catalog(aiohttp_client: Any, migrated_db: Callable[[str], str]) -> Any:
    return await aiohttp_client(catalog_app(catalog_settings(migrated_db("catalog"))))


async def test_catalog_lists_and_items_revalidate_and_change_with_every_write(
    catalog: Any,
) -> None:
    made = await chain(catalog)
    lists = {
        "type": "/v1/category-types",
        "category": "/v1/categories",
        "subcategory": "/v1/subcategories",
        "service": "/v1/services",
    }
    for noun, path in lists.items():
        status, tag, _ = await get(catalog, path)
        assert status == 200
        assert (await get(catalog, path, tag))[:2] == (304, tag), path
        item = f"{path}/{made[noun]['id']}"
        status, item_tag, _ = await get(catalog, item)
        assert (await get(catalog, item, item_tag))[:2] == (304, item_tag), item

        resp = await catalog.patch(
            item,
            json={"name": f"Renamed {noun}"},
            headers={**ADMIN, "If-Match": item_tag},
        )
        assert resp.status == 200, await resp.text()
        status, _, body = await get(catalog, path, tag)
        assert status == 200, path
        assert f"Renamed {noun}".encode() in body
        assert (await get(catalog, item, item_tag))[0] == 200
