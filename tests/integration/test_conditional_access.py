"""A conditional route that requires a principal checks it before a 304 (ADR 0026), and a
conditional route that is not a GET refuses to start, naming the route."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from aiohttp import web

from lib.auth.principal import Role
from lib.http.app import create_app
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
    @operation("Secrets", tags=["t"], roles=("ADMIN",), conditional=fixed_tag)
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


def write_routes() -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.post("/v1/written")
    @operation("Write", tags=["t"], roles=("ADMIN",), conditional=fixed_tag)
    async def written(request: web.Request) -> web.Response:
        return web.json_response({})

    return routes


def test_a_conditional_route_that_is_not_a_get_refuses_to_start(departments_dsn: str) -> None:
    with pytest.raises(ValueError, match="POST /v1/written"):
        create_app(settings_for(departments_dsn), routes=write_routes(), title="t")


def wrapped_routes() -> web.RouteTableDef:
    routes = web.RouteTableDef()

    def wrap(inner: Any) -> Any:
        @functools.wraps(inner)
        async def outer(request: web.Request) -> web.StreamResponse:
            return await inner(request)  # type: ignore[no-any-return]

        return outer

    @routes.get("/v1/wrapped")
    @wrap
    @operation("Secrets", tags=["t"], roles=("ADMIN",), conditional=fixed_tag)
    async def wrapped(request: web.Request) -> web.Response:
        return web.json_response({"data": []}, headers={"ETag": TAG})

    return routes


async def test_a_conditional_route_wrapped_again_answers_no_304(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    """Something wraps the guard: the route is not `declared`, so no 304 skips its rule."""
    app = create_app(settings_for(departments_dsn), routes=wrapped_routes(), title="t")
    client = await aiohttp_client(app)
    anonymous = await client.get("/v1/wrapped", headers={"If-None-Match": TAG})
    assert anonymous.status == 401
    admin = await client.get("/v1/wrapped", headers={"If-None-Match": TAG, **bearer(Role.ADMIN)})
    assert admin.status == 200
