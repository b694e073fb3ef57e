"""Every write a service serves leaves exactly one audit event when it succeeds and none
when it is refused (ADR 0057), found in the served OpenAPI document, not listed here: a
new route is covered without editing this test.

Each write is called with its document's request example, as the first role its
`x-access` names (one caller per role; users: accounts of each world's own),
`If-Match` read from the resource by the same caller. Its path ids and the `*_id`
fields of its body are what the writes before it answered (a `data.id` is known by its
schema's name: `Order`, `GetJobRow` -> job), what the service's world made outside it
(orders' catalog service, chat's order and provider), or the caller (`me`).

A write is tried in a world of its own: the creates (`POST /v1/<things>`) run first,
each once what it refers to exists, then a chain of writes that already succeeded, then
the write. It is tried first after no chain, then after each chain found so far (an
offer's accept after the offer's create, a job's review after its completion, a restore
after the delete), until it succeeds. Every call is checked: one event for a 2xx, none
for a refusal, and the fields before in the event of a change (200 or 204) to a resource
the document reads (`…/{id}` itself, or an action's `…/{id}`). Every write must succeed
but those of CANNOT_SUCCEED, tried once after no chain, which must be refused: one that
starts to succeed fails the test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from lib import registry
from lib.auth.principal import Role
from services.catalog.app import create_app as catalog_app
from services.chat.app import create_app as chat_app
from services.departments.app import create_app as departments_app
from services.orders.app import create_app as orders_app
from services.users.app import create_app as users_app
from tests.integration.auth_support import Bearer, plain_app, settings_for
from tests.integration.catalog_support import catalog_settings
from tests.integration.chat_support import chat_settings, make_world
from tests.integration.orders_support import catalog_service, orders_settings
from tests.integration.users_support import AUTH_LIMITS_OFF, auth, make_user, users_settings

WRITES = ("post", "put", "patch", "delete")
ADMIN = Bearer(Role.ADMIN)
# what no document example can make succeed (mailed tokens, passkey ceremonies, TOTP
# codes, uploads): (service, METHOD path) -> why; each must be refused
CANNOT_SUCCEED: dict[tuple[str, str], str] = {
    ("users", "POST /v1/auth/verify"): "its token is mailed",
    ("users", "POST /v1/auth/password-reset/confirm"): "its token is mailed",
    ("users", "POST /v1/auth/refresh"): "its refresh token is a login's, not the example's",
    ("users", "POST /v1/auth/passkey/login"): "its assertion is signed by an authenticator",
    ("users", "POST /v1/users/me/passkeys"): "its attestation is signed by an authenticator",
    ("users", "DELETE /v1/users/me/passkeys/{id}"): "a passkey is made only by a ceremony",
    ("users", "POST /v1/auth/second-factor"): "its challenge and code come from a TOTP sign-in",
    ("users", "POST /v1/auth/second-factor/enrol"): "its challenge comes from a sign-in",
    ("users", "POST /v1/users/me/second-factor/totp/confirm"): "its code is the app's",
    ("users", "POST /v1/users/me/password"): "its old password is the one a reset set",
    ("users", "PUT /v1/users/{id}/picture"): "an upload is multipart, not JSON",
}
Write = tuple[str, str, dict[str, Any]]  # (method, path template, operation)


@dataclass
class Service:
    """A service's test client, its callers by role and what its world made outside it."""

    client: Any
    callers: dict[Role, Mapping[str, str]] = field(default_factory=dict)
    known: dict[str, str] = field(default_factory=dict)  # thing -> id
    # a world's own callers (users: accounts whose `me` each world may change or delete)
    new_caller: Callable[[Role, World], Awaitable[Mapping[str, str]]] | None = None

    async def caller(self, world: World, op: dict[str, Any]) -> Mapping[str, str] | None:
        access = op.get("x-access")
        if not access:
            return None
        role = Role(access["roles"][0])
        if self.new_caller is None:
            return self.callers.setdefault(role, Bearer(role))
        if role not in world.callers:
            world.callers[role] = await self.new_caller(role, world)
        return world.callers[role]


@dataclass
class Fixtures:
    """What a service's setup may start: test clients and servers, migrated databases."""

    client: Callable[[Any], Awaitable[Any]]  # aiohttp_client
    server: Callable[[Any], Awaitable[Any]]  # aiohttp_server
    database: Callable[[str], str]  # migrated_db
    redis_prefix: str


async def departments(fx: Fixtures) -> Service:
    return Service(await fx.client(departments_app(settings_for(fx.database("departments")))))


async def catalog(fx: Fixtures) -> Service:
    return Service(await fx.client(catalog_app(catalog_settings(fx.database("catalog")))))


async def orders_over_catalog(fx: Fixtures) -> tuple[Any, Any]:
    """(catalog client, orders server): orders on the real catalog."""
    catalog_server = await fx.server(catalog_app(catalog_settings(fx.database("catalog"))))
    settings = orders_settings(
        fx.database("orders"), catalog_url=f"http://127.0.0.1:{catalog_server.port}"
    )
    return await fx.client(catalog_server), await fx.server(orders_app(settings))


async def orders(fx: Fixtures) -> Service:
    """Orders over the real catalog, whose one service the provider offers."""
    catalog_client, orders_server = await orders_over_catalog(fx)
    provider = Bearer(Role.PROVIDER)
    service_id = await catalog_service(catalog_client, provider.user_id)
    return Service(
        await fx.client(orders_server), {Role.PROVIDER: provider}, {"service": service_id}
    )


async def chat(fx: Fixtures) -> Service:
    """Chat over the real orders and catalog: an order with the provider's offer on it."""
    catalog_client, orders_server = await orders_over_catalog(fx)
    world = await make_world(catalog_client, await fx.client(orders_server))
    settings = chat_settings(
        fx.database("chat"),
        fx.redis_prefix,
        orders_url=f"http://127.0.0.1:{orders_server.port}",
    )
    return Service(
        await fx.client(chat_app(settings)),
        {Role.CUSTOMER: world.customer.headers, Role.PROVIDER: world.p1.headers},
        {"order": world.order_id, "provider": str(world.p1.id)},
    )


async def users(fx: Fixtures) -> Service:
    """Users: each world's callers are accounts of their own (password PASSWORD, the
    examples' one), signed in now."""
    dsn = fx.database("users")

    async def new_caller(role: Role, world: World) -> Mapping[str, str]:
        user_id = await make_user(dsn, role)
        world.made.setdefault("session", str(user_id))  # make_user's, named by the user's id
        return auth(user_id, role)

    app = users_app(users_settings(dsn, **AUTH_LIMITS_OFF))
    return Service(await fx.client(app), new_caller=new_caller)


# the services wired to their worlds by hand; any other (a new one) is built alone
WIRED: dict[str, Callable[[Fixtures], Awaitable[Service]]] = {  # names services on purpose: worlds
    "users": users,
    "departments": departments,
    "catalog": catalog,
    "orders": orders,
    "chat": chat,
}


def singular(segment: str) -> str:
    name = segment.replace("-", "_")
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name.removesuffix("s")


def thing_of(schema_ref: str) -> str:
    """What a response's schema is about: `#/…/CategoryType` -> category_type,
    `GetJobRow` -> job, `UserOut` -> user."""
    name = schema_ref.rsplit("/", 1)[1].removeprefix("Get").removesuffix("Row").removesuffix("Out")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def answers(op: dict[str, Any]) -> str | None:
    """The thing a write's 2xx answer is, by its `data` schema's name."""
    for status, response in op["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        ref = schema.get("properties", {}).get("data", {}).get("$ref")
        if status.startswith("2") and ref:
            return thing_of(ref)
    return None


class World:
    """What the writes of one try answered, by thing, and its callers; its number keeps
    names and emails unique."""

    def __init__(self, service: Service, number: int) -> None:
        self.made = dict(service.known)
        self.number = number
        self.callers: dict[Role, Mapping[str, str]] = {}

    def id_for(self, name: str) -> str | None:
        """The id a `<thing>_id` field names: the thing's, or one whose name ends with
        `_<thing>` (`type_id`: category_type)."""
        thing = name.removesuffix("_id")
        for made, value in self.made.items():
            if made == thing or made.endswith(f"_{thing}"):
                return value
        return None

    def path(self, template: str, parameters: list[dict[str, Any]]) -> str | None:
        """`template` with its ids resolved; None while one is not made yet."""
        path = template
        for param in parameters:
            if param["in"] != "path":
                continue
            name = param["name"]
            holder = template.split("{" + name + "}", 1)[0].rstrip("/")
            made = self.id_for(singular(holder.rsplit("/", 1)[1]) if name == "id" else name)
            if made is None and "me|" in param["schema"].get("pattern", ""):
                made = "me"
            if made is None:
                return None
            path = path.replace("{" + name + "}", made)
        return path

    def body(self, example: Any) -> Any | None:
        """The example with its ids resolved (None while one is not made yet); a name
        or email made again carries the world's number (they are unique)."""
        if not isinstance(example, dict):
            return example
        resolved = dict(example)
        for name, value in example.items():
            if name.endswith("_id"):
                made = self.id_for(name)
                if made is None:
                    return None
                resolved[name] = made
            elif name == "name" and self.number:
                resolved[name] = f"{value} {self.number}"
            elif name == "email" and self.number:
                resolved[name] = value.replace("@", f"+{self.number}@")
        return resolved


def writes(document: dict[str, Any]) -> list[Write]:
    """Every write of the document."""
    return [
        (method, path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method in WRITES
    ]


def read_by(write: Write, readable: set[str]) -> str | None:
    """The resource a write changes, when the document reads it: the write's own path
    (PUT, PATCH, DELETE of `…/{id}`) or, for an action `…/{id}/<verb>`, its parent."""
    method, template, _ = write
    path = template if template.endswith("}") and method != "post" else None
    if method == "post" and template.rsplit("/", 1)[0].endswith("}"):
        path = template.rsplit("/", 1)[0]
    return path if path in readable else None


def label(write: Write) -> str:
    return f"{write[0].upper()} {write[1]}"


def example_body(op: dict[str, Any]) -> Any:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    return next(iter(content["examples"].values()))["value"]


async def events_of(client: Any, rid: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/audit-events?request_id={rid}", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    found: list[dict[str, Any]] = (await resp.json())["data"]
    return found


class Trial:
    """Calls writes in worlds of their own and collects what their events got wrong."""

    def __init__(self, service: Service, readable: set[str]) -> None:
        self.service = service
        self.readable = readable  # the paths the document GETs
        self.worlds = 0
        self.wrong: list[str] = []

    async def call(self, world: World, write: Write) -> int | None:
        """One write in `world` (None: an id it needs is not made there); its status."""
        method, template, op = write
        who = await self.service.caller(world, op)  # first: a world's caller may make ids
        path = world.path(template, op.get("parameters", []))
        body = world.body(example_body(op))
        if path is None or (body is None and example_body(op) is not None):
            return None
        client = self.service.client
        rid = f"discovery-{uuid.uuid4().hex}"
        headers = {"X-Request-ID": rid, **(who or {})}
        if any(p["name"] == "If-Match" and p.get("required") for p in op.get("parameters", [])):
            # an action on a resource (`…/{id}/restore`) takes the resource's tag
            resource = path if template.endswith("}") else path.rsplit("/", 1)[0]
            current = await client.get(resource, headers=who or ADMIN)
            assert current.status == 200, (resource, current.status)
            headers["If-Match"] = current.headers["ETag"]
        resp = await client.request(method, path, json=body, headers=headers)
        answer = await resp.json() if resp.content_type == "application/json" else None
        events = await events_of(client, rid)
        expected = 1 if 200 <= resp.status < 300 else 0
        if len(events) != expected or any(e["route"] != label(write) for e in events):
            self.wrong.append(f"{label(write)}: {resp.status} left {len(events)} events")
        changed = resp.status in (200, 204) and read_by(write, self.readable)
        if changed and any(e["before_fields"] is None for e in events):
            self.wrong.append(f"{label(write)}: its event has no fields before")
        thing = answers(op)
        if expected and thing and isinstance(answer, dict) and "id" in answer.get("data", {}):
            world.made[thing] = answer["data"]["id"]
        status: int = resp.status
        return status

    async def world(self, creates: list[Write]) -> World:
        """A new world: every create once, each once what it refers to is made."""
        world = World(self.service, self.worlds)
        self.worlds += 1
        pending = list(creates)
        while pending:
            ready = [w for w in pending if world.body(example_body(w[2])) is not None]
            assert ready, ("creates that refer to nothing made", [label(w) for w in pending])
            for write in ready:
                status = await self.call(world, write)
                assert status in range(200, 300), (label(write), status)
                pending.remove(write)
        return world

    async def attempt(self, creates: list[Write], chain: list[Write], write: Write) -> bool:
        """`write` after `chain` in a new world; False when a step or the write is refused."""
        world = await self.world(creates)
        for step in [*chain, write]:
            status = await self.call(world, step)
            if status is None or not 200 <= status < 300:
                return False
        return True


async def alone(fx: Fixtures, name: str) -> Service:
    return Service(await fx.client(plain_app(name, fx.database(name))))


@pytest.mark.parametrize("name", [s.name for s in registry.gateway_services() if s.built])
async def test_every_write_leaves_one_event_when_it_succeeds(
    aiohttp_client: Any,
    aiohttp_server: Any,
    migrated_db: Callable[[str], str],
    redis_prefix: str,
    name: str,
) -> None:
    fixtures = Fixtures(aiohttp_client, aiohttp_server, migrated_db, redis_prefix)
    service = await (WIRED[name](fixtures) if name in WIRED else alone(fixtures, name))
    document = await (await service.client.get("/v1/openapi.json")).json()
    found = writes(document)
    assert found, name
    # a create: POST /v1/<things> answering 201 (every world starts with them)
    creates = [w for w in found if w[0] == "post" and re.fullmatch(r"/v1/[a-z-]+", w[1])]
    creates = [w for w in creates if "201" in w[2]["responses"]]
    trial = Trial(service, {p for p, ops in document["paths"].items() if "get" in ops})
    chains: dict[str, list[Write]] = {label(w): [] for w in creates}
    await trial.world(creates)  # every create succeeds in a world of its own
    cannot = {route for (svc, route) in CANNOT_SUCCEED if svc == name}
    for write in [w for w in found if label(w) in cannot]:
        assert not await trial.attempt(creates, [], write), (label(write), "succeeds now")
    pending = [w for w in found if label(w) not in chains and label(w) not in cannot]
    progress = True
    while pending and progress:  # each round: what succeeds after a chain found so far
        progress = False
        bases: list[list[Write]] = [[]] + [
            [*chains[label(w)], w] for w in found if label(w) in chains and w not in creates
        ]
        for write in list(pending):
            for chain in bases:
                if await trial.attempt(creates, chain, write):
                    chains[label(write)] = chain
                    pending.remove(write)
                    progress = True
                    break
    assert trial.wrong == [], "\n".join([name, *trial.wrong])
    never = sorted(label(w) for w in pending)
    assert never == [], "\n".join([f"{name}: never succeeded", *never])


def test_names_follow_the_collections_and_the_schemas() -> None:
    assert [singular(s) for s in ("category-types", "categories", "services")] == [
        "category_type",
        "category",
        "service",
    ]
    assert re.fullmatch(r"[a-z_]+", singular("subcategories"))
    assert thing_of("#/components/schemas/GetJobRow") == "job"
    assert thing_of("#/components/schemas/CategoryType") == "category_type"
    assert thing_of("#/components/schemas/UserOut") == "user"
