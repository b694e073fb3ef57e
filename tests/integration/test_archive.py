"""Archived, not deleted (ADR 0058), against real PostgreSQL through the real apps: DELETE on
a department or a catalog entry archives it (hidden from the lists, read by id with its
`archived_at`, a new ETag and list stamp, so no 304 and no kept page of before), again is a
no-op, an ADMIN lists (`state`) and restores it; anyone else is refused 401/403, also where a
kept page would answer; an unknown id is a 404; what refers to an archived entry keeps
working, a new reference to one is refused 409 (catalog's own parents, users'
department_id, orders' service_id; a provider's links to an archived service:
test_catalog_api.py::test_provider_links)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lib.auth.principal import Role
from lib.http.keys import SETTINGS
from services.catalog.app import create_app as catalog_app
from services.departments.app import create_app as departments_app
from services.departments.settings import DepartmentsSettings
from services.orders.app import create_app as orders_app
from services.users.app import create_app as users_app
from tests.integration.auth_support import Bearer, service_settings
from tests.integration.catalog_support import catalog_settings, chain, unique
from tests.integration.orders_support import caller, order_body, orders_settings
from tests.integration.users_support import auth, make_user, users_settings

ADMIN = Bearer(Role.ADMIN)
CUSTOMER = Bearer(Role.CUSTOMER)
DEPARTMENTS = "/v1/departments?limit=1000"


def hits(service: str) -> float:
    sample = REGISTRY.get_sample_value("page_cache_hits_total", {"service": service})
    return sample or 0.0


@pytest.fixture
async def departments(aiohttp_client: Any, departments_dsn: str) -> Any:
    """The departments app with the page cache on, under a service name of its own (its
    counters alone)."""
    settings = service_settings(
        DepartmentsSettings, f"departments-archive-{uuid.uuid4().hex[:8]}", departments_dsn,
        page_cache_bytes=1 << 20,
    )  # fmt: skip
    return await aiohttp_client(departments_app(settings))


@pytest.fixture
async def catalog(aiohttp_client: Any, catalog_dsn: str) -> Any:
    return await aiohttp_client(catalog_app(catalog_settings(catalog_dsn)))


async def made_department(client: Any) -> dict[str, Any]:
    resp = await client.post(
        "/v1/departments", json={"name": unique("Archive"), "address": "1 Main St"}, headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    made: dict[str, Any] = (await resp.json())["data"]
    return made


async def listed(client: Any, path: str, headers: dict[str, str] | None = None) -> Any:
    resp = await client.get(path, headers=headers or {})
    assert resp.status == 200, await resp.text()
    return resp.headers["ETag"], await resp.json()


def ids(body: dict[str, Any]) -> set[str]:
    return {row["id"] for row in body["data"]}


async def test_a_department_archived_hidden_shown_and_restored(departments: Any) -> None:
    made = await made_department(departments)
    url = f"/v1/departments/{made['id']}"
    list_tag, before = await listed(departments, DEPARTMENTS)
    again_tag, again = await listed(departments, DEPARTMENTS)  # a kept page now
    assert (again_tag, again) == (list_tag, before)
    assert made["id"] in ids(before)

    assert (await departments.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 204
    # the list moved: no 304 to its old tag, no kept page of before; the row is hidden
    stale = await departments.get(DEPARTMENTS, headers={"If-None-Match": list_tag})
    assert stale.status == 200
    assert stale.headers["ETag"] != list_tag
    after = await stale.json()
    assert made["id"] not in ids(after)
    assert after["meta"]["total"] == before["meta"]["total"] - 1 == len(after["data"])
    # read by id: its state, a new version and ETag
    got = await departments.get(url, headers={"If-None-Match": '"1"'})
    assert (got.status, got.headers["ETag"]) == (200, '"2"')
    row = (await got.json())["data"]
    assert row["archived_at"] is not None
    assert row["version"] == 2

    # again: nothing changes (also with the version the first DELETE carried)
    for tag in ('"1"', '"2"'):
        assert (await departments.delete(url, headers={**ADMIN, "If-Match": tag})).status == 204
    assert (await departments.get(url)).headers["ETag"] == '"2"'

    # an ADMIN lists them by state; the totals are the rows
    _, archived = await listed(departments, f"{DEPARTMENTS}&state=archived", ADMIN)
    _, everything = await listed(departments, f"{DEPARTMENTS}&state=all", ADMIN)
    _, active = await listed(departments, f"{DEPARTMENTS}&state=active", ADMIN)
    assert made["id"] in ids(archived)
    assert made["id"] in ids(everything)
    assert all(r["archived_at"] is not None for r in archived["data"])
    assert ids(active) == ids(after)
    assert ids(active) | ids(archived) == ids(everything)
    for body in (archived, everything, active):
        assert body["meta"]["total"] == len(body["data"])

    # a restore on a stale version is 412; on the current one 200, back in the list
    stale_restore = await departments.post(f"{url}/restore", headers={**ADMIN, "If-Match": '"1"'})
    assert stale_restore.status == 412
    restored = await departments.post(f"{url}/restore", headers={**ADMIN, "If-Match": '"2"'})
    assert (restored.status, restored.headers["ETag"]) == (200, '"3"')
    assert (await restored.json())["data"]["archived_at"] is None
    again_restored = await departments.post(
        f"{url}/restore", headers={**ADMIN, "If-Match": '"2"'}
    )  # a repeated restore: the row as it is
    assert (again_restored.status, again_restored.headers["ETag"]) == (200, '"3"')
    _, back = await listed(departments, DEPARTMENTS)
    assert made["id"] in ids(back)
    assert back["meta"]["total"] == before["meta"]["total"]


async def test_only_an_admin_archives_restores_or_asks_for_the_archived(departments: Any) -> None:
    made = await made_department(departments)
    url = f"/v1/departments/{made['id']}"
    assert (await departments.delete(url, headers={**CUSTOMER, "If-Match": '"1"'})).status == 403
    assert (await departments.delete(url, headers={"If-Match": '"1"'})).status == 401
    assert (await departments.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 204
    for headers, status in ((CUSTOMER, 403), ({}, 401)):
        restore = await departments.post(f"{url}/restore", headers={**headers, "If-Match": '"2"'})
        assert restore.status == status
    # the ADMIN's page is kept; nobody else gets it, from the cache or the handler
    service = departments.server.app[SETTINGS].service
    path = f"{DEPARTMENTS}&state=archived"
    await listed(departments, path, ADMIN)
    kept = hits(service)
    await listed(departments, path, ADMIN)
    assert hits(service) == kept + 1
    for headers, status in ((CUSTOMER, 403), ({}, 401)):
        refused = await departments.get(path, headers=headers)
        assert refused.status == status
        assert (await refused.json())["status"] == status
    assert hits(service) == kept + 1
    assert (await departments.get(f"{DEPARTMENTS}&state=all", headers=CUSTOMER)).status == 403
    bad = await departments.get(f"{DEPARTMENTS}&state=gone", headers=ADMIN)
    assert bad.status == 400
    assert [e["field"] for e in (await bad.json())["errors"]] == ["state"]
    # still archived: nothing the refused calls did changed it
    assert (await (await departments.get(url)).json())["data"]["version"] == 2


async def test_an_unknown_id_is_404(departments: Any, catalog: Any) -> None:
    nobody = uuid.uuid4()
    for client, path in ((departments, "/v1/departments"), (catalog, "/v1/services")):
        url = f"{path}/{nobody}"
        assert (await client.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 404
        restore = await client.post(f"{url}/restore", headers={**ADMIN, "If-Match": '"1"'})
        assert restore.status == 404


RESOURCES = [
    ("/v1/category-types", "type"),
    ("/v1/categories", "category"),
    ("/v1/subcategories", "subcategory"),
    ("/v1/services", "service"),
]


@pytest.mark.parametrize(("path", "key"), RESOURCES)
async def test_a_catalog_entry_archived_hidden_shown_and_restored(
    catalog: Any, path: str, key: str
) -> None:
    row = (await chain(catalog))[key]
    url = f"{path}/{row['id']}"
    list_tag, before = await listed(catalog, f"{path}?limit=1000")
    assert row["id"] in ids(before)
    assert (await catalog.delete(url, headers={**CUSTOMER, "If-Match": '"1"'})).status == 403
    assert (await catalog.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 204
    assert (await catalog.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 204
    moved = await catalog.get(f"{path}?limit=1000", headers={"If-None-Match": list_tag})
    assert moved.status == 200
    assert moved.headers["ETag"] != list_tag
    after = await moved.json()
    assert row["id"] not in ids(after)
    assert after["meta"]["total"] == before["meta"]["total"] - 1
    got = await catalog.get(url)
    assert got.headers["ETag"] == '"2"'
    assert (await got.json())["data"]["archived_at"] is not None
    _, archived = await listed(catalog, f"{path}?limit=1000&state=archived", ADMIN)
    assert row["id"] in ids(archived)
    assert archived["meta"]["total"] == len(archived["data"])
    assert (await catalog.get(f"{path}?state=archived", headers=CUSTOMER)).status == 403
    assert (await catalog.get(f"{path}?state=archived")).status == 401
    refused = await catalog.post(f"{url}/restore", headers={**CUSTOMER, "If-Match": '"2"'})
    assert refused.status == 403
    restored = await catalog.post(f"{url}/restore", headers={**ADMIN, "If-Match": '"2"'})
    assert (restored.status, restored.headers["ETag"]) == (200, '"3"')
    assert (await restored.json())["data"]["archived_at"] is None
    _, back = await listed(catalog, f"{path}?limit=1000")
    assert row["id"] in ids(back)


CHILDREN = [  # the parent archived, the create of a child under it, the child's PATCH field
    ("/v1/category-types", "type", "/v1/categories", "type_id", {"name": "New"}),
    ("/v1/categories", "category", "/v1/subcategories", "category_id", {"name": "New"}),
    (
        "/v1/subcategories",
        "subcategory",
        "/v1/services",
        "subcategory_id",
        {"name": "New", "base_price": "1"},
    ),
]


@pytest.mark.parametrize(("path", "key", "child_path", "field", "body"), CHILDREN)
async def test_no_new_child_under_an_archived_parent(
    catalog: Any, catalog_dsn: str, path: str, key: str, child_path: str, field: str,
    body: dict[str, Any],
) -> None:  # fmt: skip
    made = await chain(catalog)
    other = await chain(catalog)  # a live parent, and a child there to move
    parent = made[key]["id"]
    assert (
        await catalog.delete(f"{path}/{parent}", headers={**ADMIN, "If-Match": '"1"'})
    ).status == 204
    create = await catalog.post(child_path, json={**body, field: parent}, headers=ADMIN)
    assert create.status == 409
    problem = await create.json()
    assert (problem["code"], problem["errors"][0]["field"]) == ("CONFLICT", field)
    assert parent in problem["detail"]
    assert "archived" in problem["detail"]
    child = {"type": "category", "category": "subcategory", "subcategory": "service"}[key]
    move = await catalog.patch(
        f"{child_path}/{other[child]['id']}", json={field: parent},
        headers={**ADMIN, "If-Match": '"1"'},
    )  # fmt: skip
    assert move.status == 409
    assert (await move.json())["errors"][0]["field"] == field
    unmoved = await catalog.get(f"{child_path}/{other[child]['id']}")
    assert (await unmoved.json())["data"][field] == other[key]["id"]  # nothing changed
    # the child already there keeps working: read, listed under its parent, renamed
    mine = f"{child_path}/{made[child]['id']}"
    assert (await catalog.get(mine)).status == 200
    _, under = await listed(catalog, f"{child_path}?{field}={parent}")
    assert ids(under) == {made[child]["id"]}
    renamed = await catalog.patch(
        mine, json={"name": unique("Kept")}, headers={**ADMIN, "If-Match": '"1"'}
    )
    assert renamed.status == 200, await renamed.text()


async def test_orders_refuse_an_archived_service_and_keep_the_orders_of_one(
    aiohttp_client: Any, aiohttp_server: Any, catalog_dsn: str, orders_dsn: str
) -> None:
    catalog_server = await aiohttp_server(catalog_app(catalog_settings(catalog_dsn)))
    catalog = await aiohttp_client(catalog_server)
    orders = await aiohttp_client(
        orders_app(orders_settings(orders_dsn, catalog_url=str(catalog_server.make_url(""))))
    )
    service = (await chain(catalog))["service"]
    customer = caller(Role.CUSTOMER)
    placed = await orders.post(
        "/v1/orders", json=order_body(service["id"]), headers=customer.headers
    )
    assert placed.status == 201, await placed.text()
    order = (await placed.json())["data"]
    url = f"/v1/services/{service['id']}"
    assert (await catalog.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 204
    refused = await orders.post(
        "/v1/orders", json=order_body(service["id"]), headers=customer.headers
    )
    assert refused.status == 409
    problem = await refused.json()
    assert (problem["code"], problem["errors"][0]["field"]) == ("CONFLICT", "service_id")
    kept = await orders.get(f"/v1/orders/{order['id']}", headers=customer.headers)
    assert kept.status == 200
    assert (await kept.json())["data"]["service_id"] == service["id"]
    restored = await catalog.post(f"{url}/restore", headers={**ADMIN, "If-Match": '"2"'})
    assert restored.status == 200
    again = await orders.post(
        "/v1/orders", json=order_body(service["id"]), headers=customer.headers
    )
    assert again.status == 201, await again.text()


async def test_users_move_into_no_archived_department_and_keep_theirs(
    aiohttp_client: Any, aiohttp_server: Any, departments_dsn: str, users_dsn: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    server = await aiohttp_server(
        departments_app(service_settings(DepartmentsSettings, "departments", departments_dsn))
    )
    departments = await aiohttp_client(server)
    users = await aiohttp_client(
        users_app(
            users_settings(
                users_dsn, departments_url=str(server.make_url("")), storage_dir=str(tmp_path)
            )
        )
    )
    kept, closed = await made_department(departments), await made_department(departments)
    user_id = await make_user(users_dsn)

    async def move(department: str, version: int) -> Any:
        return await users.patch(
            "/v1/users/me", json={"department_id": department},
            headers={**auth(user_id), "If-Match": f'"{version}"'},
        )  # fmt: skip

    assert (await move(kept["id"], 1)).status == 200
    for made in (kept, closed):
        url = f"/v1/departments/{made['id']}"
        assert (await departments.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 204
    refused = await move(closed["id"], 2)
    assert refused.status == 409
    problem = await refused.json()
    assert (problem["code"], problem["errors"][0]["field"]) == ("CONFLICT", "department_id")
    me = await users.get("/v1/users/me", headers=auth(user_id))
    body = (await me.json())["data"]
    assert (body["department_id"], body["version"]) == (kept["id"], 2)  # kept, unchanged
    renamed = await users.patch(
        "/v1/users/me", json={"first_name": "Kept"}, headers={**auth(user_id), "If-Match": '"2"'}
    )
    assert renamed.status == 200, await renamed.text()
