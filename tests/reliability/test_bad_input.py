"""Bad input on every write path of every HTTP service: each a 4xx problem+json, and the
database unchanged (read back). Values that are legal but hostile (SQL metacharacters,
unicode edge cases) are stored and read back byte for byte."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from lib.auth.principal import Role
from tests.integration.orders_support import offer_body, order_body
from tests.integration.users_support import make_user
from tests.reliability import figures
from tests.reliability.bad_values import Bad, body_values, named, parameter_values, raw_request
from tests.reliability.readback import fingerprint
from tests.reliability.stack import bearer, operations, spec_of
from tests.reliability.world import Orders, actor, call, catalog_service, talk, ws_url
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

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
    """Every parameter of the template filled: a new UUID, and a well-formed picture key."""
    path = path.replace("{key}", "k" * 20)
    return re.sub(r"\{[a-z_]+\}", lambda _: str(uuid.uuid4()), path)


async def refused(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> int:
    async with http.request(method, url, **kw) as resp:
        body = await resp.text()
        assert 400 <= resp.status < 500, (method, url, resp.status, body[:300])
        assert resp.content_type == PROBLEM, (method, url, resp.content_type, body[:300])
        return resp.status


# what a refused *body* answers: not 401/403/404/409/412, which come before the body is read
# and would prove nothing about it
BODY_REFUSALS = {400, 413, 415}


@dataclass(frozen=True)
class Target:
    """Where a write route's bad bodies go: a concrete path (a REAL row for an {id} route)
    and the headers of a caller allowed to write there (with the row's If-Match); `body`,
    one the route takes, is what a bad header value is sent with (some routes read the
    body before the header)."""

    path: str
    headers: dict[str, str]
    body: Any = None


def if_match(row: dict[str, Any]) -> dict[str, str]:
    return {"If-Match": f'"{row["version"]}"'}


async def bad_bodies_everywhere(
    service: ServiceProcess, dsn: str, targets: dict[tuple[str, str], Target] | None = None
) -> None:
    """Every BAD_BODIES case on every JSON write of the document, each refused as a body
    (400/413/415) and the database unchanged. `targets`: per (METHOD, path template), the
    real row and caller; every route with an {id} must have one, the others default to an
    ADMIN on the path as is."""
    targets = targets or {}
    document = await spec_of(service)
    writes = [
        (method, path)
        for method, path, op in operations(document)
        if method in {"POST", "PUT", "PATCH"} and "application/json" in str(op.get("requestBody"))
    ]
    assert writes
    missing = [w for w in writes if "{" in w[1] and w not in targets]
    assert not missing, f"no real row for these routes: {missing}"
    assert set(targets) <= set(writes), set(targets) - set(writes)
    before = await fingerprint(dsn)
    sent = values = 0
    async with aiohttp.ClientSession() as http:
        for method, path in writes:
            target = targets.get((method, path), Target(path, bearer(Role.ADMIN)))
            url = service.url + target.path
            for what, body, headers in BAD_BODIES:
                headers = {"If-Match": '"1"', **headers, **target.headers}
                status = await refused(http, method, url, data=body, headers=headers)
                assert status in BODY_REFUSALS, (what, method, path, status)
                sent += 1
            # a header far beyond any limit: refused before any handler runs
            status = await _huge_header(http, method, url)
            assert 400 <= status < 500, status
            sent += 1
        for method, path, op in operations(document):
            target = targets.get((method, path), Target(concrete(path), {}))
            bad = parameter_values(path, target.path, op)
            if (method, path) in writes:
                bad += body_values(document, op)
            for value in bad:
                await refused_naming(service, method, target, value)
            values += len(bad)
        async with http.get(f"{service.url}/health") as resp:
            assert resp.status == 200
    assert values, "the document declares no input"
    assert await fingerprint(dsn) == before, "a refused request changed the database"
    figures.add("bad inputs refused (4xx, nothing changed)", sent + values)
    figures.add(f"bad inputs refused (4xx, nothing changed): {service.log.stem}", sent + values)
    figures.add("bad values refused with 400 naming the field (from the documents)", values)


async def refused_naming(service: ServiceProcess, method: str, target: Target, bad: Bad) -> None:
    """One bad value (bad_values.py) on the route: 400 problem+json naming its field. On a
    route without a target, the first role not refused (403) before the input is read."""
    status, problem = 0, None
    callers = [target.headers] if target.headers else []
    callers += [bearer(role) for role in (Role.ADMIN, Role.CUSTOMER, Role.PROVIDER)]
    for caller in callers:
        headers = {"If-Match": b'"1"'} | {k: v.encode() for k, v in caller.items()}
        if bad.header:
            headers[bad.field] = bad.header
        path = (bad.path or target.path) + (f"?{bad.query}" if bad.query else "")
        body = bad.body or (b"{}" if method in {"POST", "PUT", "PATCH"} else b"")
        if bad.header and target.body is not None:
            body = orjson.dumps(target.body)
        status, problem = await raw_request(service.url + path, method, headers, body)
        if status != 403:
            break
    where = (method, target.path, bad.what)
    assert status == 400, (*where, status, problem)
    assert problem is not None, where
    assert named(problem, bad.field), (*where, problem)


async def _huge_header(http: aiohttp.ClientSession, method: str, url: str) -> int:
    async with http.request(method, url, headers={"X-Big": "b" * 65536}) as resp:
        return resp.status


async def test_bad_bodies_on_every_departments_write(
    departments: ServiceProcess, departments_dsn: str
) -> None:
    admin = actor(Role.ADMIN)
    async with aiohttp.ClientSession() as http:
        made = await call(http, "POST", f"{departments.url}/v1/departments", admin, 201,
                          {"name": f"Bad {uuid.uuid4().hex[:8]}", "address": "1 Main"})  # fmt: skip
    row = made["data"]
    targets = {
        ("PATCH", "/v1/departments/{id}"): Target(
            f"/v1/departments/{row['id']}", {**admin.headers, **if_match(row)}
        )
    }
    await bad_bodies_everywhere(departments, departments_dsn, targets)


async def test_bad_bodies_on_every_users_write(users: ServiceProcess, users_dsn: str) -> None:
    """A real user's profile, PATCHed by an ADMIN (who may set every field of it, role and
    verified included) with the row's If-Match."""
    me = actor(Role.CUSTOMER, await make_user(users_dsn, Role.CUSTOMER))
    async with aiohttp.ClientSession() as http:
        row = (await call(http, "GET", f"{users.url}/v1/users/me", me, 200))["data"]
    targets = {
        ("PATCH", "/v1/users/{id}"): Target(
            f"/v1/users/{row['id']}", {**bearer(Role.ADMIN), **if_match(row)}
        )
    }
    await bad_bodies_everywhere(users, users_dsn, targets)


async def test_bad_bodies_on_every_catalog_write(catalog: ServiceProcess, catalog_dsn: str) -> None:
    """Each PATCH on a real type, category, subcategory and service of the catalog."""
    admin = actor(Role.ADMIN)
    tag = uuid.uuid4().hex[:8]
    rows: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession() as http:

        async def make(collection: str, body: dict[str, Any]) -> str:
            made = await call(http, "POST", f"{catalog.url}/v1/{collection}", admin, 201, body)
            rows[collection] = made["data"]
            return str(made["data"]["id"])

        kind = await make("category-types", {"name": f"Bad {tag}"})
        category = await make("categories", {"type_id": kind, "name": "Bad input"})
        sub = await make("subcategories", {"category_id": category, "name": "Bad bodies"})
        await make("services", {"subcategory_id": sub, "name": "Refusing", "base_price": "1.00"})
    targets = {
        ("PATCH", f"/v1/{collection}/{{id}}"): Target(
            f"/v1/{collection}/{row['id']}", {**admin.headers, **if_match(row)}
        )
        for collection, row in rows.items()
    }
    await bad_bodies_everywhere(catalog, catalog_dsn, targets)


async def test_bad_bodies_on_every_orders_write(
    orders: ServiceProcess, catalog: ServiceProcess, orders_dsn: str
) -> None:
    """Each write as the caller who may make it, on real rows: the customer's own OPEN order
    (its If-Match), an offer on it by a provider of its service, the review of a completed
    job of the customer."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        steps = Orders(http, orders.url, service_id, customer, provider)
        order = await steps.order()
        done = await steps.job("COMPLETED")
    targets = {
        ("POST", "/v1/orders"): Target("/v1/orders", customer.headers, order_body(service_id)),
        ("PATCH", "/v1/orders/{id}"): Target(
            f"/v1/orders/{order['id']}", {**customer.headers, **if_match(order)}
        ),
        ("POST", "/v1/orders/{id}/offers"): Target(
            f"/v1/orders/{order['id']}/offers", provider.headers, offer_body()
        ),
        ("POST", "/v1/jobs/{id}/review"): Target(
            f"/v1/jobs/{done['id']}/review", customer.headers, {"rating": 4}
        ),
    }
    await bad_bodies_everywhere(orders, orders_dsn, targets)


async def test_bad_bodies_on_every_chat_write(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess, chat_dsn: str
) -> None:
    """The conversation create as the order's customer, and the message post on a real
    conversation as its customer."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        conversation = await talk(Orders(http, orders.url, service_id, customer, provider),
                                  chat.url)  # fmt: skip
    targets = {
        ("POST", "/v1/conversations"): Target(
            "/v1/conversations",
            customer.headers,
            {"order_id": str(uuid.uuid4()), "provider_id": str(provider.id)},
        ),
        ("POST", "/v1/conversations/{id}/messages"): Target(
            f"/v1/conversations/{conversation.id}/messages", customer.headers, {"body": "hi"}
        ),
    }
    await bad_bodies_everywhere(chat, chat_dsn, targets)


async def test_bad_fields_and_query_values_on_departments(
    departments: ServiceProcess, departments_dsn: str
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
        async with http.get(url, params={"limit": "1"}) as r:
            earlier = (await r.json())["meta"]["total"]  # other tests of the module made some
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
        assert listed["meta"]["total"] == earlier + 1 + len(SQL_META) + len(UNICODE_EDGES)
    figures.add(
        "bad inputs refused (4xx, nothing changed)", 2 * len(refused_bodies) + len(bad_queries)
    )
    figures.add("hostile values stored literally", len(SQL_META) + len(UNICODE_EDGES))


async def test_sql_metacharacters_in_users_search_are_literal(
    users: ServiceProcess, users_dsn: str
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


# message bodies of chat: each refused over HTTP (4xx problem+json) and nothing stored
BAD_MESSAGES: list[tuple[str, bytes, dict[str, str]]] = [
    ("malformed JSON", b'{"body": "hello",', JSON),
    ("wrong content type", b'{"body": "hello"}', {"Content-Type": "text/plain"}),
    ("form content type", b"body=hello", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("no content type", b'{"body": "hello"}', {"Content-Type": ""}),
    ("NUL escaped", b'{"body": "a\\u0000b"}', JSON),
    ("NUL raw", b'{"body": "a\x00b"}', JSON),
    ("bell", b'{"body": "ring \\u0007"}', JSON),
    ("invalid UTF-8", b'{"body": "caf\xe9 \xff\xfe"}', JSON),
    ("lone surrogate", b'{"body": "\\udc00 x"}', JSON),
    ("empty", b'{"body": ""}', JSON),
    ("blank", b'{"body": " \\n\\t \\r\\n "}', JSON),
    ("4001 code points", b'{"body": "' + "é".encode() * 4001 + b'"}', JSON),
    ("huge", b'{"body": "' + b"x" * (2 * 1024 * 1024) + b'"}', JSON),
    ("not a string", b'{"body": 42}', JSON),
    ("null", b'{"body": null}', JSON),
    ("a list", b'{"body": ["hello"]}', JSON),
    ("no body field", b"{}", JSON),
]
BAD_FRAMES = [  # the same over the WebSocket: an error frame, nothing stored
    '{"type": "send", "body": "a\\u0000b"}',
    '{"type": "send", "body": "   "}',
    '{"type": "send", "body": "' + "x" * 4001 + '"}',
    '{"type": "send", "body": 42}',
    '{"type": "send"',
    '{"type": "shout", "body": "hello"}',
]


async def test_bad_message_bodies_store_nothing(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess, chat_dsn: str
) -> None:
    """Each bad message body on a real conversation, by its participant, over HTTP and over
    the WebSocket: refused (4xx problem+json / an error frame), nothing stored (every table
    fingerprinted, the messages read back); then a good one (the control) is stored and
    pushed, 4000 code points of it included."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        conversation = await talk(Orders(http, orders.url, service_id, customer, provider),
                                  chat.url)  # fmt: skip
        await conversation.post(customer, "before")
        before = await fingerprint(chat_dsn)
        url = f"{chat.url}/v1/conversations/{conversation.id}/messages"
        for what, body, headers in BAD_MESSAGES:
            for key in ({}, {"Idempotency-Key": uuid.uuid4().hex}):
                sent = {**headers, **customer.headers, **key}
                status = await refused(http, "POST", url, data=body, headers=sent)
                assert status in BODY_REFUSALS, (what, status)
        # a field of the server's: 403 naming it (mass assignment)
        smuggled = {"body": "hello", "author_id": str(provider.id)}
        async with http.post(url, json=smuggled, headers=customer.headers) as r:
            answer = await r.json(content_type=None)
            assert (r.status, r.content_type) == (403, PROBLEM), answer
            assert [e["field"] for e in answer["errors"]] == ["author_id"], answer
        token = customer.headers["Authorization"].removeprefix("Bearer ")
        socket = await http.ws_connect(
            ws_url(chat.url, conversation.id), protocols=("fixup.bearer", token)
        )
        async with socket:
            for frame in BAD_FRAMES:
                await socket.send_str(frame)
                answer = await socket.receive_json(timeout=PROCESS_MARGIN)
                assert answer["type"] == "error", (frame, answer)
                assert answer["error"]["status"] == 400, (frame, answer)
            assert await fingerprint(chat_dsn) == before, "a refused message changed the data"
            assert [m["body"] for m in await conversation.messages()] == ["before"]
            # the controls: good bodies are stored, read back exactly and pushed
            longest = "é" * 4000
            await socket.send_str(orjson.dumps({"type": "send", "body": longest}).decode())
            pushed = await socket.receive_json(timeout=PROCESS_MARGIN)
            assert (pushed["type"], pushed["data"]["body"]) == ("message", longest)
        await conversation.post(provider, "  after\ttab  ")
        bodies = [m["body"] for m in await conversation.messages()]
        assert bodies == ["before", longest, "after\ttab"]
    figures.add(
        "bad inputs refused (4xx, nothing changed)", 2 * len(BAD_MESSAGES) + len(BAD_FRAMES) + 1
    )
    figures.add("bad chat message bodies refused (HTTP and WebSocket)", 2 * len(BAD_MESSAGES)
                + len(BAD_FRAMES) + 1)  # fmt: skip


async def test_sql_metacharacters_in_orders_search_and_orderby(
    orders: ServiceProcess, catalog: ServiceProcess, orders_dsn: str
) -> None:
    """`search` matches words of the description or address as text, whatever it holds;
    `orderby` takes only its documented keys. Nothing changes (read back)."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    admin = actor(Role.ADMIN)
    tag = f"zq{uuid.uuid4().hex[:10]}"
    url = f"{orders.url}/v1/orders"
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        made = await call(http, "POST", url, customer, 201,
                          order_body(service_id, description=f"Leaking {tag} pipe"))  # fmt: skip
        before = await fingerprint(orders_dsn)
        for who in (customer, admin):
            found = await call(http, "GET", f"{url}?search={tag}", who, 200)
            assert [o["id"] for o in found["data"]] == [made["data"]["id"]]  # the control
        searches = [
            *SQL_META,
            "' OR '1'='1", f"{tag}' --", f"%{tag}%' OR 1=1 --", f"{tag}') OR ('1'='1",
            "*", f"{tag} & !x", f"{tag}:*", "!!", "|", f"{tag}\\", f"{tag}_x",
        ]  # fmt: skip
        for search in searches:
            for who in (customer, admin):
                async with http.get(url, params={"search": search}, headers=who.headers) as r:
                    body = await r.json(content_type=None)
                    if r.status == 400:  # refused as a value: said so as a problem
                        assert r.content_type == PROBLEM, (search, body)
                        continue
                    assert r.status == 200, (search, r.status, body)
                assert body["data"] == [], (search, body)  # matched literally: nothing
        for orderby in ["created_at; DROP TABLE orders", "1", "created_at DESC, (SELECT 1)",
                        "created_at--", "pg_sleep(10)"]:  # fmt: skip
            for who in (customer, admin):
                status = await refused(http, "GET", url, params={"orderby": orderby},
                                       headers=who.headers)  # fmt: skip
                assert status == 400, orderby
        assert await fingerprint(orders_dsn) == before, "a search changed the data"
        again = await call(http, "GET", f"{url}/{made['data']['id']}", customer, 200)
        assert again == made
    figures.add("SQL metacharacters in search / orderby answered literally (nothing changed)",
                2 * len(searches) + 10)  # fmt: skip


async def test_like_wildcards_in_orders_search_are_literal(
    orders: ServiceProcess, catalog: ServiceProcess
) -> None:
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    url = f"{orders.url}/v1/orders"
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        made = await call(http, "POST", url, customer, 201, order_body(service_id))
        found = await call(http, "GET", f"{url}?search=tap", customer, 200)  # "kitchen tap"
        assert [o["id"] for o in found["data"]] == [made["data"]["id"]]  # the control
        for search in ["%", "_", "%%", "t_p", "k%p"]:
            async with http.get(url, params={"search": search}, headers=customer.headers) as r:
                body = await r.json()
            assert body["data"] == [], (search, body["meta"])
