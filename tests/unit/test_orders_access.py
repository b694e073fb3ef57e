"""services/orders/access without a server: who sees an order (docs/api.md, "orders"). A
wrong answer here is an IDOR, so every role meets every relation to the order, against
fakes of the generated queries and of the catalog client that record what was asked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from lib.auth.principal import Principal, Role
from lib.errors import NotFound, Unauthorized
from lib.http.keys import DB, PRINCIPAL
from services.orders import access
from services.orders.db import models
from services.orders.deps import CATALOG

ORDER = uuid.UUID("0000000a-0000-4000-8000-000000000001")
CUSTOMER = uuid.UUID("0000000c-0000-4000-8000-000000000001")
PROVIDER = uuid.UUID("0000000b-0000-4000-8000-000000000001")
OTHER = uuid.UUID("0000000d-0000-4000-8000-000000000001")
SERVICE = uuid.UUID("00000005-0000-4000-8000-000000000001")
AT = datetime(2026, 1, 1, tzinfo=UTC)


def order(status: models.OrderStatus = models.OrderStatus.OPEN) -> models.Order:
    return models.Order(
        id=ORDER,
        customer_id=CUSTOMER,
        customer_name="C",
        service_id=SERVICE,
        description="d",
        address="a",
        time_start=AT,
        time_end=AT,
        status=status,
        version=1,
        created_at=AT,
        updated_at=AT,
    )


class World:
    """The order table, the offers/jobs relation and catalog, recording each question."""

    def __init__(self) -> None:
        self.order: models.Order | None = order()
        self.involved: bool | None = False
        self.offered: set[uuid.UUID] = set()
        self.asked: list[tuple[str, Any]] = []

    async def get_order(self, conn: Any, *, id: uuid.UUID) -> models.Order | None:
        self.asked.append(("get_order", (conn, id)))
        return self.order

    async def provider_involved(
        self, conn: Any, *, order_id: uuid.UUID, provider_id: uuid.UUID
    ) -> bool | None:
        self.asked.append(("provider_involved", (conn, order_id, provider_id)))
        return self.involved

    async def services_of_provider(
        self, provider_id: uuid.UUID, *, caller: web.Request | None = None
    ) -> set[uuid.UUID]:
        self.asked.append(("catalog", (provider_id, caller)))
        return self.offered

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[str]:
        yield "conn"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(access.q, "get_order", world.get_order)
    monkeypatch.setattr(access.q, "provider_involved", world.provider_involved)
    return world


def request(world: World, user: uuid.UUID | None, role: Role = Role.CUSTOMER) -> web.Request:
    app = web.Application()
    app[DB] = cast(Any, world)
    app[CATALOG] = cast(Any, world)
    req = make_mocked_request("GET", f"/v1/orders/{ORDER}", app=app)
    if user is not None:
        req[PRINCIPAL] = Principal(user, role, True, "jti", AT)
    return req


async def sees(world: World, user: uuid.UUID, role: Role) -> bool:
    try:
        got = await access.visible_order(request(world, user, role), ORDER)
    except NotFound as exc:
        detail = exc.detail
    else:
        assert got is world.order
        return True
    assert detail == "no such order"
    return False


async def test_the_customer_sees_their_order_in_every_state(world: World) -> None:
    for status in models.OrderStatus:
        world.order = order(status)
        assert await sees(world, CUSTOMER, Role.CUSTOMER)
    assert [name for name, _ in world.asked] == ["get_order"] * len(models.OrderStatus)
    assert world.asked[0] == ("get_order", ("conn", ORDER))


async def test_another_customer_does_not(world: World) -> None:
    assert not await sees(world, OTHER, Role.CUSTOMER)
    assert [name for name, _ in world.asked] == ["get_order"]  # neither involved nor catalog


async def test_an_admin_sees_every_order(world: World) -> None:
    world.order = order(models.OrderStatus.CANCELLED)
    assert await sees(world, OTHER, Role.ADMIN)


async def test_a_moderator_is_not_an_admin(world: World) -> None:
    assert not await sees(world, OTHER, Role.MODERATOR)


async def test_a_missing_order_is_404_even_for_an_admin(world: World) -> None:
    world.order = None
    assert not await sees(world, OTHER, Role.ADMIN)
    assert not await sees(world, PROVIDER, Role.PROVIDER)
    assert [name for name, _ in world.asked] == ["get_order", "get_order"]


async def test_an_involved_provider_sees_it_in_any_state(world: World) -> None:
    world.involved = True
    world.order = order(models.OrderStatus.COMPLETED)
    assert await sees(world, PROVIDER, Role.PROVIDER)
    assert world.asked == [
        ("get_order", ("conn", ORDER)),
        ("provider_involved", ("conn", ORDER, PROVIDER)),
    ]


async def test_involvement_is_not_asked_for_other_roles(world: World) -> None:
    world.involved = True
    assert not await sees(world, OTHER, Role.CUSTOMER)
    assert "provider_involved" not in [name for name, _ in world.asked]


@pytest.mark.parametrize("involved", [False, None])
async def test_a_provider_offering_the_service_sees_it_while_open(
    world: World, involved: bool | None
) -> None:
    world.involved = involved
    world.offered = {SERVICE, OTHER}
    req = request(world, PROVIDER, Role.PROVIDER)
    assert await access.visible_order(req, ORDER) is world.order
    assert world.asked[-1] == ("catalog", (PROVIDER, req))


@pytest.mark.parametrize(
    "status",
    [models.OrderStatus.ASSIGNED, models.OrderStatus.COMPLETED, models.OrderStatus.CANCELLED],
)
async def test_but_not_once_it_left_open(world: World, status: models.OrderStatus) -> None:
    world.offered = {SERVICE}
    world.order = order(status)
    assert not await sees(world, PROVIDER, Role.PROVIDER)
    assert "catalog" not in [name for name, _ in world.asked]


async def test_a_provider_of_other_services_does_not(world: World) -> None:
    world.offered = {OTHER}
    assert not await sees(world, PROVIDER, Role.PROVIDER)


async def test_offered_services_are_asked_of_catalog_only_for_providers(world: World) -> None:
    world.offered = {SERVICE}
    customer = request(world, CUSTOMER, Role.CUSTOMER)
    assert await access.offered_services(customer, cast(Principal, customer[PRINCIPAL])) == set()
    assert world.asked == []
    provider = request(world, PROVIDER, Role.PROVIDER)
    got = await access.offered_services(provider, cast(Principal, provider[PRINCIPAL]))
    assert got == {SERVICE}
    assert world.asked == [("catalog", (PROVIDER, provider))]


async def test_anonymous_is_401(world: World) -> None:
    with pytest.raises(Unauthorized):
        await access.visible_order(request(world, None), ORDER)


def test_no_such_order() -> None:
    error = access.no_such_order()
    assert isinstance(error, NotFound)
    assert error.detail == "no such order"
