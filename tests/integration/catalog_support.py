"""Shared helpers of the catalog tests: settings and a taxonomy chain."""

from __future__ import annotations

import uuid
from typing import Any

from lib.auth.principal import Role
from services.catalog.settings import CatalogSettings
from tests.integration.auth_support import Bearer, bearer, service_settings

ADMIN = Bearer(Role.ADMIN)


def catalog_settings(dsn: str, **overrides: Any) -> CatalogSettings:
    return service_settings(CatalogSettings, "catalog", dsn, **overrides)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


async def post(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    # a token of its own: ADMIN, made at import, expires in a run longer than its TTL
    resp = await client.post(path, json=body, headers=bearer(Role.ADMIN))
    assert resp.status == 201, await resp.text()
    made: dict[str, Any] = (await resp.json())["data"]
    assert resp.headers["ETag"] == f'"{made["version"]}"'
    assert resp.headers["Location"] == f"{path}/{made['id']}"
    return made


async def chain(client: Any) -> dict[str, dict[str, Any]]:
    """A new category type -> category -> subcategory -> service."""
    kind = await post(client, "/v1/category-types", {"name": unique("Type")})
    category = await post(client, "/v1/categories", {"type_id": kind["id"], "name": "Plumbing"})
    sub = await post(client, "/v1/subcategories", {"category_id": category["id"], "name": "Leaks"})
    service = await post(
        client,
        "/v1/services",
        {"subcategory_id": sub["id"], "name": "Fix a leak", "base_price": "80.50"},
    )
    return {"type": kind, "category": category, "subcategory": sub, "service": service}
