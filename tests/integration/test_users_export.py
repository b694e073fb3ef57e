"""The data export (services/users/export.py, ADR 0059) through the real apps: users, catalog,
orders and chat in-process on real PostgreSQL, points on a real gRPC server over MariaDB,
each REST part and points behind a proxy a test can stop or hold.

A customer and a provider do the whole story (a service offered, an order, an offer, a job
done and reviewed, a chat message each, the points the job earned, a picture); another
pair does the same beside them. Then: each export holds the person's rows and never the
other pair's, and no secret; who may export whom; a service down or silent fails the
export with 503 naming it within the bound; the rows, bytes and rate bounds.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from lib.auth.principal import Role
from services.catalog.app import create_app as catalog_app
from services.chat.app import create_app as chat_app
from services.orders.app import create_app as orders_app
from services.users.app import create_app as users_app
from tests import pg
from tests.integration.catalog_support import catalog_settings
from tests.integration.chat_support import chat_settings, eventually
from tests.integration.orders_support import (
    catalog_service,
    offer_body,
    order_body,
    orders_settings,
)
from tests.integration.points_support import Points
from tests.integration.test_export_coverage import exported_fields
from tests.integration.users_support import AUTH_LIMITS_OFF, auth, make_user, users_settings
from tests.pictures_support import png
from tests.proxy import TcpProxy
from tools.time_scale import scaled

PARTS = ("orders", "chat", "catalog", "points")
NO_EXPORT_LIMIT = {"export_rate": 1e6, "export_burst": 10**6}
# each part's call within its default 1 s on an idle machine; here every app, proxy and the
# test share one event loop on a machine busy with other runs (a test of a timeout sets its own)
PART_TIMEOUTS = {f"{name}_timeout": scaled(1.0) for name in PARTS}
BOUNDARY = "exportboundary"
# each part's breaker opened by one failure, and kept open for the test
OPENS_AT_ONCE: dict[str, dict[str, Any]] = {
    "orders": {"orders_breaker_threshold": 1, "orders_breaker_reset": 60.0},
    "chat": {"chat_breaker_threshold": 1, "chat_breaker_reset": 60.0},
    "catalog": {"catalog_breaker_threshold": 1, "catalog_breaker_reset": 60.0},
    "points": {"points_breaker_threshold": 1, "points_breaker_reset": 60.0},
}


@dataclass
class Pair:
    customer: uuid.UUID
    provider: uuid.UUID
    order_id: str
    offer_id: str
    job_id: str
    review_id: str
    conversation_id: str
    service_id: str

    def headers(self, who: uuid.UUID) -> dict[str, str]:
        return auth(who, Role.PROVIDER if who == self.provider else Role.CUSTOMER)


@pytest.fixture
async def stack(
    aiohttp_server: Any,
    aiohttp_client: Any,
    chat_catalog_dsn: str,
    chat_orders_dsn: str,
    chat_dsn: str,
    users_dsn: str,
    points: Points,
    redis_prefix: str,
    tmp_path: Any,
) -> AsyncIterator[dict[str, Any]]:
    """The apps, and `make_users(**settings)`: a users app whose parts go through proxies."""
    catalog = await aiohttp_server(catalog_app(catalog_settings(chat_catalog_dsn)))
    orders = await aiohttp_server(
        orders_app(
            orders_settings(
                chat_orders_dsn,
                catalog_url=str(catalog.make_url("")),
                points_grpc_addr=points.target,  # the relay delivers a job's points
                outbox_interval=0.05,
            )
        )
    )
    chat = await aiohttp_server(
        chat_app(chat_settings(chat_dsn, redis_prefix, orders_url=str(orders.make_url(""))))
    )
    ports = {"catalog": catalog.port, "orders": orders.port, "chat": chat.port}
    ports["points"] = points.server.port
    proxies = {name: await TcpProxy("127.0.0.1", port).start() for name, port in ports.items()}

    async def make_users(**overrides: Any) -> Any:
        urls = {f"{n}_url": f"http://127.0.0.1:{proxies[n].port}" for n in PARTS[:3]}
        settings = users_settings(
            users_dsn,
            storage_dir=str(tmp_path),
            points_grpc_addr=f"127.0.0.1:{proxies['points'].port}",
            **(urls | AUTH_LIMITS_OFF | NO_EXPORT_LIMIT | PART_TIMEOUTS | overrides),
        )
        return await aiohttp_client(users_app(settings))

    yield {
        "catalog": await aiohttp_client(catalog),
        "orders": await aiohttp_client(orders),
        "chat": await aiohttp_client(chat),
        "make_users": make_users,
        "proxies": proxies,
        "points": points,
    }
    for proxy in proxies.values():
        await proxy.stop()


async def ok(resp: Any, *statuses: int) -> dict[str, Any]:
    assert resp.status in (statuses or (200, 201)), await resp.text()
    body: dict[str, Any] = await resp.json()
    return body["data"]


async def story(stack: dict[str, Any], users: Any, users_dsn: str) -> Pair:
    """A customer and a provider (real users rows) through the whole story."""
    customer = await make_user(users_dsn, Role.CUSTOMER)
    provider = await make_user(users_dsn, Role.PROVIDER)
    c, p = auth(customer), auth(provider, Role.PROVIDER)
    orders, chat = stack["orders"], stack["chat"]
    service_id = await catalog_service(stack["catalog"], provider)
    order = await ok(await orders.post("/v1/orders", json=order_body(service_id), headers=c))
    offer = await ok(
        await orders.post(f"/v1/orders/{order['id']}/offers", json=offer_body(), headers=p)
    )
    job = await ok(
        await orders.post(f"/v1/orders/{order['id']}/offers/{offer['id']}/accept", headers=c)
    )
    await ok(await orders.post(f"/v1/jobs/{job['id']}/start", headers=p))
    await ok(await orders.post(f"/v1/jobs/{job['id']}/complete", headers=p))
    review = await ok(
        await orders.post(f"/v1/jobs/{job['id']}/review", json={"rating": 5}, headers=c)
    )
    talk = {"order_id": order["id"], "provider_id": str(provider)}
    conversation = await ok(await chat.post("/v1/conversations", json=talk, headers=c))
    for who, text in ((c, f"customer {customer}"), (p, f"provider {provider}")):
        path = f"/v1/conversations/{conversation['id']}/messages"
        await ok(await chat.post(path, json={"body": text}, headers=who))
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="p"\r\n'
    picture = (head + "Content-Type: image/png\r\n\r\n").encode() + png() + b"\r\n"
    resp = await users.put(
        "/v1/users/me/picture",
        data=picture + f"--{BOUNDARY}--\r\n".encode(),
        headers={**c, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert resp.status == 204, await resp.text()

    async def earned() -> bool:
        return await stack["points"].balance(str(provider)) == 10

    await eventually(earned, "the job's points relayed to points", scaled(10))
    return Pair(
        customer, provider, order["id"], offer["id"], job["id"], review["id"],
        conversation["id"], service_id,
    )  # fmt: skip


async def export_of(users: Any, target: Any, headers: dict[str, str]) -> tuple[int, Any, str]:
    resp = await users.get(f"/v1/users/{target}/export", headers=headers)
    text = await resp.text()
    return resp.status, json.loads(text), text


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row["id"] for row in rows}


async def secrets_of(dsn: str, user_id: uuid.UUID) -> list[str]:
    """Every secret the users database holds of the person, as text the export could show."""
    async with pg.connected(dsn) as conn:
        found = [await conn.fetchval("SELECT password_hash FROM users WHERE id=$1", user_id)]
        for sql in (
            "SELECT secret_encrypted FROM totp_factors WHERE user_id=$1",
            "SELECT code_hash FROM recovery_codes WHERE user_id=$1",
            "SELECT token_hash FROM email_tokens WHERE user_id=$1",
            "SELECT t.token_hash FROM refresh_tokens t JOIN refresh_token_families f"
            " ON f.id = t.family_id WHERE f.user_id=$1",
            "SELECT public_key FROM passkeys WHERE user_id=$1",
            "SELECT personal_id_encrypted FROM provider_details WHERE user_id=$1",
        ):
            for (value,) in await conn.fetch(sql, user_id):
                found += [value.hex(), base64.b64encode(value).decode()]
                found += [base64.urlsafe_b64encode(value).decode().rstrip("=")]
    return found


async def give_secrets(dsn: str, user_id: uuid.UUID) -> None:
    """A TOTP enrolment, recovery codes, an email token, a refresh token and a passkey."""
    async with pg.connected(dsn) as conn:
        await conn.execute(
            "INSERT INTO totp_factors (user_id, secret_encrypted, confirmed_at)"
            " VALUES ($1, $2, now())", user_id, b"s" * 40,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2), ($1, $3)",
            user_id, b"r" * 32, b"q" * 32,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at)"
            " VALUES ($1, 'VERIFY_EMAIL', $2, now() + interval '1 day')", user_id, b"e" * 32,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO refresh_tokens (family_id, token_hash, expires_at)"
            " VALUES ($1, $2, now() + interval '1 day')", user_id, b"t" * 32,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO passkeys (user_id, credential_id, public_key, name)"
            " VALUES ($1, $2, $3, 'Laptop')", user_id, b"c" * 16, b"k" * 77,
        )  # fmt: skip


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


async def test_the_whole_story_is_exported_and_nothing_else(
    stack: dict[str, Any], users_dsn: str
) -> None:
    users = await stack["make_users"]()
    mine = await story(stack, users, users_dsn)
    theirs = await story(stack, users, users_dsn)
    await give_secrets(users_dsn, mine.customer)
    admin = auth(await make_user(users_dsn, Role.ADMIN), Role.ADMIN)

    status, body, text = await export_of(users, "me", mine.headers(mine.customer))
    assert status == 200, text
    doc = body["data"]
    assert doc["user_id"] == str(mine.customer)
    sections = exported_fields()  # exactly the documented sections and fields
    assert {k: set(v) for k, v in doc.items() if isinstance(v, dict)} == sections
    own = doc["users"]
    assert own["users"]["id"] == str(mine.customer)
    assert "sig=" in own["users"]["picture_url"]  # a signed link, and it works
    link = urlsplit(own["users"]["picture_url"])
    picture = await users.get(link.path.removeprefix("/api/users") + "?" + link.query)
    assert picture.status == 200
    assert picture.content_type == "image/png"
    assert own["totp_factors"]["enrolled"] is True
    assert own["recovery_codes"] == {"left": 2}
    assert [p["name"] for p in own["passkeys"]] == ["Laptop"]
    assert [t["purpose"] for t in own["email_tokens"]] == ["VERIFY_EMAIL"]
    assert ids(own["refresh_token_families"]) == {str(mine.customer)}  # make_user's session
    assert ids(doc["orders"]["orders"]) == {mine.order_id}
    assert doc["orders"]["offers"] == []  # a customer makes none
    assert ids(doc["orders"]["jobs"]) == {mine.job_id}
    assert ids(doc["orders"]["reviews"]) == {mine.review_id}
    assert ids(doc["chat"]["conversations"]) == {mine.conversation_id}
    assert [m["body"] for m in doc["chat"]["messages"]] == [f"customer {mine.customer}"]
    assert doc["catalog"]["provider_services"] == []
    assert doc["points"]["user_points"]["points"] == 0

    for secret in await secrets_of(users_dsn, mine.customer):
        assert secret not in text
    forbidden = {"password", "password_hash", "secret", "secret_encrypted", "code_hash",
                 "token_hash", "public_key", "credential_id", "personal_id_encrypted",
                 "access_token", "refresh_token", "recovery_codes_plain"}  # fmt: skip
    assert keys_in(doc) & forbidden == set()
    for other in (theirs.customer, theirs.provider, theirs.order_id, theirs.conversation_id):
        assert str(other) not in text  # another user's rows never appear
    assert f"provider {mine.provider}" not in text  # the other party's message: theirs

    status, body, text = await export_of(users, mine.provider, admin)  # an ADMIN: anyone's
    assert status == 200, text
    doc = body["data"]
    assert doc["orders"]["orders"] == []
    assert ids(doc["orders"]["offers"]) == {mine.offer_id}
    assert ids(doc["orders"]["jobs"]) == {mine.job_id}
    assert ids(doc["orders"]["reviews"]) == {mine.review_id}
    assert [s["service_id"] for s in doc["catalog"]["provider_services"]] == [mine.service_id]
    assert doc["points"]["user_points"]["points"] == 10
    assert [e["delta"] for e in doc["points"]["points_ledger"]] == [10]
    assert doc["users"]["users"]["points"] == 10
    assert [m["body"] for m in doc["chat"]["messages"]] == [f"provider {mine.provider}"]
    assert str(theirs.provider) not in text
    assert theirs.offer_id not in text


async def test_who_may_export_whom(stack: dict[str, Any], users_dsn: str) -> None:
    users = await stack["make_users"]()
    customer = await make_user(users_dsn, Role.CUSTOMER)
    other = await make_user(users_dsn, Role.CUSTOMER)
    moderator = await make_user(users_dsn, Role.MODERATOR)
    admin = auth(await make_user(users_dsn, Role.ADMIN), Role.ADMIN)
    assert (await export_of(users, "me", {}))[0] == 401
    assert (await export_of(users, customer, auth(customer)))[0] == 200
    for target, headers in ((other, auth(customer)), (customer, auth(moderator, Role.MODERATOR))):
        status, body, _ = await export_of(users, target, headers)
        assert (status, body["code"]) == (403, "FORBIDDEN")
    assert (await export_of(users, other, admin))[0] == 200
    assert (await export_of(users, uuid.uuid4(), admin))[0] == 404
    # each part refuses the same callers itself (a token sent to it straight)
    for name in ("orders", "chat", "catalog"):
        resp = await stack[name].get(f"/v1/users/{other}/export", headers=auth(customer))
        assert resp.status == 403, (name, await resp.text())
        resp = await stack[name].get(f"/v1/users/{other}/export", headers=admin)
        assert resp.status == 200, (name, await resp.text())


@pytest.mark.parametrize("service", PARTS)
async def test_a_service_down_fails_the_export_naming_it(
    stack: dict[str, Any], users_dsn: str, service: str
) -> None:
    """Down: 503 naming it; its breaker (one failure opens it here) then answers at once."""
    users = await stack["make_users"](**OPENS_AT_ONCE[service])
    customer = await make_user(users_dsn)
    await stack["proxies"][service].stop()
    for code in ("SERVICE_UNAVAILABLE", "CIRCUIT_OPEN"):
        status, body, text = await export_of(users, "me", auth(customer))
        assert status == 503, text
        assert (body["code"], body["service"]) == (code, service)
        assert service in body["detail"]
        assert "data" not in body


@pytest.mark.parametrize("service", PARTS)
async def test_a_silent_service_fails_the_export_within_the_bound(
    stack: dict[str, Any], users_dsn: str, service: str
) -> None:
    # only the silent one's timeout is short: a loaded machine may make another part
    # slower than 0.3 s, and the export would then (rightly) name that one
    timeout = {"orders": "orders_timeout", "chat": "chat_timeout", "catalog": "catalog_timeout",
               "points": "points_timeout"}[service]  # fmt: skip
    users = await stack["make_users"](**{timeout: 0.3})
    bound = 0.3 * 2 + 1.0  # two attempts of the silent one, and the retry's longest pause
    customer = await make_user(users_dsn)
    proxy = stack["proxies"][service]
    proxy.hold()  # every answer of `service` waits here: it says nothing
    try:
        started = time.monotonic()
        status, body, text = await export_of(users, "me", auth(customer))
        took = time.monotonic() - started
    finally:
        proxy.release()
    assert status == 503, text
    assert body["service"] == service
    assert took < scaled(bound + 1.0), took


async def test_the_size_bounds(stack: dict[str, Any], users_dsn: str) -> None:
    users = await stack["make_users"]()
    pair = await story(stack, users, users_dsn)
    c = pair.headers(pair.customer)
    orders = stack["orders"]
    await ok(await orders.post("/v1/orders", json=order_body(pair.service_id), headers=c))
    status, body, _ = await export_of(users, "me", c)
    assert status == 200
    assert len(body["data"]["orders"]["orders"]) == 2
    small = await stack["make_users"](export_max_bytes=1024)
    status, body, _ = await export_of(small, "me", c)
    assert (status, body["code"], body["limit"]) == (413, "PAYLOAD_TOO_LARGE", 1024)


async def test_a_part_over_its_row_bound_is_413_naming_it(
    aiohttp_server: Any, stack: dict[str, Any], users_dsn: str, chat_orders_dsn: str
) -> None:
    """orders with EXPORT_MAX_ROWS=1 and a customer of two orders: 413 from orders, named."""
    users = await stack["make_users"]()
    pair = await story(stack, users, users_dsn)
    c = pair.headers(pair.customer)
    await ok(await stack["orders"].post("/v1/orders", json=order_body(pair.service_id), headers=c))
    strict = await aiohttp_server(orders_app(orders_settings(chat_orders_dsn, export_max_rows=1)))
    users = await stack["make_users"](orders_url=str(strict.make_url("")))
    status, body, text = await export_of(users, "me", c)
    assert status == 413, text
    assert (body["service"], body["limit"]) == ("orders", 1)
    assert "orders" in body["detail"]


async def test_exports_of_one_person_are_rate_limited(
    stack: dict[str, Any], users_dsn: str
) -> None:
    users = await stack["make_users"](export_rate=0.001, export_burst=1)
    customer = await make_user(users_dsn)
    admin = auth(await make_user(users_dsn, Role.ADMIN), Role.ADMIN)
    assert (await export_of(users, "me", auth(customer)))[0] == 200
    resp = await users.get(f"/v1/users/{customer}/export", headers=admin)  # whoever asks
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
