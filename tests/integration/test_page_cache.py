"""The page cache of conditional GETs (ADR 0056, lib/http/conditional.py) against real
PostgreSQL and Redis: a write between two reads changes the answer at once on every list the
served OpenAPI documents declare (the list walk's discovery); two callers of a route that
declares roles never see each other's page; the bytes held never pass PAGE_CACHE_BYTES
under a flood of distinct queries, the evictions counted in /metrics; PAGE_CACHE_BYTES=0
never answers from a kept page; a replica restarted loses nothing but warmth, and a write
through another replica is seen at once (the tag read before it: a 304, then the new page)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY

from lib.auth.principal import Role
from lib.http.app import create_app
from lib.http.conditional import PAGE_CACHE, TAG, PageCache, TablesStamp
from lib.http.jsonio import json_response
from lib.http.keys import DB, SETTINGS, principal_of
from lib.http.openapi import operation
from services.departments.app import create_app as departments_app
from services.departments.db import table_versions
from services.departments.settings import DepartmentsSettings
from tests.integration import list_walk_support as w
from tests.integration.auth_support import bearer, service_settings
from tests.integration.test_access_matrix import (  # noqa: F401  (fixtures)
    WIRED,
    spec_of,
    stack,
)
from tests.integration.test_list_orders import bearer_of, dsns, fill  # noqa: F401  (dsns: a fixture)
from tests.integration.test_list_walk import caller_of, chosen_path, touch

LIST = "/v1/departments?limit=1000&orderby=name"


def settings_for(dsn: str, service: str, **overrides: Any) -> DepartmentsSettings:
    """Departments' settings under a service name of the test's own: its counters alone."""
    return service_settings(DepartmentsSettings, service, dsn, **overrides)


def counted(name: str, service: str) -> float:
    return REGISTRY.get_sample_value(f"page_cache_{name}", {"service": service}) or 0.0


def hits(client: Any) -> float:
    return counted("hits_total", client.server.app[SETTINGS].service)


async def read(client: Any, path: str, headers: dict[str, str] | None = None) -> tuple[Any, ...]:
    resp = await client.get(path, headers=headers or {})
    return resp.status, resp.headers.get("ETag"), await resp.read()


async def create(client: Any, name: str) -> None:
    body = {"name": name, "address": "1 Main St"}
    resp = await client.post("/v1/departments", json=body, headers=bearer(Role.ADMIN))
    assert resp.status == 201, await resp.text()


async def list_errors(
    client: Any, listed: w.Listed, path: str, headers: dict[str, str], dsn: str
) -> list[str]:
    """Read twice, write to the first row, read again: a list with an ETag answers its
    second read from the cache, and the read after the write from the handler (a miss:
    the stamp moved); where the rows carry `updated_at` the write shows in the body (else
    the walk's write is a no-op UPDATE: only the stamp and the ETag move)."""
    wrong = []
    url = w.url(path, {"limit": str(w.BIG)})
    status, tag, first = await read(client, url, headers)  # maybe a hit: chosen_path read it
    assert status == 200, (listed.name, status, first)
    before = hits(client)
    again = await read(client, url, headers)
    kept = hits(client) - before
    if again != (status, tag, first):
        wrong.append(f"an unchanged list answered {again[:2]} after {(status, tag)}")
    if kept != (1 if tag is not None else 0):  # only a conditional list is kept
        wrong.append(f"ETag {tag}: {kept} hits on the second read")
    rows = json.loads(first)["data"]
    if tag is None and "updated_at" not in rows[0]:
        return [f"{listed.name}: {e}" for e in wrong]  # no write could show (the audit list)
    unique = w.unique_key(rows, listed.keys)
    await touch(dsn, rows[0], unique)
    before = hits(client)
    status, new_tag, after = await read(client, url, headers)
    if hits(client) != before:
        wrong.append("the read after a write was answered from the cache")
    if tag is not None and new_tag == tag:
        wrong.append(f"the ETag {tag} did not move with the write")
    if "updated_at" in rows[0]:
        shown = {str(r[unique]): r for r in json.loads(after)["data"]}
        if shown[str(rows[0][unique])]["updated_at"] == rows[0]["updated_at"]:
            wrong.append(f"the write to {rows[0][unique]} does not show")
    return [f"{listed.name}: {e}" for e in wrong]


async def test_a_write_between_two_reads_shows_at_once_on_every_list(
    stack: dict[str, Any],  # noqa: F811  (the fixture)
    dsns: dict[str, str],  # noqa: F811  (the fixture)
) -> None:
    callers = await fill(stack, dsns)
    wrong: list[str] = []
    cached = 0
    for service in sorted(WIRED):
        client = stack[service]
        assert isinstance(client.server.app[PAGE_CACHE], PageCache)  # on by default
        for listed in w.lists_of(service, await spec_of(client)):
            headers = caller_of(listed, callers)
            path = await chosen_path(client, listed, headers, dsns[service])
            wrong += await list_errors(client, listed, path, headers, dsns[service])
        cached += len(client.server.app[PAGE_CACHE])
    assert wrong == [], "\n".join(wrong)
    assert cached >= 8  # every conditional list of departments, catalog and orders kept


def scoped_app(dsn: str, service: str) -> web.Application:
    """A route whose answer depends on its caller (no service's conditional list does yet):
    roles declared, the caller's role and id in the body, the departments table's stamp."""
    routes = web.RouteTableDef()
    stamp = TablesStamp(table_versions.tables_version, "departments")

    @routes.get("/v1/mine")
    @operation("The caller's page", tags=["mine"], roles=("ADMIN", "CUSTOMER"), conditional=stamp)
    async def mine(request: web.Request) -> web.Response:
        principal = principal_of(request)
        assert principal is not None
        async with request.app[DB].acquire() as conn:
            tag = request.get(TAG) or await stamp(request, conn)
        who = {"user": str(principal.user_id), "role": str(principal.role)}
        return json_response({"data": [who]}, headers={"ETag": tag})

    return create_app(settings_for(dsn, service), routes=routes, title="scoped")


async def test_callers_of_another_scope_never_see_each_others_page(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    service = f"pages-{uuid.uuid4().hex[:8]}"
    client = await aiohttp_client(scoped_app(departments_dsn, service))
    ids = [uuid.uuid4() for _ in range(3)]
    callers = {  # two users of one role, and another role
        (Role.CUSTOMER, ids[0]): bearer_of(Role.CUSTOMER, ids[0]),
        (Role.CUSTOMER, ids[1]): bearer_of(Role.CUSTOMER, ids[1]),
        (Role.ADMIN, ids[2]): bearer_of(Role.ADMIN, ids[2]),
    }
    for round_ in range(2):  # the second round from the cache
        for (role, user), headers in callers.items():
            status, _, body = await read(client, "/v1/mine?limit=5", headers)
            assert status == 200, body
            assert json.loads(body)["data"] == [{"user": str(user), "role": str(role)}], round_
    assert counted("hits_total", service) == len(callers)
    # the access rule comes first: a kept page is no answer for who may not see the route
    assert (await read(client, "/v1/mine?limit=5"))[0] == 401
    assert (await read(client, "/v1/mine?limit=5", bearer(Role.PROVIDER)))[0] == 403
    assert counted("hits_total", service) == len(callers)


async def test_the_same_query_in_another_order_is_the_same_page_with_its_own_tag(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    service = f"pages-{uuid.uuid4().hex[:8]}"
    client = await aiohttp_client(departments_app(settings_for(departments_dsn, service)))
    await create(client, f"Ordered {uuid.uuid4().hex[:6]}")
    status, tag, body = await read(client, "/v1/departments?limit=7&orderby=name")
    assert status == 200
    status, other_tag, other = await read(client, "/v1/departments?orderby=name&limit=7")
    assert (status, other) == (200, body)
    assert counted("hits_total", service) == 1
    assert other_tag != tag  # each URL keeps its own tag (ADR 0019)
    assert (await read(client, "/v1/departments?orderby=name&limit=7", {}))[1] == other_tag


def metric(text: str, name: str, service: str) -> float:
    found = re.search(rf'^{name}{{service="{service}"}} (\S+)$', text, re.M)
    assert found is not None, f"{name} of {service} not in /metrics"
    return float(found.group(1))


async def test_a_flood_of_distinct_queries_never_passes_the_bound(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    service = f"pages-{uuid.uuid4().hex[:8]}"
    bound = 24 * 1024
    settings = settings_for(departments_dsn, service, page_cache_bytes=bound)
    client = await aiohttp_client(departments_app(settings))
    for n in range(6):
        await create(client, f"Flooded {n} {uuid.uuid4().hex[:6]}")
    cache = client.server.app[PAGE_CACHE]
    assert cache is not None
    flood = 300
    for n in range(flood):  # every one another query: a miss, kept, older pages evicted
        status, _, _ = await read(client, f"/v1/departments?limit={1 + n % 40}&page={1 + n // 40}")
        assert status == 200
        assert cache.size <= bound
    resp = await client.get("/metrics")
    text = await resp.text()
    misses = metric(text, "page_cache_misses_total", service)
    evictions = metric(text, "page_cache_evictions_total", service)
    assert misses == flood
    assert evictions == flood - len(cache) > 0  # every page kept is held or was evicted
    assert cache.size == sum(page.size for page in cache.pages)  # the bytes of those held
    assert 0 < metric(text, "page_cache_bytes", service) == cache.size <= bound
    assert metric(text, "page_cache_hits_total", service) == 0


async def test_off_never_answers_from_a_kept_page(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    service = f"pages-{uuid.uuid4().hex[:8]}"
    settings = settings_for(departments_dsn, service, page_cache_bytes=0)
    client = await aiohttp_client(departments_app(settings))
    assert client.server.app[PAGE_CACHE] is None
    await create(client, f"Uncached {uuid.uuid4().hex[:6]}")
    first = await read(client, LIST)
    assert first[0] == 200
    assert await read(client, LIST) == first
    assert (await read(client, LIST, {"If-None-Match": first[1]}))[0] == 304  # still a 304
    text = await (await client.get("/metrics")).text()
    for name in ("hits_total", "misses_total", "evictions_total", "bytes"):
        assert metric(text, f"page_cache_{name}", service) == 0  # present, at 0


async def test_a_restart_loses_nothing_but_warmth(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    service = f"pages-{uuid.uuid4().hex[:8]}"
    replica = await aiohttp_client(departments_app(settings_for(departments_dsn, service)))
    other = await aiohttp_client(departments_app(settings_for(departments_dsn, service)))
    await create(replica, f"Restarted {uuid.uuid4().hex[:6]}")
    first = await read(replica, LIST)
    assert await read(replica, LIST) == first
    assert counted("hits_total", service) == 1
    old = {"If-None-Match": first[1]}
    assert (await read(replica, LIST, old))[:2] == (304, first[1])
    written = f"Written elsewhere {uuid.uuid4().hex[:6]}"
    await create(other, written)  # through another replica: its stamp moves for everyone
    status, tag, body = await read(replica, LIST)
    assert status == 200
    assert written.encode() in body
    assert tag != first[1]
    assert counted("hits_total", service) == 1
    assert await read(replica, LIST, old) == (status, tag, body)  # the old tag: the new page
    assert counted("hits_total", service) == 2
    await replica.close()  # the restart: a new process, an empty cache
    restarted = await aiohttp_client(departments_app(settings_for(departments_dsn, service)))
    assert len(restarted.server.app[PAGE_CACHE]) == 0
    assert await read(restarted, LIST) == (status, tag, body)  # the same answer, rendered
    assert counted("hits_total", service) == 2
    assert await read(restarted, LIST) == (status, tag, body)  # warm again
    assert counted("hits_total", service) == 3
