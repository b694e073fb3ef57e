"""The catalog API against real PostgreSQL: every route, its good and its bad paths."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from services.catalog.app import create_app
from tests import pg
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL, bearer
from tests.integration.catalog_support import ADMIN, catalog_settings, chain, post, unique
from tools.local import seed

PROVIDER_ID = uuid.uuid4()


def as_user(user_id: uuid.UUID, role: Role) -> dict[str, str]:
    value, _ = TokenSigner(KEYS[0], TEST_TOKEN_TTL).issue(user_id, role, True)
    return {"Authorization": f"Bearer {value}"}


PROVIDER = as_user(PROVIDER_ID, Role.PROVIDER)


@pytest.fixture
async def client(aiohttp_client: Any, catalog_dsn: str) -> Any:
    return await aiohttp_client(create_app(catalog_settings(catalog_dsn)))


async def count(dsn: str, sql: str, *args: Any) -> int:
    return int(await pg.fetchval(dsn, sql, *args))


def assert_problem(body: dict[str, Any], status: int, code: str) -> None:
    assert (body["status"], body["code"]) == (status, code)
    assert set(body) >= {"type", "title", "status", "detail", "code", "request_id"}


async def test_taxonomy_round_trip(client: Any) -> None:
    made = await chain(client)
    for path, key in [
        ("/v1/category-types", "type"),
        ("/v1/categories", "category"),
        ("/v1/subcategories", "subcategory"),
        ("/v1/services", "service"),
    ]:
        got = await client.get(f"{path}/{made[key]['id']}")
        assert got.status == 200
        assert (await got.json())["data"] == made[key]
        assert got.headers["ETag"] == '"1"'
    service = made["service"]
    assert (service["base_price"], service["currency"], service["description"]) == (
        "80.50",
        "USD",
        "",
    )
    assert service["subcategory_id"] == made["subcategory"]["id"]
    assert made["category"]["type_id"] == made["type"]["id"]
    assert made["subcategory"]["category_id"] == made["category"]["id"]

    renamed = await client.patch(
        f"/v1/categories/{made['category']['id']}",
        json={"name": "Pipes"},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert renamed.status == 200
    body = (await renamed.json())["data"]
    assert (body["name"], body["type_id"], body["version"]) == ("Pipes", made["type"]["id"], 2)
    assert renamed.headers["ETag"] == '"2"'


async def test_service_patch_and_delete_need_a_current_if_match(
    client: Any, catalog_dsn: str
) -> None:
    service = (await chain(client))["service"]
    url = f"/v1/services/{service['id']}"
    missing = await client.patch(url, json={"base_price": "90"}, headers=ADMIN)
    assert missing.status == 428
    assert_problem(await missing.json(), 428, "PRECONDITION_REQUIRED")
    malformed = await client.patch(
        url, json={"base_price": "90"}, headers={**ADMIN, "If-Match": "1"}
    )
    assert malformed.status == 400
    stale = await client.patch(url, json={"base_price": "90"}, headers={**ADMIN, "If-Match": '"5"'})
    assert stale.status == 412
    assert 'current ETag "1"' in (await stale.json())["detail"]
    assert (await client.delete(url, headers=ADMIN)).status == 428

    patched = await client.patch(
        url,
        json={"base_price": 95.5, "currency": "EUR", "description": "Any tap.\nAny sink."},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert patched.status == 200
    body = (await patched.json())["data"]
    assert (body["base_price"], body["currency"], body["version"]) == ("95.50", "EUR", 2)
    assert (body["name"], body["description"]) == (service["name"], "Any tap.\nAny sink.")

    assert (await client.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 412
    assert (await client.delete(url, headers={**ADMIN, "If-Match": '"2"'})).status == 204
    kept = await client.get(url)  # archived, not deleted (ADR 0058)
    assert (kept.status, kept.headers["ETag"]) == (200, '"3"')
    assert (await kept.json())["data"]["archived_at"] is not None
    unknown = f"/v1/services/{uuid.uuid4()}"
    gone = await client.patch(unknown, json={"name": "x"}, headers={**ADMIN, "If-Match": '"2"'})
    assert gone.status == 404
    assert (await client.delete(unknown, headers={**ADMIN, "If-Match": '"2"'})).status == 404
    assert (
        await count(
            catalog_dsn, "SELECT count(*) FROM services WHERE id = $1", uuid.UUID(service["id"])
        )
        == 1
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/categories", {"type_id": "{id}", "name": "Orphan"}),
        ("/v1/subcategories", {"category_id": "{id}", "name": "Orphan"}),
        ("/v1/services", {"subcategory_id": "{id}", "name": "Orphan", "base_price": "1"}),
    ],
)
async def test_unknown_parent_is_404_naming_it_and_writes_nothing(
    client: Any, catalog_dsn: str, path: str, body: dict[str, Any]
) -> None:
    parent = str(uuid.uuid4())
    field = next(k for k, v in body.items() if v == "{id}")
    table = path.removeprefix("/v1/")
    before = await count(catalog_dsn, f"SELECT count(*) FROM {table}")
    resp = await client.post(path, json={**body, field: parent}, headers=ADMIN)
    assert resp.status == 404
    problem = await resp.json()
    assert_problem(problem, 404, "NOT_FOUND")
    assert field in problem["detail"]
    assert parent in problem["detail"]
    assert await count(catalog_dsn, f"SELECT count(*) FROM {table}") == before


async def test_unknown_parent_on_patch_is_404_and_changes_nothing(client: Any) -> None:
    made = await chain(client)
    url = f"/v1/services/{made['service']['id']}"
    parent = str(uuid.uuid4())
    resp = await client.patch(
        url, json={"subcategory_id": parent}, headers={**ADMIN, "If-Match": '"1"'}
    )
    assert resp.status == 404
    assert parent in (await resp.json())["detail"]
    assert (await (await client.get(url)).json())["data"] == made["service"]


async def test_a_name_is_unique_within_its_parent_only(client: Any, catalog_dsn: str) -> None:
    made = await chain(client)
    sub_id = made["subcategory"]["id"]
    before = await count(catalog_dsn, "SELECT count(*) FROM services")
    taken = await client.post(
        "/v1/services",
        json={"subcategory_id": sub_id, "name": "Fix a leak", "base_price": "1"},
        headers=ADMIN,
    )
    assert taken.status == 409
    assert_problem(await taken.json(), 409, "CONFLICT")
    assert await count(catalog_dsn, "SELECT count(*) FROM services") == before
    # the same name under another parent is fine
    other = await post(
        client, "/v1/subcategories", {"category_id": made["category"]["id"], "name": "Drains"}
    )
    twin = await post(
        client,
        "/v1/services",
        {"subcategory_id": other["id"], "name": "Fix a leak", "base_price": "2"},
    )
    # moving it next to its namesake is refused too, and changes nothing
    moved = await client.patch(
        f"/v1/services/{twin['id']}",
        json={"subcategory_id": sub_id},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert moved.status == 409
    still = (await (await client.get(f"/v1/services/{twin['id']}")).json())["data"]
    assert (still["subcategory_id"], still["version"]) == (other["id"], 1)
    # category types: names are unique overall
    dup = await client.post(
        "/v1/category-types", json={"name": made["type"]["name"]}, headers=ADMIN
    )
    assert dup.status == 409
    dup_sub = await client.post(
        "/v1/subcategories",
        json={"category_id": made["category"]["id"], "name": "Leaks"},
        headers=ADMIN,
    )
    assert dup_sub.status == 409


async def test_lists_filter_order_and_page(client: Any) -> None:
    made = await chain(client)
    sub_id = made["subcategory"]["id"]
    for name, price in [("Alpha", "300"), ("Beta", "5.25"), ("Gamma", "42")]:
        await post(
            client, "/v1/services", {"subcategory_id": sub_id, "name": name, "base_price": price}
        )
    resp = await client.get(
        "/v1/services",
        params={"subcategory_id": sub_id, "orderby": "base_price", "sort": "desc", "limit": "2"},
    )
    assert resp.status == 200
    page = await resp.json()
    assert [s["base_price"] for s in page["data"]] == ["300.00", "80.50"]
    cursor = page["meta"].pop("next_cursor")
    assert page["meta"] == {"total": 4, "limit": 2, "page": 1}
    second = await (
        await client.get(
            "/v1/services",
            params={
                "subcategory_id": sub_id,
                "orderby": "base_price",
                "sort": "desc",
                "limit": "2",
                "page": "2",
            },
        )
    ).json()
    assert [s["name"] for s in second["data"]] == ["Gamma", "Beta"]
    params = {"subcategory_id": sub_id, "orderby": "base_price", "sort": "desc", "limit": "2"}
    after = await (await client.get("/v1/services", params={**params, "cursor": cursor})).json()
    assert after["data"] == second["data"]
    assert after["meta"] == {"limit": 2, "next_cursor": after["meta"]["next_cursor"]}
    by_name = await (await client.get("/v1/services", params={"subcategory_id": sub_id})).json()
    assert [s["name"] for s in by_name["data"]] == ["Alpha", "Beta", "Fix a leak", "Gamma"]

    cats = await (await client.get("/v1/categories", params={"type_id": made["type"]["id"]})).json()
    assert [c["id"] for c in cats["data"]] == [made["category"]["id"]]
    assert cats["meta"]["total"] == 1
    subs = await (
        await client.get("/v1/subcategories", params={"category_id": made["category"]["id"]})
    ).json()
    assert [c["id"] for c in subs["data"]] == [sub_id]
    types = await (await client.get("/v1/category-types", params={"sort": "desc"})).json()
    names = [t["name"] for t in types["data"]]
    assert made["type"]["name"] in names
    assert names == sorted(names, reverse=True)
    empty = await (await client.get("/v1/categories", params={"type_id": str(uuid.uuid4())})).json()
    assert empty == {"data": [], "meta": {"total": 0, "limit": 100, "page": 1}}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/services", {"orderby": "description"}),
        ("/v1/category-types", {"orderby": "base_price"}),
        ("/v1/categories", {"type_id": "nope"}),
        ("/v1/subcategories", {"subcategory_id": str(uuid.uuid4())}),
        ("/v1/providers/{p}/services", {"orderby": "base_price"}),
        ("/v1/services/{s}/providers", {"orderby": "name"}),
    ],
)
async def test_bad_list_parameters_are_400(client: Any, path: str, params: dict[str, str]) -> None:
    service = (await chain(client))["service"]
    url = path.format(p=uuid.uuid4(), s=service["id"])
    resp = await client.get(url, params=params)
    assert resp.status == 400
    assert_problem(await resp.json(), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "path",
    ["/v1/category-types", "/v1/categories", "/v1/subcategories", "/v1/services"],
)
async def test_get_unknown_is_404_and_malformed_id_400(client: Any, path: str) -> None:
    assert (await client.get(f"{path}/{uuid.uuid4()}")).status == 404
    bad = await client.get(f"{path}/not-a-uuid")
    assert bad.status == 400
    assert (await bad.json())["errors"][0]["field"] == "id"


async def test_writes_need_an_admin(client: Any, catalog_dsn: str) -> None:
    made = await chain(client)
    sub_id = made["subcategory"]["id"]
    body = {"subcategory_id": sub_id, "name": "Sneaky", "base_price": "1"}
    for headers, status in [({}, 401), (PROVIDER, 403), (bearer(Role.MODERATOR), 403)]:
        assert (await client.post("/v1/services", json=body, headers=headers)).status == status
        url = f"/v1/category-types/{made['type']['id']}"
        patch = await client.patch(url, json={"name": "x"}, headers={**headers, "If-Match": '"1"'})
        assert patch.status == status
        delete = await client.delete(
            f"/v1/services/{made['service']['id']}", headers={**headers, "If-Match": '"1"'}
        )
        assert delete.status == status
    assert await count(catalog_dsn, "SELECT count(*) FROM services WHERE name = 'Sneaky'") == 0
    assert (await (await client.get(f"/v1/services/{made['service']['id']}")).json())["data"][
        "version"
    ] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"extra": 1}, 400),
        ({"version": 3}, 403),
        ({"id": str(uuid.uuid4())}, 403),
        ({"name": "  "}, 400),
        ({"name": "a" * 201}, 400),
        ({"name": "bad\x00name"}, 400),
        ({"description": "x" * 2001}, 400),
        ({"description": "nul\x00"}, 400),
        ({"base_price": "-1"}, 400),
        ({"base_price": "1.234"}, 400),
        ({"base_price": "12345678901.00"}, 400),
        ({"base_price": "NaN"}, 400),
        ({"currency": "usd"}, 400),
        ({"currency": "EURO"}, 400),
        ({"subcategory_id": "nope"}, 400),
    ],
)
async def test_bad_service_bodies_are_refused_on_create_and_patch(
    client: Any, body: dict[str, Any], status: int
) -> None:
    made = await chain(client)
    good = {"subcategory_id": made["subcategory"]["id"], "name": unique("Svc"), "base_price": "1"}
    created = await client.post("/v1/services", json={**good, **body}, headers=ADMIN)
    assert created.status == status, await created.text()
    url = f"/v1/services/{made['service']['id']}"
    patched = await client.patch(url, json=body, headers={**ADMIN, "If-Match": '"1"'})
    assert patched.status == status
    assert (await (await client.get(url)).json())["data"] == made["service"]


@pytest.mark.parametrize(
    "body",
    [
        {},  # an empty PATCH
        {"name": None},  # null for a required field
        {"type_id": None},
    ],
)
async def test_bad_patch_bodies(client: Any, body: dict[str, Any]) -> None:
    made = await chain(client)
    url = f"/v1/categories/{made['category']['id']}"
    resp = await client.patch(url, json=body, headers={**ADMIN, "If-Match": '"1"'})
    assert resp.status == 400
    assert (await (await client.get(url)).json())["data"] == made["category"]


async def test_provider_links(client: Any, catalog_dsn: str) -> None:
    made = await chain(client)
    service_id = made["service"]["id"]
    mine = f"/v1/providers/me/services/{service_id}"
    for _ in range(2):  # idempotent
        assert (await client.put(mine, headers=PROVIDER)).status == 204
    assert (
        await count(
            catalog_dsn,
            "SELECT count(*) FROM provider_services WHERE provider_id = $1",
            PROVIDER_ID,
        )
        == 1
    )
    offered = await (await client.get(f"/v1/providers/{PROVIDER_ID}/services")).json()
    assert offered == {
        "data": [made["service"]],
        "meta": {"total": 1, "limit": 100, "page": 1, "next_cursor": None},
    }

    other = uuid.uuid4()  # an ADMIN links any provider, by id
    assert (
        await client.put(f"/v1/providers/{other}/services/{service_id}", headers=ADMIN)
    ).status == 204
    providers = await (await client.get(f"/v1/services/{service_id}/providers")).json()
    assert [p["provider_id"] for p in providers["data"]] == sorted([str(PROVIDER_ID), str(other)])
    assert providers["meta"]["total"] == 2
    desc = await (
        await client.get(f"/v1/services/{service_id}/providers", params={"sort": "desc"})
    ).json()
    assert [p["provider_id"] for p in desc["data"]] == sorted(
        [str(PROVIDER_ID), str(other)], reverse=True
    )

    # another provider's links, a customer, no token
    theirs = f"/v1/providers/{other}/services/{service_id}"
    assert (await client.put(theirs, headers=PROVIDER)).status == 403
    assert (await client.delete(theirs, headers=PROVIDER)).status == 403
    assert (await client.put(mine, headers=bearer(Role.CUSTOMER))).status == 403
    assert (await client.put(mine)).status == 401
    by_id = f"/v1/providers/{PROVIDER_ID}/services/{service_id}"
    assert (await client.put(by_id, headers=PROVIDER)).status == 204

    missing = await client.put(f"/v1/providers/me/services/{uuid.uuid4()}", headers=PROVIDER)
    assert missing.status == 404
    assert_problem(await missing.json(), 404, "NOT_FOUND")
    bad = await client.put("/v1/providers/me/services/nope", headers=PROVIDER)
    assert bad.status == 400
    assert (
        await client.put(f"/v1/providers/nope/services/{service_id}", headers=ADMIN)
    ).status == 400

    for _ in range(2):  # idempotent
        assert (await client.delete(by_id, headers=PROVIDER)).status == 204
    assert (
        await client.delete(f"/v1/providers/me/services/{uuid.uuid4()}", headers=PROVIDER)
    ).status == 404
    after = await (await client.get(f"/v1/services/{service_id}/providers")).json()
    assert [p["provider_id"] for p in after["data"]] == [str(other)]
    none = await (await client.get(f"/v1/providers/{PROVIDER_ID}/services")).json()
    assert none["data"] == []

    # archiving the service keeps its links (ADR 0058); no new one
    url = f"/v1/services/{service_id}"
    assert (await client.delete(url, headers={**ADMIN, "If-Match": '"1"'})).status == 204
    after = await (await client.get(f"{url}/providers")).json()
    assert [p["provider_id"] for p in after["data"]] == [str(other)]
    refused = await client.put(by_id, headers=PROVIDER)
    assert refused.status == 409
    assert_problem(await refused.json(), 409, "CONFLICT")
    assert "archived" in (await refused.json())["detail"]
    theirs_listed = await (await client.get(f"/v1/providers/{other}/services")).json()
    assert [s["id"] for s in theirs_listed["data"]] == [service_id]
    assert theirs_listed["data"][0]["archived_at"] is not None


async def test_the_seeded_catalog_is_served(aiohttp_client: Any, migrated_db: Any) -> None:
    dsn = migrated_db("catalog")
    seed.seed_catalog(dsn)
    client = await aiohttp_client(create_app(catalog_settings(dsn)))
    types = await (await client.get("/v1/category-types")).json()
    assert [t["name"] for t in types["data"]] == ["Cleaning", "Home Repair"]
    services = await (
        await client.get("/v1/services", params={"subcategory_id": seed.LEAKS})
    ).json()
    expected = sorted(
        (s.name, s.id, f"{s.base_price:.2f}")
        for s in seed.CATALOG_SERVICES
        if s.subcategory_id == seed.LEAKS
    )
    assert expected  # the seed has services there
    assert [(s["name"], s["id"], s["base_price"]) for s in services["data"]] == expected
    assert services["meta"]["total"] == len(expected)
