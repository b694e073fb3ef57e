"""Bad input on every write path of every HTTP service: each a 4xx problem+json, and the
database unchanged (read back). Values that are legal but hostile (SQL metacharacters,
unicode edge cases) are stored and read back byte for byte."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from lib.auth.principal import Role
from tests.e2e.service_process import Service
from tests.integration.users_support import make_user
from tests.reliability import figures
from tests.reliability.readback import fingerprint
from tests.reliability.stack import bearer, operations, spec_of

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}

# (what, body bytes, extra headers): each must be refused whatever the operation
BAD_BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("malformed JSON", b'{"name": "x",', JSON),
    ("not an object", b'["name", "x"]', JSON),
    ("wrong content type", b'{"name": "x"}', {"Content-Type": "text/plain"}),
    ("form content type", b"name=x", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("invalid UTF-8", b'{"name": "\xff\xfe\xfd"}', JSON),
    ("lone surrogate", b'{"name": "\\ud800"}', JSON),
    ("NUL byte", b'{"name": "a\\u0000b", "address": "x"}', JSON),
    ("huge body", b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}', JSON),
    ("unknown field", b'{"zzz_unknown": 1}', JSON),
    ("huge number", b'{"name": 1e999999, "address": -99999999999999999999999}', JSON),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, JSON),
]

SQL_META = [
    "'; DROP TABLE departments; --",
    '" OR "1"="1',
    "%_\\' UNION SELECT * FROM pg_user --",
    "$1::text; SELECT pg_sleep(10)",
]
UNICODE_EDGES = [
    "Zoë 😀 İstanbul",
    "e\u0301 combining",
    "\u202eevil rtl",
    "Ωmega ≈ ç √ ∫",
    "\U0001d518\U0001d52b\U0001d526 fraktur",
]


def concrete(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4())).replace("{key}", "k" * 20)


async def refused(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> int:
    async with http.request(method, url, **kw) as resp:
        body = await resp.text()
        assert 400 <= resp.status < 500, (method, url, resp.status, body[:300])
        assert resp.content_type == PROBLEM, (method, url, resp.content_type, body[:300])
        return resp.status


async def bad_bodies_everywhere(service: Service, dsn: str) -> None:
    document = await spec_of(service)
    writes = [
        (method, path)
        for method, path, op in operations(document)
        if method in {"POST", "PUT", "PATCH"} and "application/json" in str(op.get("requestBody"))
    ]
    assert writes
    before = await fingerprint(dsn)
    sent = 0
    async with aiohttp.ClientSession() as http:
        for method, path in writes:
            for _what, body, headers in BAD_BODIES:
                headers = {**headers, **bearer(Role.ADMIN), "If-Match": '"1"'}
                await refused(
                    http, method, service.url + concrete(path), data=body, headers=headers
                )
                sent += 1
            # a header far beyond any limit: refused before any handler runs
            status = await _huge_header(http, method, service.url + concrete(path))
            assert 400 <= status < 500, status
            sent += 1
        async with http.get(f"{service.url}/health") as resp:
            assert resp.status == 200
    assert await fingerprint(dsn) == before, "a refused request changed the database"
    figures.add("bad inputs refused (4xx, nothing changed)", sent)


async def _huge_header(http: aiohttp.ClientSession, method: str, url: str) -> int:
    async with http.request(method, url, headers={"X-Big": "b" * 65536}) as resp:
        return resp.status


async def test_bad_bodies_on_every_departments_write(
    departments: Service, departments_dsn: str
) -> None:
    await bad_bodies_everywhere(departments, departments_dsn)


async def test_bad_bodies_on_every_users_write(users: Service, users_dsn: str) -> None:
    await bad_bodies_everywhere(users, users_dsn)


async def test_bad_fields_and_query_values_on_departments(
    departments: Service, departments_dsn: str
) -> None:
    admin = bearer(Role.ADMIN)
    url = f"{departments.url}/v1/departments"
    refused_bodies: list[Any] = [
        {"name": "a\u0000b", "address": "x"},
        {"name": "bell\u0007", "address": "x"},
        {"name": "x" * 101, "address": "x"},
        {"name": "   ", "address": "x"},
        {"name": -1, "address": "x"},
        {"name": 10**40, "address": "x"},
        {"name": None, "address": "x"},
        {"name": ["x"], "address": "x"},
        {"name": "x", "address": "x", "id": str(uuid.uuid4())},  # mass assignment
        {"name": "x", "address": "x", "version": 99},
    ]
    bad_queries = [
        {"orderby": "name; DROP TABLE departments"},
        {"orderby": "name--"},
        {"sort": "asc' OR '1'='1"},
        {"limit": "-1"},
        {"limit": "99999999999999999999999"},
        {"page": "-5"},
        {"page": "1e9"},
        {"limit": "\u0000"},
    ]
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"name": "Anchor", "address": "1 Main"}, headers=admin) as r:
            assert r.status == 201
            anchor = await r.json()
        before = await fingerprint(departments_dsn)
        for body in refused_bodies:
            await refused(http, "POST", url, json=body, headers=admin)
            await refused(
                http,
                "PATCH",
                f"{url}/{anchor['data']['id']}",
                json=body,
                headers={**admin, "If-Match": f'"{anchor["data"]["version"]}"'},
            )
        for query in bad_queries:
            assert await refused(http, "GET", url, params=query) == 400
        assert await fingerprint(departments_dsn) == before
        # legal but hostile text is stored literally and read back byte for byte
        for text in SQL_META + UNICODE_EDGES:
            async with http.post(url, json={"name": text, "address": text}, headers=admin) as r:
                assert r.status == 201, await r.text()
                made = (await r.json())["data"]
            async with http.get(f"{url}/{made['id']}") as r:
                back = (await r.json())["data"]
            assert (back["name"], back["address"]) == (text, text)
        async with http.get(url, params={"limit": "100"}) as r:
            listed = await r.json()
        assert listed["meta"]["total"] == 1 + len(SQL_META) + len(UNICODE_EDGES)
    figures.add(
        "bad inputs refused (4xx, nothing changed)", 2 * len(refused_bodies) + len(bad_queries)
    )
    figures.add("hostile values stored literally", len(SQL_META) + len(UNICODE_EDGES))


async def test_sql_metacharacters_in_users_search_are_literal(
    users: Service, users_dsn: str
) -> None:
    await make_user(users_dsn, Role.CUSTOMER)  # first name Ada
    moderator = bearer(Role.MODERATOR)
    url = f"{users.url}/v1/users"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params={"search": "Ada"}, headers=moderator) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["meta"]["total"] >= 1  # the positive control
        for search in ["%", "_", "' OR '1'='1", "Ada' --", "%Ada%' OR 1=1 --", "\\"]:
            async with http.get(url, params={"search": search}, headers=moderator) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            assert body["data"] == [], (search, body)
        for orderby in ["last_name; DROP TABLE users", "1", "email DESC, (SELECT 1)"]:
            assert (
                await refused(http, "GET", url, params={"orderby": orderby}, headers=moderator)
                == 400
            )
