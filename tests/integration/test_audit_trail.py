"""The audit trail (ADR 0057) on the real databases: what an event records, that a refusal
or a rolled-back change leaves none, that the table refuses UPDATE and DELETE on both
engines, and the ADMIN list with its filters and paging."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pymysql
import pytest
from aiohttp import web

from lib.auth.principal import Role
from lib.db.audit import redact
from lib.db.connecting import connect
from lib.http.app import create_app
from lib.http.keys import DB
from lib.http.openapi import operation
from lib.redact import REDACTED
from services.departments.db import audit
from services.departments.db import departments as q
from services.departments.handlers import routes as department_routes
from tests import pg
from tests.integration.auth_support import Bearer, settings_for

ADMIN = Bearer(Role.ADMIN)
CUSTOMER = Bearer(Role.CUSTOMER)


async def events(client: Any, query: str = "", who: Any = ADMIN) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/audit-events{query}", headers=who)
    assert resp.status == 200, await resp.text()
    found: list[dict[str, Any]] = (await resp.json())["data"]
    return found


async def test_a_write_records_who_what_and_the_fields_before_and_after(client: Any) -> None:
    name = f"Audit {uuid.uuid4().hex[:8]}"
    rid = f"audit-{uuid.uuid4().hex}"
    made = await client.post(
        "/v1/departments",
        json={"name": name, "address": "1 Quay"},
        headers={**ADMIN, "X-Request-ID": rid},
    )
    assert made.status == 201
    dept = (await made.json())["data"]
    [created] = await events(client, f"?request_id={rid}")
    assert created["subject_id"] == str(ADMIN.user_id)
    assert created["subject_role"] == "ADMIN"
    assert created["action"] == "createADepartment"
    assert (created["resource"], created["resource_id"]) == ("departments", dept["id"])
    assert created["route"] == "POST /v1/departments"
    assert created["before_fields"] is None
    assert created["after_fields"] == {**dept, "address": REDACTED}  # personal: never kept
    assert created["occurred_at"].endswith("Z")

    rid = f"audit-{uuid.uuid4().hex}"
    patched = await client.patch(
        f"/v1/departments/{dept['id']}",
        json={"name": f"{name} 2"},
        headers={**ADMIN, "If-Match": '"1"', "X-Request-ID": rid},
    )
    assert patched.status == 200
    [updated] = await events(client, f"?request_id={rid}")
    assert updated["before_fields"] == {**dept, "address": REDACTED}
    assert updated["after_fields"]["name"] == f"{name} 2"
    assert updated["route"] == "PATCH /v1/departments/{id}"

    rid = f"audit-{uuid.uuid4().hex}"
    gone = await client.delete(
        f"/v1/departments/{dept['id']}",
        headers={**ADMIN, "If-Match": '"2"', "X-Request-ID": rid},
    )
    assert gone.status == 204
    [deleted] = await events(client, f"?request_id={rid}")
    assert deleted["before_fields"]["name"] == f"{name} 2"
    assert deleted["after_fields"] is None
    assert deleted["resource_id"] == dept["id"]


async def test_a_refusal_leaves_no_event(client: Any) -> None:
    name = f"Twice {uuid.uuid4().hex[:8]}"
    first = await client.post(
        "/v1/departments", json={"name": name, "address": "x 1"}, headers=ADMIN
    )
    assert first.status == 201
    for headers, status in (({**CUSTOMER}, 403), ({**ADMIN}, 409)):
        rid = f"refused-{uuid.uuid4().hex}"
        resp = await client.post(
            "/v1/departments",
            json={"name": name, "address": "x 2"},
            headers={**headers, "X-Request-ID": rid},
        )
        assert resp.status == status
        assert await events(client, f"?request_id={rid}") == []


async def test_a_rolled_back_change_leaves_neither_change_nor_event(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    """The handler's write succeeds, then the request fails: both roll back together."""
    routes = web.RouteTableDef()
    name = f"Rolled {uuid.uuid4().hex[:8]}"

    @routes.post("/v1/broken")
    @operation("Write then fail", tags=["departments"], roles=("ADMIN",), status=201)
    async def broken(request: web.Request) -> web.Response:
        async with request.app[DB].acquire() as conn:
            await q.create_department(conn, name=name, address="1 Nowhere")
        raise RuntimeError("after the write")

    client = await aiohttp_client(
        create_app(settings_for(departments_dsn), routes=routes, title="t", audit=audit)
    )
    rid = f"broken-{uuid.uuid4().hex}"
    resp = await client.post("/v1/broken", headers={**ADMIN, "X-Request-ID": rid})
    assert resp.status == 500
    assert await events(client, f"?request_id={rid}") == []
    assert (
        await pg.fetchval(departments_dsn, "SELECT count(*) FROM departments WHERE name = $1", name)
        == 0
    )


async def test_an_app_that_writes_without_audit_queries_does_not_start(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    app = create_app(settings_for(departments_dsn), routes=department_routes, title="t")
    with pytest.raises(RuntimeError, match="records no audit events"):
        await aiohttp_client(app)


async def test_the_list_is_for_admin_only(client: Any) -> None:
    assert (await client.get("/v1/audit-events")).status == 401
    assert (await client.get("/v1/audit-events", headers=CUSTOMER)).status == 403


async def test_the_list_filters_sorts_and_pages(client: Any) -> None:
    who = Bearer(Role.ADMIN)
    for n in range(3):
        resp = await client.post(
            "/v1/departments",
            json={"name": f"Paged {uuid.uuid4().hex[:8]} {n}", "address": "p 1"},
            headers=who,
        )
        assert resp.status == 201
    mine = f"?subject_id={who.user_id}"
    oldest = await events(client, mine)
    assert len(oldest) == 3
    newest = await events(client, f"{mine}&sort=desc")
    assert [e["id"] for e in newest] == [e["id"] for e in reversed(oldest)]
    first = await client.get(f"/v1/audit-events{mine}&limit=2", headers=ADMIN)
    body = await first.json()
    assert body["meta"]["total"] == 3
    cursor = body["meta"]["next_cursor"]
    second = await events(client, f"{mine}&limit=2&cursor={cursor}")
    assert [e["id"] for e in body["data"] + second] == [e["id"] for e in oldest]
    at = oldest[1]["occurred_at"]
    since = await events(client, f"{mine}&since={at.replace('Z', '%2B00:00')}")
    until = await events(client, f"{mine}&until={at.replace('Z', '%2B00:00')}")
    assert since[0]["id"] == oldest[1]["id"]
    assert oldest[0] in until
    assert await events(client, f"{mine}&resource=orders") == []
    bad = await client.get("/v1/audit-events?subject_id=nope", headers=ADMIN)
    assert bad.status == 400


async def test_postgresql_refuses_to_change_or_remove_an_event(
    client: Any, departments_dsn: str
) -> None:
    made = await client.post(
        "/v1/departments",
        json={"name": f"Kept {uuid.uuid4().hex[:8]}", "address": "k 1"},
        headers=ADMIN,
    )
    assert made.status == 201
    async with pg.connected(departments_dsn) as conn:
        for sql in (
            "UPDATE audit_events SET action = 'forged'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT count(*) FROM audit_events") > 0


async def test_mariadb_refuses_to_change_or_remove_an_event(points_dsn: str) -> None:
    db = await connect(points_dsn, min_size=1, max_size=1)
    try:
        async with db.acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO audit_events (action, resource, route, request_id)"
                " VALUES ('AddUserPoints', 'points', 'r', 'append-only')"
            )
            await conn.commit()
            for sql in ("UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"):
                with pytest.raises(pymysql.err.OperationalError, match="append-only"):
                    await cur.execute(sql)
            await cur.execute("SELECT count(*) FROM audit_events WHERE request_id = 'append-only'")
            assert (await cur.fetchone())[0] == 1
    finally:
        await db.close()


def test_redaction_reaches_every_depth() -> None:
    value = {
        "email": "a@b.c",
        "order": {"address": "1 Quay", "description": "a tap", "price": "95.50"},
        "review": {"comment": "fine", "rating": 4.5},
        "last_name": "Lovelace",
        "name": "Plumbing",
        "password": "p",
        "nested": [{"refresh_token": "t", "code": "123456", "currency_code": "EUR"}],
        "totp": {"secret": "S", "otpauth_uri": "otpauth://", "qr_svg": "<svg/>"},
        "recovery_codes": ["a", "b"],
        "challenge": "c",
        "personal_id_number": "123",
        "password_hash": "h",
    }
    assert redact(value) == {
        "email": REDACTED,
        "order": {"address": REDACTED, "description": REDACTED, "price": "95.50"},
        "review": {"comment": REDACTED, "rating": 4.5},
        "last_name": REDACTED,
        "name": "Plumbing",
        "password": REDACTED,
        "nested": [{"refresh_token": REDACTED, "code": REDACTED, "currency_code": "EUR"}],
        "totp": {"secret": REDACTED, "otpauth_uri": REDACTED, "qr_svg": REDACTED},
        "recovery_codes": REDACTED,
        "challenge": REDACTED,
        "personal_id_number": REDACTED,
        "password_hash": REDACTED,
    }
