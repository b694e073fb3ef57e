"""Every list x every sort key x both directions answers its rows in the order an
independent sort of the same rows gives (text by the database's collation, numbers,
times and ids by value; NULLs last ascending, first descending, as PostgreSQL's default).

The lists and their keys come from each service's OpenAPI document (`orderby`'s values,
`sort`'s asc|desc), the services run in-process, wired, on real PostgreSQL (the access
matrix's stack), with the demo data of tools/local/seed.py, provider links, orders and offers
made through the APIs, and the `created_at` of every row spread apart so each key has
several values. A list the data here cannot fill must be named in NOT_FILLED."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests import pg
from tests.integration.auth_support import KEYS, TEST_TOKEN_TTL, bearer
from tests.integration.orders_support import caller, catalog_service, offer_body, order_body
from tests.integration.test_access_matrix import stack  # noqa: F401  (a fixture)
from tools.local import seed

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"
# a key whose rows without a value sort by another, as its `orderby` description documents
FALLBACK = {("GET /v1/conversations", "last_message_at"): "created_at"}


@dataclass(frozen=True)
class Listed:
    service: str
    template: str  # the path, with {id}
    name: str  # "GET path"
    keys: list[str]  # orderby's values
    access: dict[str, Any] | None  # x-access; None: public
    keyset: bool  # takes `cursor` (answers meta.next_cursor)
    orderby_doc: str  # orderby's description


def sorted_lists() -> list[Listed]:
    """Every documented list with `orderby` and `sort`."""
    found = []
    for doc_path in sorted(DOCS.glob("*.json")):
        doc = json.loads(doc_path.read_text())
        for path, methods in doc["paths"].items():
            op = methods.get("get")
            params = {p["name"]: p for p in (op or {}).get("parameters", [])}
            if op is None or "orderby" not in params or "sort" not in params:
                continue
            [choice] = [
                s for s in params["orderby"]["schema"]["anyOf"] if s.get("type") == "string"
            ]
            keys = choice.get("enum") or [choice["const"]]
            found.append(
                Listed(
                    doc_path.stem,
                    path,
                    f"GET {path}",
                    keys,
                    op.get("x-access"),
                    "cursor" in params,
                    params["orderby"].get("description", ""),
                )
            )
    return found


async def spread_created_at(dsn: str) -> None:
    """Rows made in one statement share their created_at: set them minutes apart."""
    async with pg.connected(dsn) as conn:
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


@pytest.fixture
def dsns(
    departments_dsn: str,
    chat_catalog_dsn: str,
    chat_orders_dsn: str,
    chat_dsn: str,
    users_dsn: str,
) -> dict[str, str]:
    """Each service's database in the access matrix's stack fixture, by service name."""
    return {  # names services on purpose: the databases of the access matrix stack fixture
        "departments": departments_dsn,
        "catalog": chat_catalog_dsn,
        "orders": chat_orders_dsn,
        "chat": chat_dsn,
        "users": users_dsn,
    }


async def fill(apps: dict[str, Any], dsns: dict[str, str]) -> dict[Role, dict[str, str]]:
    """The rows of every list; the headers of a caller of each role that sees them."""
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
    for n in range(6):
        body = order_body(service_id, description=f"Order number {n}")
        resp = await apps["orders"].post("/v1/orders", json=body, headers=customer.headers)
        assert resp.status == 201, await resp.text()
        orders.append((await resp.json())["data"]["id"])
    for n, provider in enumerate(providers):
        body = offer_body(price=f"{90 + 7 * n}.00")
        await post(apps["orders"], f"/v1/orders/{orders[0]}/offers", body, provider, 201)
    for n, order_id in enumerate(orders[3:]):  # jobs of one provider, reviewed
        await job(apps["orders"], order_id, providers[0], customer.headers, n)
    conversations = []
    for provider in providers:  # the customer's conversations on orders[0]
        body = {"order_id": orders[0], "provider_id": str(provider)}
        resp = await apps["chat"].post("/v1/conversations", json=body, headers=customer.headers)
        assert resp.status == 201, await resp.text()
        conversations.append((await resp.json())["data"]["id"])
    for made in reversed(conversations[1:]):  # the first has no message
        path = f"/v1/conversations/{made}/messages"
        resp = await apps["chat"].post(path, json={"body": "hello"}, headers=customer.headers)
        assert resp.status == 201, await resp.text()
    for dsn in dsns.values():
        await spread_created_at(dsn)
        await audit_events(dsn)
    return {Role.ADMIN: bearer(Role.ADMIN), Role.CUSTOMER: customer.headers}


async def audit_events(dsn: str) -> None:
    """Events of writes the seed made without the API (departments, users): the audit
    list has rows everywhere, minutes apart, two by two alike but for the time."""
    for n in range(4):
        await pg.execute(
            dsn,
            "INSERT INTO audit_events (occurred_at, subject_id, subject_role, action,"
            " resource, route, request_id) VALUES (now() - $1 * interval '1 minute',"
            " $2, 'ADMIN', 'seedRows', 'seed', 'POST /v1/seed', $3)",
            n + 1,
            uuid.UUID(int=n // 2 + 1),
            f"seed-{n // 2}",
        )


async def post(client: Any, path: str, body: Any, who: uuid.UUID, status: int) -> Any:
    resp = await client.post(path, json=body, headers=bearer_of(Role.PROVIDER, who))
    assert resp.status == status, (path, await resp.text())
    return (await resp.json())["data"]


async def job(
    orders: Any, order_id: str, provider: uuid.UUID, customer: dict[str, str], n: int
) -> None:
    """An offer of `provider` accepted, the job started, completed and reviewed."""
    offer = await post(orders, f"/v1/orders/{order_id}/offers", offer_body(), provider, 201)
    accept = f"/v1/orders/{order_id}/offers/{offer['id']}/accept"
    resp = await orders.post(accept, headers=customer)
    assert resp.status == 200, await resp.text()
    job_id = (await resp.json())["data"]["id"]
    await post(orders, f"/v1/jobs/{job_id}/start", None, provider, 200)
    await post(orders, f"/v1/jobs/{job_id}/complete", None, provider, 200)
    review = {"rating": 3 + n, "comment": f"Review number {n}"}
    resp = await orders.post(f"/v1/jobs/{job_id}/review", json=review, headers=customer)
    assert resp.status == 201, await resp.text()


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
    async with pg.connected(dsn) as conn:
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


async def walk(client: Any, base: str, headers: dict[str, str], total: int) -> list[list[str]]:
    """The list read in about three pages, by `page` and by `cursor`: the rows of each."""
    limit = max(1, -(-total // 3))
    walks: list[list[str]] = [[], []]
    page, cursor = 1, ""
    for _ in range(total // limit + 2):  # bounded: one more page than the rows need
        data = await rows(client, f"{base}&limit={limit}&page={page}", headers)
        walks[0] += [json.dumps(r, sort_keys=True) for r in data]
        page += 1
        if len(data) < limit:
            break
    for _ in range(total // limit + 2):
        resp = await client.get(f"{base}&limit={limit}{cursor}", headers=headers)
        assert resp.status == 200, (base, cursor, await resp.text())
        body = await resp.json()
        walks[1] += [json.dumps(r, sort_keys=True) for r in body["data"]]
        if body["meta"]["next_cursor"] is None:
            break
        cursor = f"&cursor={body['meta']['next_cursor']}"
    return walks


def caller_of(listed: Listed, callers: dict[Role, dict[str, str]]) -> dict[str, str]:
    """No header for a public list; ADMIN when it may; else the one who made the rows."""
    if listed.access is None:
        return {}
    [role, *_] = [r for r in (Role.ADMIN, Role.CUSTOMER) if r.value in listed.access["roles"]]
    return callers[role]


async def test_every_list_every_key_both_directions(
    stack: dict[str, Any],  # noqa: F811  (the fixture)
    dsns: dict[str, str],
) -> None:
    callers = await fill(stack, dsns)
    lists = sorted_lists()
    checked, walked = [], []
    for listed in lists:
        client, dsn, name = stack[listed.service], dsns[listed.service], listed.name
        headers = caller_of(listed, callers)
        path = listed.template
        if "{id}" in path:  # the id with the most rows
            counts = [
                (await count(client, f"{path.format(id=i)}?limit=1000", headers), i)
                for i in await ids_of(dsn)
            ]
            path = path.format(id=max(counts)[1])
        async with pg.connected(dsn) as conn:
            for key in listed.keys:
                fallback = FALLBACK.get((name, key))
                assert fallback is None or fallback in listed.orderby_doc.split(key, 1)[-1]
                base = f"{path}?orderby={key}"
                up = await rows(client, f"{base}&sort=asc&limit=1000", headers)
                down = await rows(client, f"{base}&sort=desc&limit=1000", headers)
                assert all(key in r for r in up), f"{name}: rows without {key}"
                values = [r[key] if fallback is None else r[key] or r[fallback] for r in up]
                assert len({json.dumps(v) for v in values}) >= 2, (
                    f"{name} by {key}: fewer than two values, the order cannot show"
                )
                assert sorted(json.dumps(r, sort_keys=True) for r in up) == sorted(
                    json.dumps(r, sort_keys=True) for r in down
                ), f"{name} by {key}: asc and desc answer different rows"
                assert values == await independent_order(conn, values, False), (
                    f"{name} by {key} asc: {values}"
                )
                down_values = [r[key] if fallback is None else r[key] or r[fallback] for r in down]
                assert down_values == await independent_order(conn, down_values, True), (
                    f"{name} by {key} desc: {down_values}"
                )
                checked.append(f"{name} by {key}")
                for sort, whole in (("asc", up), ("desc", down)):
                    if listed.keyset:
                        in_order = [json.dumps(r, sort_keys=True) for r in whole]
                        by_page, by_cursor = await walk(
                            client, f"{base}&sort={sort}", headers, len(whole)
                        )
                        assert by_page == in_order, f"{name} by {key} {sort}: paged"
                        assert by_cursor == in_order, f"{name} by {key} {sort}: by cursor"
                        walked.append(f"{name} by {key} {sort}")
    assert len(checked) == sum(len(listed.keys) for listed in lists)
    assert len(walked) == 2 * sum(len(listed.keys) for listed in lists if listed.keyset)
    assert {name.split(" by ")[0] for name in checked} == {listed.name for listed in lists}
