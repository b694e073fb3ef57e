"""Every write a service serves leaves exactly one audit event when it succeeds and none
when it is refused (ADR 0057), found in the served OpenAPI document, not listed here: a
new route is covered without editing this test.

Each write is called with its document's request example, its path ids and the `*_id`
fields of its body resolved to what the service's own creates answered (a `{id}` that may
be `me` is the caller), `If-Match` read from the resource, as the first role its
`x-access` names. Creates run first (each once what it refers to exists), then the other
writes, deletes last (the dependents first). Every write must succeed but those of
CANNOT_SUCCEED, which must be refused: one that starts to succeed fails the test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from lib.auth.principal import Role
from services.catalog.app import create_app as catalog_app
from services.departments.app import create_app as departments_app
from tests.integration.auth_support import Bearer, settings_for
from tests.integration.catalog_support import catalog_settings

WRITES = ("post", "put", "patch", "delete")
ADMIN = Bearer(Role.ADMIN)
# what no document example can make succeed (mailed tokens, passkey ceremonies, TOTP
# codes, uploads): (service, METHOD path) -> why; each must be refused
CANNOT_SUCCEED: dict[tuple[str, str], str] = {}
APPS: dict[str, Callable[[str], web.Application]] = {
    "departments": lambda dsn: departments_app(settings_for(dsn)),
    "catalog": lambda dsn: catalog_app(catalog_settings(dsn)),
}


def singular(segment: str) -> str:
    name = segment.replace("-", "_")
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name.removesuffix("s")


class World:
    """What the service's creates answered, by collection path."""

    def __init__(self) -> None:
        self.created: dict[str, str] = {}

    def id_for(self, field: str) -> str | None:
        """The created id a `<thing>_id` field names: the collection whose singular name
        is, or ends with, `<thing>` (`type_id`: /v1/category-types)."""
        thing = field.removesuffix("_id")
        for path, made in self.created.items():
            name = singular(path.rsplit("/", 1)[1])
            if name == thing or name.endswith(f"_{thing}"):
                return made
        return None

    def path(self, template: str, parameters: list[dict[str, Any]]) -> str | None:
        """`template` with its ids resolved; None while one is not created yet."""
        path = template
        for param in parameters:
            if param["in"] != "path":
                continue
            name = param["name"]
            holder = template.split("{" + name + "}", 1)[0].rstrip("/")
            made = self.created.get(holder) if name == "id" else self.id_for(name)
            if made is None and "me|" in param["schema"].get("pattern", ""):
                made = "me"
            if made is None:
                return None
            path = path.replace("{" + name + "}", made)
        return path

    def body(self, example: Any) -> Any | None:
        if not isinstance(example, dict):
            return example
        resolved = dict(example)
        for field in example:
            if field.endswith("_id"):
                made = self.id_for(field)
                if made is None:
                    return None
                resolved[field] = made
        return resolved


def writes(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every write of the document: (method, path template, operation)."""
    return [
        (method, path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method in WRITES
    ]


def example_body(op: dict[str, Any]) -> Any:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    return next(iter(content["examples"].values()))["value"]


def caller(op: dict[str, Any]) -> Bearer | None:
    access = op.get("x-access")
    return Bearer(Role(access["roles"][0])) if access else None


async def events_of(client: Any, rid: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/audit-events?request_id={rid}", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    found: list[dict[str, Any]] = (await resp.json())["data"]
    return found


async def call(
    client: Any, method: str, template: str, path: str, op: dict[str, Any], body: Any,
    wrong: list[str],
) -> tuple[int, Any]:  # fmt: skip
    """One write; what its events got wrong goes to `wrong` (every write is called, so
    one run names each that is wrong)."""
    who = caller(op)
    rid = f"discovery-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": rid, **(who or {})}
    if any(p["name"] == "If-Match" and p.get("required") for p in op.get("parameters", [])):
        # an action on a resource (`…/{id}/restore`) takes the resource's tag
        resource = path if template.endswith("}") else path.rsplit("/", 1)[0]
        current = await client.get(resource, headers=ADMIN)
        assert current.status == 200, (resource, current.status)
        headers["If-Match"] = current.headers["ETag"]
    resp = await client.request(method, path, json=body, headers=headers)
    answer = await resp.json() if resp.content_type == "application/json" else None
    label = f"{method.upper()} {template}"
    events = await events_of(client, rid)
    expected = 1 if 200 <= resp.status < 300 else 0
    if len(events) != expected or any(e["route"] != label for e in events):
        wrong.append(f"{label}: {resp.status} left {len(events)} events")
    return resp.status, answer


@pytest.mark.parametrize("service", sorted(APPS))
async def test_every_write_leaves_one_event_when_it_succeeds(
    aiohttp_client: Any, migrated_db: Callable[[str], str], service: str
) -> None:
    client = await aiohttp_client(APPS[service](migrated_db(service)))
    document = await (await client.get("/v1/openapi.json")).json()
    found = writes(document)
    assert found, service
    world = World()
    statuses: dict[str, int] = {}
    wrong: list[str] = []
    creates = [w for w in found if w[0] == "post" and "{" not in w[1]]
    while creates:  # each create once what its body refers to exists
        ready = [w for w in creates if world.body(example_body(w[2])) is not None]
        assert ready, (service, "creates that refer to nothing created", creates)
        for method, template, op in ready:
            status, answer = await call(
                client, method, template, template, op, world.body(example_body(op)), wrong
            )
            statuses[f"{method.upper()} {template}"] = status
            if status == 201:
                world.created[template] = answer["data"]["id"]
            creates.remove((method, template, op))
    rest = [w for w in found if f"{w[0].upper()} {w[1]}" not in statuses]
    deletes = sorted(
        (w for w in rest if w[0] == "delete"),
        key=lambda w: (-w[1].count("{"), -list(world.created).index(w[1].rsplit("/", 1)[0])
                       if w[1].rsplit("/", 1)[0] in world.created else 0),
    )  # fmt: skip
    for method, template, op in [w for w in rest if w[0] != "delete"] + deletes:
        path = world.path(template, op.get("parameters", []))
        assert path is not None, (service, template, "an id no create answered")
        status, _ = await call(
            client, method, template, path, op, world.body(example_body(op)), wrong
        )
        statuses[f"{method.upper()} {template}"] = status
    assert wrong == [], "\n".join([service, *wrong])
    assert set(statuses) == {f"{m.upper()} {p}" for m, p, _ in found}
    refused = {label: s for label, s in statuses.items() if not 200 <= s < 300}
    expected = {label for (svc, label) in CANNOT_SUCCEED if svc == service}
    assert set(refused) == expected, (service, refused)


def test_singular_names_follow_the_collections() -> None:
    assert [singular(s) for s in ("category-types", "categories", "services")] == [
        "category_type",
        "category",
        "service",
    ]
    assert re.fullmatch(r"[a-z_]+", singular("subcategories"))
