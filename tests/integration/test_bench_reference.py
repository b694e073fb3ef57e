"""bench/http_reference.py's reference server answers exactly what the service answers.

The benchmark's ratio is only meaningful while both do the same work; a column the
reference misses (or an order it gets wrong) fails here, not silently in the figures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from lib import tracing
from lib.auth.principal import Role
from tests.integration.auth_support import bearer

REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "http_reference.py"


def load_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_http_reference", REFERENCE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_reference_returns_the_service_bytes(
    client: Any, aiohttp_client: Any, departments_dsn: str
) -> None:
    for name in ("Zeta works", "Alpha works", "Mid works"):
        resp = await client.post(
            "/v1/departments",
            json={"name": name, "address": "1 Main St"},
            headers=bearer(Role.ADMIN),
        )
        assert resp.status == 201, await resp.text()
    reference = await aiohttp_client(load_reference().reference_app(departments_dsn))

    from_service = await client.get("/v1/departments?limit=50")
    from_reference = await reference.get("/v1/departments?limit=50")

    assert from_service.status == from_reference.status == 200
    service_body = await from_service.read()
    assert await from_reference.read() == service_body
    rows = (await from_service.json())["data"]
    assert [r["name"] for r in rows] == ["Alpha works", "Mid works", "Zeta works"]
    assert set(rows[0]) == {
        "id",
        "name",
        "address",
        "version",
        "created_at",
        "updated_at",
        "archived_at",
    }


async def test_bare_layers_has_as_many_layers_as_the_service(client: Any) -> None:
    """bench/http_frameworks.py's `bare-layers` prices the depth of create_app's chain."""
    chain = client.server.app.middlewares

    assert len(chain) == load_reference().SERVICE_LAYERS + tracing.ENABLED
