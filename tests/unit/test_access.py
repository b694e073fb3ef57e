"""lib/http/access.py without a server: the declaration's checks at import time, the
guard's answer for every kind of caller, and the text and `x-access` the OpenAPI shows
(the role matrix, tests/integration/test_access_matrix.py, runs it in every service)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import Field

from lib.auth.principal import Principal, Role
from lib.errors import Forbidden, Unauthorized
from lib.http.access import EVERY_ROLE, SELF, Access, query_roles
from lib.http.keys import PRINCIPAL
from lib.http.listing import ARCHIVED, ListQuery, State, state_field
from lib.http.openapi import declared, operation


def request(role: Role | None = None, *, verified: bool = True) -> web.Request:
    req = make_mocked_request("GET", "/")
    req[PRINCIPAL] = (
        None
        if role is None
        else Principal(uuid.uuid4(), role, verified, "jti", datetime(2030, 1, 1, tzinfo=UTC))
    )
    return req


async def answer(access: Access, req: web.Request) -> str:
    try:
        await access.enforce(req)
    except Unauthorized as exc:
        return f"401 {exc.detail}"
    except Forbidden as exc:
        return f"403 {exc.detail}"
    return "pass"


def test_declare_refuses_what_cannot_be_meant() -> None:
    with pytest.raises(
        ValueError, match=r"^a public operation has no owner, any_owner or verified rule$"
    ):
        Access.declare(None, owner=SELF)
    with pytest.raises(ValueError, match="public operation"):
        Access.declare(None, verified=True)
    with pytest.raises(ValueError, match="public operation"):
        Access.declare(None, any_owner=("ADMIN",))
    with pytest.raises(ValueError, match=r"^any_owner roles must be among the roles$"):
        Access.declare(("CUSTOMER",), any_owner=("ADMIN",))
    with pytest.raises(ValueError, match="OWNER"):
        Access.declare(("OWNER",))  # not a role
    assert Access.declare(()) == Access.declare(EVERY_ROLE)  # (): any signed-in caller
    assert Access.declare(None).roles is None
    made = Access.declare(("CUSTOMER", "ADMIN"), owner="x", any_owner=("ADMIN",), verified=True)
    assert made == Access((Role.CUSTOMER, Role.ADMIN), "x", (Role.ADMIN,), True)


async def test_the_guard_for_every_kind_of_caller() -> None:
    public = Access.declare(None)
    customer = Access.declare(("CUSTOMER", "ADMIN"), any_owner=("ADMIN",), verified=True)
    for role in (None, *Role):
        assert await answer(public, request(role, verified=False)) == "pass"
    assert await answer(customer, request()) == "401 authentication required"
    assert await answer(customer, request(Role.CUSTOMER)) == "pass"
    assert await answer(customer, request(Role.PROVIDER)) == ("403 requires role CUSTOMER or ADMIN")
    assert await answer(customer, request(Role.MODERATOR, verified=False)) == (
        "403 requires role CUSTOMER or ADMIN"  # the role is checked first
    )
    assert await answer(customer, request(Role.CUSTOMER, verified=False)) == (
        "403 account not verified"
    )
    assert await answer(customer, request(Role.ADMIN, verified=False)) == "pass"  # any_owner
    anyone = Access.declare(EVERY_ROLE)
    for role in Role:
        assert await answer(anyone, request(role, verified=False)) == "pass"
    assert await answer(anyone, request()) == "401 authentication required"


async def test_a_route_that_reads_its_own_token() -> None:
    seen: list[web.Request] = []
    principal = Principal(uuid.uuid4(), Role.PROVIDER, True, "j", datetime(2030, 1, 1, tzinfo=UTC))

    async def from_subprotocol(req: web.Request) -> Principal:
        seen.append(req)
        return principal

    access = Access.declare(("CUSTOMER",), authenticate=from_subprotocol)
    req = request()  # no principal from the middleware
    assert await answer(access, req) == "403 requires role CUSTOMER"
    assert seen == [req]
    ok = Access.declare(("PROVIDER",), authenticate=from_subprotocol)
    assert await answer(ok, request()) == "pass"


def test_what_the_document_shows() -> None:
    assert Access.declare(None).text() == ""
    assert Access.declare(("ADMIN",)).text() == "Roles: ADMIN."
    two = Access.declare(("CUSTOMER", "MODERATOR", "ADMIN"), owner="its author",
                         any_owner=("MODERATOR", "ADMIN"), verified=True)  # fmt: skip
    assert two.text() == (
        "Roles: CUSTOMER, MODERATOR, ADMIN. Owner only: its author; MODERATOR, ADMIN: "
        "anyone's. Verified accounts only (MODERATOR, ADMIN exempt)."
    )
    assert Access.declare(()).text() == "Roles: any signed-in caller."
    full = Access.declare(EVERY_ROLE, owner=SELF, any_owner=("ADMIN",), verified=True)
    assert full.text() == (
        "Roles: any signed-in caller. Owner only: the user themself (`me` or their id); "
        "ADMIN: anyone's. Verified accounts only (ADMIN exempt)."
    )
    assert Access.declare(("PROVIDER",), owner="the job's provider").text() == (
        "Roles: PROVIDER. Owner only: the job's provider."
    )
    assert Access.declare(("CUSTOMER",), verified=True).text() == (
        "Roles: CUSTOMER. Verified accounts only."
    )
    assert full.extension() == {
        "roles": ["CUSTOMER", "PROVIDER", "MODERATOR", "ADMIN"],
        "owner": "self",
        "any_owner": ["ADMIN"],
        "verified": True,
    }
    assert Access.declare(("ADMIN",)).extension() == {
        "roles": ["ADMIN"], "owner": None, "any_owner": [], "verified": False,
    }  # fmt: skip


async def test_operation_guards_the_handler_before_it_runs() -> None:
    ran: list[Any] = []

    @operation("Do it", tags=["t"], roles=("ADMIN",))
    async def handler(req: web.Request) -> web.Response:
        ran.append(req)
        return web.Response(status=204)

    assert declared(handler) is not None
    assert handler.__name__ == "handler"
    with pytest.raises(Forbidden):
        await handler(request(Role.CUSTOMER))
    assert ran == []
    assert (await handler(request(Role.ADMIN))).status == 204
    assert len(ran) == 1

    def wrap(inner: Any) -> Any:
        import functools

        @functools.wraps(inner)
        async def outer(req: web.Request) -> web.Response:
            return await inner(req)  # type: ignore[no-any-return]

        return outer

    assert declared(wrap(handler)) is None  # something answers before the guard
    assert declared(lambda r: r) is None


async def test_a_public_operation_keeps_its_handler() -> None:
    """Decided when the route is declared: nothing wraps a public handler, so it costs
    nothing per request; a guarded one checks the principal the middleware set."""

    async def handler(req: web.Request) -> web.Response:
        return web.Response(status=204)

    public = operation("Read it", tags=["t"])(handler)
    assert public is handler
    op = declared(public)
    assert op is not None
    assert op.access.roles is None
    assert (await public(request())).status == 204

    async def other(req: web.Request) -> web.Response:
        return web.Response(status=204)

    anyone = operation("Do it", tags=["t"], roles=())(other)
    assert anyone is not other
    assert declared(anyone) is not None
    with pytest.raises(Unauthorized):
        await anyone(request())
    assert (await anyone(request(Role.PROVIDER, verified=False))).status == 204


class Archiving(ListQuery):
    """A list with an ADMIN-only filter (an archiving list's `state`, ADR 0058)."""

    state: State = state_field()
    other: str | None = Field(None, alias="also", json_schema_extra={"x-note": "not roles"})


def with_query(path: str, role: Role | None = None) -> web.Request:
    req = make_mocked_request("GET", path)
    req[PRINCIPAL] = None if role is None else request(role)[PRINCIPAL]
    return req


async def test_a_query_parameter_only_some_roles_may_give() -> None:
    assert query_roles(None) == ()
    assert query_roles(ListQuery) == ()
    assert query_roles(Archiving) == (("state", (Role.ADMIN,), "active"),)
    access = Access.declare(None, query=Archiving)
    assert access.query_roles == (("state", (Role.ADMIN,), "active"),)
    assert access.query_text() == " `state` other than active: ADMIN only."
    assert Access.declare(None).query_text() == ""

    class Two(Archiving):
        seen: bool = Field(False, json_schema_extra={"x-roles": ["MODERATOR", "ADMIN"]})

    two = Access.declare(None, query=Two)
    assert two.query_text() == (
        " `state` other than active: ADMIN only. `seen` other than False: MODERATOR, ADMIN only."
    )
    assert await answer(two, with_query("/?seen=true", Role.MODERATOR)) == "pass"
    assert await answer(access, with_query("/?limit=1")) == "pass"  # not given: anyone
    assert await answer(access, with_query("/?also=x")) == "pass"
    assert await answer(access, with_query("/?state=all")) == (
        "401 `state` needs a signed-in caller"
    )
    assert await answer(access, with_query("/?state=archived", Role.CUSTOMER)) == (
        "403 requires role ADMIN"
    )
    # its default is anyone's to give (Swagger UI's "Try it out" sends it)
    assert await answer(access, with_query("/?state=active")) == "pass"
    assert await answer(access, with_query("/?state=archived", Role.ADMIN)) == "pass"
    guarded = Access.declare(("CUSTOMER", "ADMIN"), query=Archiving)
    assert await answer(guarded, with_query("/?state=all", Role.CUSTOMER)) == (
        "403 requires role ADMIN"
    )
    assert await answer(guarded, with_query("/", Role.CUSTOMER)) == "pass"
    assert await answer(guarded, with_query("/?state=all")) == "401 authentication required"


async def test_a_public_operation_with_such_a_parameter_is_guarded() -> None:
    ran: list[Any] = []

    async def handler(req: web.Request) -> web.Response:
        ran.append(req)
        return web.Response(status=204)

    guarded = operation("List them", tags=["t"], query=Archiving)(handler)
    assert guarded is not handler
    op = declared(guarded)
    assert op is not None
    assert op.access.roles is None
    assert (await guarded(with_query("/"))).status == 204
    with pytest.raises(Unauthorized):
        await guarded(with_query("/?state=all"))
    with pytest.raises(Forbidden):
        await guarded(with_query("/?state=all", Role.PROVIDER))
    assert len(ran) == 1
    assert (await guarded(with_query("/?state=all", Role.ADMIN))).status == 204
    assert len(ran) == 2


def test_the_state_filter() -> None:
    assert {State(s): ARCHIVED[State(s)] for s in ("active", "archived", "all")} == {
        State.active: False, State.archived: True, State.all: None,
    }  # fmt: skip
    assert Archiving.model_validate({}).state is State.active
    assert Archiving.model_validate({"state": "all"}).state is State.all
    field = Archiving.model_fields["state"]
    assert field.json_schema_extra == {"x-roles": ["ADMIN"]}
    fresh = state_field()  # called here, not only when the class above was made
    assert (fresh.default, fresh.json_schema_extra) == (State.active, {"x-roles": ["ADMIN"]})
    assert fresh.description == field.description
    assert (
        field.description == "Live rows (active, the default), archived ones, or all. ADMIN only."
    )
