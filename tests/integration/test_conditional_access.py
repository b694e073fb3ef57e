"""A @conditional route that requires a principal checks it before a 304 (ADR 0026), and a
@conditional route whose access the 304 could skip refuses to start, naming the route."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from lib.auth.principal import Role
from lib.http.app import create_app
from lib.http.conditional import conditional
from lib.http.openapi import operation
from tests.integration.auth_support import bearer, settings_for

TAG = '"admins-only.1"'


async def fixed_tag(request: web.Request, conn: Any) -> str | None:
    """A tag read on the pooled connection, as a real stamp is."""
    assert await conn.fetchval("SELECT 1") == 1
    return TAG


def admin_routes() -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/v1/secrets")
    @conditional(fixed_tag)
    @operation("Secrets", tags=["t"], roles=("ADMIN",))
    async def secrets(request: web.Request) -> web.Response:
        return web.json_response({"data": []}, headers={"ETag": TAG})

    return routes


async def test_a_guarded_conditional_route_authenticates_before_its_304(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    app = create_app(settings_for(departments_dsn), routes=admin_routes(), title="t")
    client = await aiohttp_client(app)
    unchanged = {"If-None-Match": TAG}

    anonymous = await client.get("/v1/secrets", headers=unchanged)
    assert anonymous.status == 401
    assert (await anonymous.json())["code"] == "UNAUTHORIZED"
    user = await client.get("/v1/secrets", headers={**unchanged, **bearer(Role.CUSTOMER)})
    assert user.status == 403
    garbage = await client.get(
        "/v1/secrets", headers={**unchanged, "Authorization": "Bearer garbage"}
    )
    assert garbage.status == 401
    admin = await client.get("/v1/secrets", headers={**unchanged, **bearer(Role.ADMIN)})
    assert (admin.status, admin.headers["ETag"]) == (304, TAG)


def unguarded_routes() -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/v1/unguarded")
    @conditional(fixed_tag)
    async def unguarded(request: web.Request) -> web.Response:
        return web.json_response({})

    return routes


def write_routes() -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.post("/v1/written")
    @conditional(fixed_tag)
    @operation("Write", tags=["t"], roles=("ADMIN",))
    async def written(request: web.Request) -> web.Response:
        return web.json_response({})

    return routes


@pytest.mark.parametrize(
    ("routes", "named"),
    [(unguarded_routes, "GET /v1/unguarded"), (write_routes, "POST /v1/written")],
    ids=["no @operation", "not a GET"],
)
def test_a_conditional_route_that_could_skip_its_access_refuses_to_start(
    routes: Any, named: str, departments_dsn: str
) -> None:
    with pytest.raises(ValueError, match=named):
        create_app(settings_for(departments_dsn), routes=routes(), title="t")
