"""The departments API against real PostgreSQL: every parameter, every bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from lib.auth.principal import Role
from lib.auth.tokens import signed_header
from tests import pg
from tests.integration.auth_support import KEYS, Bearer, bearer, token

ADMIN = Bearer(Role.ADMIN)


async def create(client: Any, name: str, address: str = "1 Main St") -> dict[str, Any]:
    resp = await client.post(
        "/v1/departments", json={"name": name, "address": address}, headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = (await resp.json())["data"]
    assert resp.headers["ETag"] == f'"{body["version"]}"'
    assert resp.headers["Location"] == f"/v1/departments/{body['id']}"
    return body


def assert_problem(body: dict[str, Any], status: int, code: str) -> None:
    assert body["status"] == status
    assert body["code"] == code
    assert set(body) >= {"type", "title", "status", "detail", "code", "request_id"}


async def test_crud_round_trip(client: Any) -> None:
    made = await create(client, f"Ops {uuid.uuid4().hex[:6]}", "9 Elm St")
    assert made["version"] == 1
    assert made["created_at"].endswith("Z")
    got = await client.get(f"/v1/departments/{made['id']}")
    assert got.status == 200
    assert (await got.json())["data"] == made
    assert got.headers["ETag"] == '"1"'

    patched = await client.patch(
        f"/v1/departments/{made['id']}",
        json={"address": "10 Elm St"},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert patched.status == 200
    body = (await patched.json())["data"]
    assert (body["address"], body["name"], body["version"]) == ("10 Elm St", made["name"], 2)
    assert patched.headers["ETag"] == '"2"'

    stale = await client.delete(
        f"/v1/departments/{made['id']}", headers={**ADMIN, "If-Match": '"1"'}
    )
    assert stale.status == 412
    assert_problem(await stale.json(), 412, "PRECONDITION_FAILED")
    deleted = await client.delete(
        f"/v1/departments/{made['id']}", headers={**ADMIN, "If-Match": 'W/"2"'}
    )
    assert deleted.status == 204  # archived: test_archive.py


async def test_if_match_required_and_checked(client: Any) -> None:
    made = await create(client, f"IfMatch {uuid.uuid4().hex[:6]}")
    url = f"/v1/departments/{made['id']}"
    missing = await client.patch(url, json={"name": "x"}, headers=ADMIN)
    assert missing.status == 428
    assert_problem(await missing.json(), 428, "PRECONDITION_REQUIRED")
    bad = await client.patch(url, json={"name": "x"}, headers={**ADMIN, "If-Match": "1"})
    assert bad.status == 400
    stale = await client.patch(url, json={"name": "x"}, headers={**ADMIN, "If-Match": '"7"'})
    assert stale.status == 412
    assert 'current ETag "1"' in (await stale.json())["detail"]
    no_delete = await client.delete(url, headers=ADMIN)
    assert no_delete.status == 428
    unknown = await client.patch(
        f"/v1/departments/{uuid.uuid4()}", json={"name": "x"}, headers={**ADMIN, "If-Match": '"1"'}
    )
    assert unknown.status == 404
    still = await client.get(url)
    assert (await still.json())["data"]["version"] == 1  # nothing changed


async def test_duplicate_name_is_409_and_leaves_no_row(client: Any, departments_dsn: str) -> None:
    name = f"Dup {uuid.uuid4().hex[:6]}"
    first = await create(client, name)
    key = f"dup-{uuid.uuid4().hex}"
    async with pg.connected(departments_dsn) as conn:
        before = await conn.fetchval("SELECT count(*) FROM departments")
        again = await client.post(
            "/v1/departments",
            json={"name": name, "address": "x"},
            headers={**ADMIN, "Idempotency-Key": key},
        )
        assert again.status == 409
        assert_problem(await again.json(), 409, "CONFLICT")
        assert await conn.fetchval("SELECT count(*) FROM departments") == before
        rows = await conn.fetch("SELECT id, address FROM departments WHERE name = $1", name)
        assert [(str(r["id"]), r["address"]) for r in rows] == [(first["id"], first["address"])]
        stored = await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key)
        assert stored == 0  # a refused create is not replayed: the key stays free

        other = await create(client, f"Other {uuid.uuid4().hex[:6]}")
        renamed = await client.patch(
            f"/v1/departments/{other['id']}",
            json={"name": name},
            headers={**ADMIN, "If-Match": '"1"'},
        )
        assert renamed.status == 409
        row = await conn.fetchrow("SELECT name, version FROM departments WHERE id = $1",
                                  uuid.UUID(other["id"]))  # fmt: skip
        assert (row["name"], row["version"]) == (other["name"], 1)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "a", "address": "b", "extra": 1}, 400, "VALIDATION_ERROR"),
        ({"name": "a", "address": "b", "version": 3}, 403, "FORBIDDEN"),
        ({"name": "a", "address": "b", "id": str(uuid.uuid4())}, 403, "FORBIDDEN"),
        ({"name": "   ", "address": "b"}, 400, "VALIDATION_ERROR"),
        ({"name": "a" * 101, "address": "b"}, 400, "VALIDATION_ERROR"),
        ({"address": "b"}, 400, "VALIDATION_ERROR"),
        ({"name": 5, "address": "b"}, 400, "VALIDATION_ERROR"),
        ({"name": "a\u0000b", "address": "b"}, 400, "VALIDATION_ERROR"),
        ({"name": "line\nbreak", "address": "b"}, 400, "VALIDATION_ERROR"),
    ],
)  # fmt: skip
async def test_bad_bodies_are_refused_and_create_nothing(
    client: Any, body: dict[str, Any], status: int, code: str
) -> None:
    before = (await (await client.get("/v1/departments?limit=1")).json())["meta"]["total"]
    resp = await client.post("/v1/departments", json=body, headers=ADMIN)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert_problem(problem, status, code)
    if code == "VALIDATION_ERROR" and "errors" in problem:
        assert all(set(e) == {"field", "message"} for e in problem["errors"])
    after = (await (await client.get("/v1/departments?limit=1")).json())["meta"]["total"]
    assert after == before


async def test_unknown_field_names_the_field(client: Any) -> None:
    resp = await client.post(
        "/v1/departments", json={"name": "a", "address": "b", "colour": "red"}, headers=ADMIN
    )
    assert (await resp.json())["errors"] == [{"field": "colour", "message": "unknown field"}]


@pytest.mark.parametrize("body", [{}, {"name": None}, {"name": None, "address": None}])
async def test_patch_needs_a_field(client: Any, body: dict[str, Any]) -> None:
    made = await create(client, f"Empty {uuid.uuid4().hex[:6]}")
    resp = await client.patch(
        f"/v1/departments/{made['id']}", json=body, headers={**ADMIN, "If-Match": '"1"'}
    )
    assert resp.status == 400
    assert (await (await client.get(f"/v1/departments/{made['id']}")).json())["data"] == made


async def test_malformed_id_is_400(client: Any) -> None:
    resp = await client.get("/v1/departments/not-a-uuid")
    assert resp.status == 400
    assert (await resp.json())["errors"] == [{"field": "id", "message": "must be a UUID"}]


# --- listing ---------------------------------------------------------------------------


@pytest.fixture
async def listed(client: Any) -> tuple[Any, list[dict[str, Any]]]:
    tag = uuid.uuid4().hex[:6]
    made = [await create(client, f"L{tag} {c}", f"{9 - i} Road") for i, c in enumerate("cabd")]
    return client, made


async def test_list_orders_and_pages(listed: tuple[Any, list[dict[str, Any]]]) -> None:
    client, _ = listed
    everything = await (await client.get("/v1/departments?limit=1000")).json()
    rows = everything["data"]
    assert everything["meta"] == {"total": len(rows), "limit": 1000, "page": 1}
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)  # default: name asc
    for orderby in ("name", "address", "created_at"):
        for sort in ("asc", "desc"):
            got = (
                await (
                    await client.get(f"/v1/departments?limit=1000&orderby={orderby}&sort={sort}")
                ).json()
            )["data"]
            keys = [(r[orderby], r["id"]) for r in got]
            assert keys == sorted(keys, reverse=sort == "desc"), (orderby, sort)
    page2 = await (await client.get("/v1/departments?limit=2&page=2")).json()
    assert page2["data"] == rows[2:4]
    assert page2["meta"] == {"total": len(rows), "limit": 2, "page": 2}
    first = await client.get("/v1/departments?limit=2")
    beyond = await client.get("/v1/departments?limit=2&page=100000")
    # no row carries the total and the stamp past the end: they are read on their own
    assert await beyond.json() == {
        "data": [],
        "meta": {"total": len(rows), "limit": 2, "page": 100000},
    }
    version = lambda resp: resp.headers["ETag"].strip('"').split(".")[0]  # noqa: E731
    assert version(beyond) == version(first)


@pytest.mark.parametrize("orderby", ["salary", "name;DROP TABLE departments", "name%20desc"])
async def test_bad_list_parameters(client: Any, orderby: str) -> None:
    """departments' own sort keys; limit, page, sort, unknown and repeated parameters are
    ListQuery's, as every list's (test_http_parsing's test_list_* tests)."""
    resp = await client.get(f"/v1/departments?orderby={orderby}")
    assert resp.status == 400
    body = await resp.json()
    assert_problem(body, 400, "VALIDATION_ERROR")
    assert [e["field"] for e in body["errors"]] == ["orderby"]
    assert (await client.get("/v1/departments?limit=1")).status == 200  # table still there


# --- auth ------------------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    return {
        "iss": "fixup-users", "aud": "fixup", "sub": str(uuid.uuid4()), "role": "ADMIN",
        "verified": True, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, **overrides,
    }  # fmt: skip


def signed_with_the_real_key(**overrides: Any) -> str:
    """A token with `claims(**overrides)` and a valid signature: only the claims are wrong."""
    return jwt.encode(
        claims(**overrides), KEYS[0], algorithm="EdDSA", headers=signed_header(KEYS[0])
    )


async def test_wrong_audience_with_the_real_key_is_401(client: Any) -> None:
    right = signed_with_the_real_key()
    accepted = await client.get("/v1/departments", headers={"Authorization": f"Bearer {right}"})
    assert accepted.status == 200  # the same claims, signature and key pass: only aud differs
    for aud in ("someone-else", ["someone-else"], ["fixup", "other"], ""):  # strict: "fixup" only
        wrong = signed_with_the_real_key(aud=aud)
        resp = await client.get("/v1/departments", headers={"Authorization": f"Bearer {wrong}"})
        assert resp.status == 401, aud
        body = await resp.json()
        assert_problem(body, 401, "UNAUTHORIZED")
        assert body["detail"] == "invalid token"


async def test_no_token_and_wrong_role(client: Any) -> None:
    none = await client.post("/v1/departments", json={"name": "n", "address": "a"})
    assert none.status == 401
    for role in (Role.CUSTOMER, Role.PROVIDER, Role.MODERATOR):
        resp = await client.post(
            "/v1/departments", json={"name": "n", "address": "a"}, headers=bearer(role)
        )
        assert resp.status == 403, role
        assert_problem(await resp.json(), 403, "FORBIDDEN")
    basic = await client.get("/v1/departments", headers={"Authorization": "Basic abc"})
    assert basic.status == 401


async def test_cookie_writes_need_an_allowed_origin(client: Any) -> None:
    cookie = {"Cookie": f"fixup_access={token(Role.ADMIN)}"}
    body = {"name": f"Cookie {uuid.uuid4().hex[:6]}", "address": "a"}
    no_origin = await client.post("/v1/departments", json=body, headers=cookie)
    assert no_origin.status == 403
    evil = await client.post(
        "/v1/departments", json=body, headers={**cookie, "Origin": "https://evil.test"}
    )
    assert evil.status == 403
    good = await client.post(
        "/v1/departments", json=body, headers={**cookie, "Origin": "http://localhost:8080"}
    )
    assert good.status == 201
    assert good.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    assert good.headers["Cache-Control"] == "no-store"
    # every write, not only a create: a PATCH without the Origin is refused, nothing changed
    url = f"/v1/departments/{(await good.json())['data']['id']}"
    patch = await client.patch(url, json={"address": "b"}, headers={**cookie, "If-Match": '"1"'})
    assert patch.status == 403
    assert (await (await client.get(url)).json())["data"]["address"] == "a"


# --- cross-cutting ---------------------------------------------------------------------


async def test_idempotency_key_replays_and_creates_nothing_new(client: Any) -> None:
    body = {"name": f"Idem {uuid.uuid4().hex[:6]}", "address": "a"}
    headers = {**ADMIN, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/v1/departments", json=body, headers=headers)
    second = await client.post("/v1/departments", json=body, headers=headers)
    assert (first.status, second.status) == (201, 201)
    assert await first.json() == await second.json()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Idempotent-Replayed"] == "true"
    names = [
        d["name"] for d in (await (await client.get("/v1/departments?limit=1000")).json())["data"]
    ]
    assert names.count(body["name"]) == 1
    other = await client.post("/v1/departments", json={**body, "address": "b"}, headers=headers)
    assert other.status == 409
    bad_key = await client.post(
        "/v1/departments", json=body, headers={**ADMIN, "Idempotency-Key": "has space"}
    )
    assert bad_key.status == 400


async def test_concurrent_duplicates_create_once(client: Any) -> None:
    import asyncio

    body = {"name": f"Race {uuid.uuid4().hex[:6]}", "address": "a"}
    headers = {**ADMIN, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *[client.post("/v1/departments", json=body, headers=headers) for _ in range(5)]
    )
    assert [r.status for r in responses] == [201] * 5
    ids = {(await r.json())["data"]["id"] for r in responses}
    assert len(ids) == 1


async def test_health_ready_metrics_openapi(client: Any) -> None:
    assert await (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"]["database"] == "ok"
    await client.get("/v1/departments?limit=1")
    metrics = await (await client.get("/metrics")).text()
    assert (
        'http_requests_total{method="GET",route="/v1/departments",service="departments",status="200"}'
        in metrics
    )
    assert "http_request_duration_seconds_bucket" in metrics
    spec = await (await client.get("/v1/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] == [{"url": "/api/departments"}]


async def test_ready_is_503_once_the_drain_begins(client: Any) -> None:
    """SIGTERM's drain runs the app's on_shutdown: from then on /ready says "not me" (a
    balancer that probes stops sending) while in-flight requests still complete."""
    assert (await client.get("/ready")).status == 200
    await client.app.shutdown()  # what run_app's graceful exit calls after closing the port
    ready = await client.get("/ready")
    assert (ready.status, ready.headers["Retry-After"]) == (503, "1")
    assert (await ready.json())["code"] == "SERVICE_UNAVAILABLE"
    assert (await client.get("/v1/departments?limit=1")).status == 200  # still serving


async def test_patch_with_null_for_a_required_field_is_400_and_changes_nothing(
    client: Any,
) -> None:
    made = await create(client, f"Nulls {uuid.uuid4().hex[:6]}", "3 Elm St")
    url = f"/v1/departments/{made['id']}"
    resp = await client.patch(
        url, json={"name": None, "address": "4 Elm St"}, headers={**ADMIN, "If-Match": '"1"'}
    )
    assert resp.status == 400
    body = await resp.json()
    assert_problem(body, 400, "VALIDATION_ERROR")
    assert [e["field"] for e in body["errors"]] == ["name"]
    assert (await (await client.get(url)).json())["data"] == made
