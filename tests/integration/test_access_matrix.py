"""Every operation of every HTTP service, called by every kind of caller, answers as its
OpenAPI document declares (`x-access`, from `@operation`: lib/http/access.py):

- anonymous: 401 for a protected operation; a role not declared: 403; an unverified caller
  on a `verified` operation: 403 (problem+json, before the handler);
- a declared role: neither 401 nor 403 nor a 5xx (own resource: `me`; else a fresh id);
- a public operation: the same answer whoever calls, never 401 or 403 for the token;
- someone else's resource (a declared `owner`): every role that is not an `any_owner`, as
  a caller who is not the owner, gets 403 or 404 and nothing changes (read back).

The operations come from each app's served /v1/openapi.json, the services and their apps
run in-process on real PostgreSQL/Redis (catalog -> orders -> chat, departments <- users).
Every built REST service of lib/registry.py is checked: one without dependencies (a new
service's) runs on its own migrated database with its settings' defaults.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from lib import registry
from lib.auth.principal import Role
from lib.http.access import SELF
from services.catalog.app import create_app as catalog_app
from services.chat.app import create_app as chat_app
from services.departments.app import create_app as departments_app
from services.orders.app import create_app as orders_app
from services.users.app import create_app as users_app
from tests.integration.access_support import (
    Caller,
    Op,
    call,
    callers,
    expected,
    fill,
    operations,
    refusal,
    undocumented_or_unguarded,
)
from tests.integration.auth_support import plain_app, settings_for
from tests.integration.catalog_support import catalog_settings
from tests.integration.chat_support import chat_settings, conversation, make_world
from tests.integration.orders_support import caller, offer_body, order_body, orders_settings
from tests.integration.points_support import Points
from tests.integration.users_support import AUTH_LIMITS_OFF, make_user, users_settings

HTTP_SERVICES = [s.name for s in registry.gateway_services() if s.built]
# the services `stack` wires to their dependencies by hand; any other is built alone
WIRED = {"departments", "catalog", "orders", "chat", "users"}  # names services on purpose: so


@pytest.fixture
async def stack(
    aiohttp_server: Any,
    aiohttp_client: Any,
    departments_dsn: str,
    chat_catalog_dsn: str,
    chat_orders_dsn: str,
    chat_dsn: str,
    users_dsn: str,
    points: Points,
    redis_prefix: str,
    tmp_path: Any,
) -> dict[str, Any]:
    """One in-process app per service, each with its dependencies reachable (users: every
    part of the data export too, points included)."""
    departments = await aiohttp_server(departments_app(settings_for(departments_dsn)))
    catalog = await aiohttp_server(catalog_app(catalog_settings(chat_catalog_dsn)))
    orders = await aiohttp_server(
        orders_app(orders_settings(chat_orders_dsn, catalog_url=str(catalog.make_url(""))))
    )
    chat = await aiohttp_server(
        chat_app(chat_settings(chat_dsn, redis_prefix, orders_url=str(orders.make_url(""))))
    )
    users = users_app(
        users_settings(
            users_dsn,
            departments_url=str(departments.make_url("")),
            catalog_url=str(catalog.make_url("")),
            orders_url=str(orders.make_url("")),
            chat_url=str(chat.make_url("")),
            points_grpc_addr=points.target,
            # a list's points on a busy machine: none of these tests is about the deadline,
            # and a degraded page (points null) is not the page the list walk compares
            points_timeout=10.0,
            storage_dir=str(tmp_path),
            **AUTH_LIMITS_OFF,  # every caller signs in: the test's budget, not production's
        )
    )
    return {  # names services on purpose: the WIRED ones
        "departments": await aiohttp_client(departments),
        "catalog": await aiohttp_client(catalog),
        "orders": await aiohttp_client(orders),
        "chat": await aiohttp_client(chat),
        "users": await aiohttp_client(users),
    }


async def spec_of(client: Any) -> dict[str, Any]:
    resp = await client.get("/v1/openapi.json")
    assert resp.status == 200, await resp.text()
    spec: dict[str, Any] = await resp.json()
    return spec


async def matrix_callers(service: str, users_dsn: str | None) -> list[Caller]:
    """Users answers a token whose account does not exist 401 on `me`: there every caller
    is a real row; elsewhere the token is all a service knows of its caller."""
    if service != "users" or users_dsn is None:
        return callers(lambda role: uuid.uuid4())
    ids = {role: await make_user(users_dsn, role) for role in Role}
    unverified = {role: await make_user(users_dsn, role) for role in Role}
    made = callers(lambda role: ids[role])
    return [c if c.verified else Caller(c.name, c.role, False, unverified[c.role]) for c in made]


@pytest.mark.parametrize("service", sorted(WIRED))
async def test_every_operation_answers_every_caller_as_declared(
    stack: dict[str, Any], users_dsn: str, service: str
) -> None:
    await every_operation_as_declared(stack[service], service, users_dsn)


@pytest.mark.parametrize("service", [s for s in HTTP_SERVICES if s not in WIRED] or [None])
async def test_a_service_without_dependencies_answers_as_declared(
    aiohttp_client: Any, migrated_db: Callable[[str], str], service: str | None
) -> None:
    """Every other built REST service (a new one) alone on its own migrated database."""
    if service is None:  # none today: every one is in the test above
        assert set(HTTP_SERVICES) == WIRED
        return
    client = await aiohttp_client(plain_app(service, migrated_db(service)))
    await every_operation_as_declared(client, service, None)
    owned = [op for op in operations(await spec_of(client)) if op.access and op.access["owner"]]
    assert owned == [], f"{service}: wire it in `stack` and `owned_world` to check its owners"


async def every_operation_as_declared(client: Any, service: str, users_dsn: str | None) -> None:
    spec = await spec_of(client)
    assert undocumented_or_unguarded(client.server.app, spec) == []
    ops = operations(spec)
    protected = [op for op in ops if op.access is not None]
    assert protected, f"{service} declares no protected operation"
    who_all = await matrix_callers(service, users_dsn)
    wrong: list[str] = []
    for op in ops:
        public_answers: dict[str, int] = {}
        for who in who_all:
            want = expected(op, who)
            resp = await call(client, op, fill(op.path, op), who.headers())
            if want in ("401", "403"):
                if (why := await refusal(resp, int(want))) is not None:
                    wrong.append(f"{op} as {who.name}: want {want}, got {why}")
            elif want == "allowed":
                if resp.status in (401, 403) or resp.status >= 500:
                    wrong.append(f"{op} as {who.name}: allowed, got {resp.status} "
                                 f"{(await resp.text())[:160]}")  # fmt: skip
            else:
                public_answers[who.name] = resp.status
                if resp.status == 403:
                    wrong.append(f"{op} (public) as {who.name}: 403 {await resp.text()}")
            resp.release()
        if len(set(public_answers.values())) > 1:
            wrong.append(f"{op} (public) answers by caller: {public_answers}")
    assert wrong == [], "\n".join(wrong)


# --- someone else's resource ----------------------------------------------------------

# what a non-owner sends, so the request reaches the ownership check (a valid body, the
# current If-Match); an owner operation missing here fails the test
ME_ONLY = {"skip": "`me` only: nobody else's account can be named"}
OWNER_REQUESTS: dict[str, dict[str, Any]] = {
    "getAUser": {},
    "updateAUser": {"json": {"first_name": "Mallory"}, "if_match": "users"},
    "deleteAnonymiseAUser": {"if_match": "users"},
    "uploadAProfilePicture": {},
    "changeMyPassword": ME_ONLY,
    "myPasskeys": ME_ONLY,
    "startRegisteringAPasskey": ME_ONLY,
    "registerAPasskey": ME_ONLY,
    # another user's passkey id: 404 (test_users_passkeys.py::test_register_list_sign_in_and_remove)
    "removeAPasskey": ME_ONLY,
    "mySecondFactor": ME_ONLY,
    "enrolAnAuthenticatorApp": ME_ONLY,
    "confirmTheAuthenticatorApp": ME_ONLY,
    "removeTheSecondFactor": ME_ONLY,
    "offerAService": {},
    "withdrawAService": {},
    "getAnOrder": {},
    "updateAnOrder": {"json": {"description": "Mine now"}, "if_match": "orders"},
    "cancelAnOrder": {},
    "makeAnOffer": {"json": "offer"},
    "listTheOffersOfAnOrder": {},
    "withdrawAnOffer": {},
    "acceptAnOffer": {},
    "getAJob": {},
    "startAJob": {},
    "completeAJob": {},
    "cancelAJob": {},
    "reviewAJob": {"json": {"rating": 5, "comment": "Great"}},
    "startAConversation": {"json": "conversation"},
    "getAConversation": {},
    "listMessages": {},
    "postAMessage": {"json": {"body": "let me in"}},
    "openTheConversationSWebsocket": {},
    # a person's data export and each service's part of it: another person's id, 403
    "exportAPersonSData": {},
    "exportAPersonSOrdersData": {},
    "exportAPersonSChatData": {},
    "exportAPersonSCatalogData": {},
}


async def owned_world(stack: dict[str, Any], users_dsn: str) -> dict[str, Any]:
    """A customer's OPEN order with a provider's PENDING offer and a conversation, a second
    order assigned to that provider (a job), a users row and a provider's links."""
    world = await make_world(stack["catalog"], stack["orders"])
    orders = stack["orders"]
    resp = await orders.post(
        "/v1/orders", json=order_body(world.service_id), headers=world.customer.headers
    )
    assert resp.status == 201, await resp.text()
    second = (await resp.json())["data"]["id"]
    resp = await orders.post(
        f"/v1/orders/{second}/offers", json=offer_body(), headers=world.p1.headers
    )
    assert resp.status == 201, await resp.text()
    accepted_offer = (await resp.json())["data"]["id"]
    resp = await orders.post(
        f"/v1/orders/{second}/offers/{accepted_offer}/accept", headers=world.customer.headers
    )
    assert resp.status == 200, await resp.text()
    job_id = (await resp.json())["data"]["id"]
    offers = await (
        await orders.get(f"/v1/orders/{world.order_id}/offers", headers=world.customer.headers)
    ).json()
    offer_id = next(o["id"] for o in offers["data"] if o["provider_id"] == str(world.p1.id))
    conversation_id = await conversation(stack["chat"], world)
    user_id = await make_user(users_dsn, Role.CUSTOMER)
    return {
        "world": world,
        "values": {
            "orders": world.order_id,
            "offers": offer_id,
            "jobs": job_id,
            "conversations": conversation_id,
            "users": str(user_id),
            "providers": str(world.p1.id),
            "services": world.service_id,
        },
    }


async def snapshot(stack: dict[str, Any], owned: dict[str, Any]) -> dict[str, Any]:
    """What the owners (or an ADMIN) read of every resource."""
    world, values = owned["world"], owned["values"]
    admin = caller(Role.ADMIN).headers
    reads = {
        "order": (stack["orders"], f"/v1/orders/{values['orders']}", admin),
        "offers": (stack["orders"], f"/v1/orders/{values['orders']}/offers", admin),
        "job": (stack["orders"], f"/v1/jobs/{values['jobs']}", admin),
        "conversation": (
            stack["chat"], f"/v1/conversations/{values['conversations']}/messages",
            world.customer.headers,
        ),
        "user": (stack["users"], f"/v1/users/{values['users']}", admin),
        "links": (stack["catalog"], f"/v1/providers/{values['providers']}/services", {}),
    }  # fmt: skip
    seen = {}
    for name, (client, path, headers) in reads.items():
        resp = await client.get(path, headers=headers)
        assert resp.status == 200, (name, await resp.text())
        body = await resp.json()
        seen[name] = (body["data"], resp.headers.get("ETag"))
    return seen


async def test_someone_elses_resource_is_refused_and_left_unchanged(
    stack: dict[str, Any], users_dsn: str
) -> None:
    owned = await owned_world(stack, users_dsn)
    world, values = owned["world"], owned["values"]
    before = await snapshot(stack, owned)
    bodies = {
        "offer": {"price": "1.00", "currency": "EUR", "book_time": "2031-05-01T09:00:00+00:00",
                  "message": "me too"},
        "conversation": {"order_id": world.order_id, "provider_id": str(world.p1.id)},
    }  # fmt: skip
    wrong: list[str] = []
    tried = 0
    for service in sorted(WIRED):  # those with no owner operation skip every one
        client = stack[service]
        for op in operations(await spec_of(client)):
            if op.access is None or not op.access["owner"]:
                continue
            if op.operation_id not in OWNER_REQUESTS:
                wrong.append(f"{op} ({op.operation_id}): no request in OWNER_REQUESTS")
                continue
            spec = OWNER_REQUESTS[op.operation_id]
            if "skip" in spec:
                continue
            for role in op.access["roles"]:
                if role in op.access["any_owner"]:
                    continue
                stranger = Caller(f"another {role}", Role(role), True, uuid.uuid4())
                if service == "users":  # a real account (else `me`-style checks say 401)
                    stranger = Caller(stranger.name, Role(role), True,
                                      await make_user(users_dsn, Role(role)))  # fmt: skip
                headers = stranger.headers()
                if (etag_of := spec.get("if_match")) is not None:
                    key = {"users": "user", "orders": "order"}[etag_of]
                    headers["If-Match"] = before[key][1]
                kw: dict[str, Any] = {}
                if "json" in spec:
                    body = spec["json"]
                    kw["json"] = bodies[body] if isinstance(body, str) else body
                resp = await call(client, op, fill(op.path, op, values), headers, **kw)
                tried += 1
                if resp.status not in (403, 404):
                    wrong.append(f"{op} as {stranger.name}: {resp.status} "
                                 f"{(await resp.text())[:160]}")  # fmt: skip
                resp.release()
    assert tried >= 25, tried  # every owner operation of the four services was called
    assert wrong == [], "\n".join(wrong)
    assert await snapshot(stack, owned) == before


def test_owner_self_fills_me() -> None:
    op = Op("get", "/v1/users/{id}", "getAUser", {"owner": SELF, "roles": [], "any_owner": []})
    assert fill(op.path, op) == "/v1/users/me"
    assert fill("/v1/orders/{id}/offers/{offer_id}", op, {"orders": "o", "offers": "f"}) == (
        "/v1/orders/o/offers/f"
    )
