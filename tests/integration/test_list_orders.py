"""Every list x every sort key x both directions answers its rows in the order an
independent sort of the same rows gives (text by the database's collation, numbers,
times and ids by value; NULLs last ascending, first descending, as PostgreSQL's default).

The lists and their keys come from each service's OpenAPI document (`orderby`'s values,
`sort`'s asc|desc), the services run in-process, wired, on real PostgreSQL (the access
matrix's stack), with the demo data of tools/seed.py, provider links, orders and offers
made through the APIs, and the `created_at` of every row spread apart so each key has
several values. A list the data here cannot fill must be named in NOT_FILLED."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import asyncpg

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL, bearer
from tests.integration.orders_support import caller, catalog_service, offer_body, order_body
from tests.integration.test_access_matrix import stack, users_dsn  # noqa: F401  (fixtures)
from tools import seed

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"
# lists whose rows need a longer story than this test tells (jobs, reviews: a finished job;
# conversations: chat's own tests, tests/integration/test_chat_api.py)
NOT_FILLED = {"GET /v1/jobs", "GET /v1/providers/{id}/reviews", "GET /v1/conversations"}


def sorted_lists() -> list[tuple[str, str, str, list[str], dict[str, Any] | None]]:
    """(service, path, "GET path", orderby keys, x-access) of every documented list."""
    found = []
    for doc_path in sorted(DOCS.glob("*.json")):
        doc = json.loads(doc_path.read_text())
        for path, methods in doc["paths"].items():
            op = methods.get("get")
            params = {p["name"]: p["schema"] for p in (op or {}).get("parameters", [])}
            if op is None or "orderby" not in params or "sort" not in params:
                continue
            [choice] = [s for s in params["orderby"]["anyOf"] if s.get("type") == "string"]
            keys = choice.get("enum") or [choice["const"]]
            found.append((doc_path.stem, path, f"GET {path}", keys, op.get("x-access")))
    return found


async def spread_created_at(dsn: str) -> None:
    """Rows made in one statement share their created_at: set them minutes apart."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name = 'created_at' AND data_type LIKE 'timestamp%'"
        )
        for row in tables:
            t = row["table_name"]
            await conn.execute(
                f'UPDATE "{t}" SET created_at = "{t}".created_at - s.n * interval \'1 minute\''
                f' FROM (SELECT ctid AS c, row_number() OVER () AS n FROM "{t}") s'
                f' WHERE "{t}".ctid = s.c'
            )
    finally:
        await conn.close()


async def fill(apps: dict[str, Any], dsns: dict[str, str]) -> None:
    for db, seeder, _ in seed.SEEDERS:
        if db in dsns:
            seeder(dsns[db])
    providers = [uuid.uuid4() for _ in range(3)]
    service_id = await catalog_service(apps["catalog"], *providers)
    for n, provider in enumerate(providers):  # and some of the seeded services each
        for seeded in [s.id for s in seed.CATALOG_SERVICES][n:]:
            link = f"/v1/providers/{provider}/services/{seeded}"
            resp = await apps["catalog"].put(link, headers=bearer(Role.ADMIN))
            assert resp.status == 204, await resp.text()
    customer = caller(Role.CUSTOMER)
    orders = []
    for n in range(3):
        body = order_body(service_id, description=f"Order number {n}")
        resp = await apps["orders"].post("/v1/orders", json=body, headers=customer.headers)
        assert resp.status == 201, await resp.text()
        orders.append((await resp.json())["data"]["id"])
    for n, provider in enumerate(providers):
        headers = bearer_of(Role.PROVIDER, provider)
        body = offer_body(price=f"{90 + 7 * n}.00")
        resp = await apps["orders"].post(
            f"/v1/orders/{orders[0]}/offers", json=body, headers=headers
        )
        assert resp.status == 201, await resp.text()
    for dsn in dsns.values():
        await spread_created_at(dsn)


def bearer_of(role: Role, user_id: uuid.UUID) -> dict[str, str]:
    value, _ = TokenSigner(KEYS[0], TEST_TOKEN_TTL).issue(user_id, role, True)
    return {"Authorization": f"Bearer {value}"}


def as_values(values: list[Any]) -> list[Any] | None:
    """The values as what they are: numbers, times, ids; None for text."""
    present = [v for v in values if v is not None]
    for parse in (_number, datetime.fromisoformat, uuid.UUID):
        try:
            return [None if v is None else parse(v) for v in values]
        except (TypeError, ValueError, InvalidOperation):
            continue
    assert all(isinstance(v, str) for v in present), values
    return None


def _number(v: Any) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise TypeError(v)
    return Decimal(str(v))


async def independent_order(conn: asyncpg.Connection, values: list[Any], desc: bool) -> list[Any]:
    """`values` sorted apart from the service: by value, or text by the database's
    collation; NULLs last ascending, first descending."""
    present = [v for v in values if v is not None]
    nulls = [None] * (len(values) - len(present))
    typed = as_values(present)
    if typed is None:
        ordered = list(
            await conn.fetchval(
                "SELECT coalesce(array_agg(v ORDER BY v), '{}') FROM unnest($1::text[]) AS v",
                present,
            )
        )
    else:
        ordered = [present[i] for i in sorted(range(len(typed)), key=lambda i: typed[i])]
    return [*nulls, *reversed(ordered)] if desc else [*ordered, *nulls]


async def rows(client: Any, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, (path, await resp.text())
    data: list[dict[str, Any]] = (await resp.json())["data"]
    return data


async def count(client: Any, path: str, headers: dict[str, str]) -> int:
    """How many rows the list answers; 0 for a 404 (an id of something else)."""
    resp = await client.get(path, headers=headers)
    assert resp.status in (200, 404), (path, await resp.text())
    return len((await resp.json())["data"]) if resp.status == 200 else 0


async def ids_of(dsn: str) -> list[str]:
    """Every uuid of a database: the candidates for a list's path parameter."""
    conn = await asyncpg.connect(dsn)
    try:
        cols = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type = 'uuid'"
        )
        found: set[str] = set()
        for c in cols:
            t, col = c["table_name"], c["column_name"]
            found |= {
                r[0] for r in await conn.fetch(f'SELECT DISTINCT "{col}"::text FROM "{t}" LIMIT 50')
            }
        return sorted(v for v in found if v is not None)
    finally:
        await conn.close()


async def test_every_list_every_key_both_directions(
    stack: dict[str, Any],  # noqa: F811  (the fixture)
    departments_dsn: str,
    chat_catalog_dsn: str,
    chat_orders_dsn: str,
    chat_dsn: str,
    users_dsn: str,  # noqa: F811  (the fixture)
) -> None:
    dsns = {  # names services on purpose: the databases of the access matrix stack fixture
        "departments": departments_dsn,
        "catalog": chat_catalog_dsn,
        "orders": chat_orders_dsn,
        "chat": chat_dsn,
        "users": users_dsn,
    }
    await fill(stack, dsns)
    lists = sorted_lists()
    documented = {name for _, _, name, _, _ in lists}
    assert documented >= NOT_FILLED, f"NOT_FILLED names no list any more: {NOT_FILLED - documented}"
    checked = []
    for service, template, name, keys, access in lists:
        if name in NOT_FILLED:
            continue
        client, dsn = stack[service], dsns[service]
        headers = {} if access is None else bearer(Role.ADMIN)
        assert access is None or "ADMIN" in access["roles"], f"{name}: no caller here"
        path = template
        if "{id}" in template:  # the id with the most rows
            counts = [
                (await count(client, f"{template.format(id=i)}?limit=1000", headers), i)
                for i in await ids_of(dsn)
            ]
            path = template.format(id=max(counts)[1])
        conn = await asyncpg.connect(dsn)
        try:
            for key in keys:
                base = f"{path}?limit=1000&orderby={key}"
                up = await rows(client, f"{base}&sort=asc", headers)
                down = await rows(client, f"{base}&sort=desc", headers)
                assert all(key in r for r in up), f"{name}: rows without {key}"
                values = [r[key] for r in up]
                assert len({json.dumps(v) for v in values}) >= 2, (
                    f"{name} by {key}: fewer than two values, the order cannot show"
                )
                assert sorted(json.dumps(r, sort_keys=True) for r in up) == sorted(
                    json.dumps(r, sort_keys=True) for r in down
                ), f"{name} by {key}: asc and desc answer different rows"
                assert values == await independent_order(conn, values, False), (
                    f"{name} by {key} asc: {values}"
                )
                down_values = [r[key] for r in down]
                assert down_values == await independent_order(conn, down_values, True), (
                    f"{name} by {key} desc: {down_values}"
                )
                checked.append(f"{name} by {key}")
        finally:
            await conn.close()
    assert len(checked) == sum(len(k) for _, _, n, k, _ in lists if n not in NOT_FILLED)
