"""Every revoking action x every actor revokes exactly the target's tokens and leaves the
actor's working, at users and across services (real users/catalog/orders/chat apps, one
real Redis: the stack of tests/integration/test_revocation_services.py): the target's
token is 401 everywhere within the documented bound, its open chat WebSocket is closed
(4001) and no new one opens; its old password signs in no more, and a new login after a
password change or reset works at once in every service.

The actions come from the users OpenAPI document: each operation that says it revokes the
access tokens. The actors come from its `x-access`: the account itself (`owner: self`),
each `any_owner` role acting on another account, and nobody (a public operation: the reset
link). An operation the document adds without a way to call it here fails the test."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lib.auth.principal import Role
from tests import pg
from tests.integration.chat_support import eventually
from tests.integration.test_revocation_services import (  # noqa: F401  (fixtures)
    CACHE_TTL,
    MARGIN,
    NEW_PASSWORD,
    SWEEP,
    Account,
    Stack,
    login,
    open_chat,
    prefix,
    reset_password,
    stack,
    statuses,
)
from tests.integration.users_support import PASSWORD, make_user

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "users.json"
ALLOWED = dict.fromkeys(("catalog", "chat", "users"), 200) | {"orders": 201}


def revoking_cases() -> list[tuple[str, str]]:
    """("METHOD path", actor): 'self', a role acting on another account, or 'nobody'."""
    doc = json.loads(DOC.read_text())
    cases = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            key = f"{method.upper()} {path}"
            text = op.get("description", "").lower()
            if "revok" not in text or "access token" not in text:
                continue
            access = op.get("x-access")
            if access is None:
                cases.append((key, "nobody"))
                continue
            if access["owner"] == "self":
                cases.append((key, "self"))
            cases += [(key, role) for role in access["any_owner"]]
    return cases


async def account(st: Stack, role: Role = Role.CUSTOMER) -> Account:
    user_id = await make_user(st.users_dsn, role)
    email = await pg.fetchval(st.users_dsn, "SELECT email FROM users WHERE id = $1", user_id)
    return Account(user_id, email, await login(st, email))


async def version_of(st: Stack, user_id: uuid.UUID) -> int:
    row = await pg.fetchrow(st.users_dsn, "SELECT version FROM users WHERE id = $1", user_id)
    return int(row[0])


async def delete_user(st: Stack, target: Account, actor: Account | None) -> Any:
    assert actor is not None
    path = "/v1/users/me" if actor is target else f"/v1/users/{target.id}"
    headers = actor.headers | {"If-Match": f'"{await version_of(st, target.id)}"'}
    return await st.users.delete(path, headers=headers)


async def change_password(st: Stack, target: Account, actor: Account | None) -> Any:
    assert actor is target
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    return await st.users.post("/v1/users/me/password", json=body, headers=actor.headers)


async def reset(st: Stack, target: Account, actor: Account | None) -> Any:
    assert actor is None
    return await reset_password(st, target)


Action = Callable[[Stack, Account, Account | None], Awaitable[Any]]
# how to call each revoking operation of the document, and the password the target signs
# in with afterwards (None: the account is gone)
CALLS: dict[str, tuple[Action, str | None]] = {
    "DELETE /v1/users/{id}": (delete_user, None),
    "POST /v1/users/me/password": (change_password, NEW_PASSWORD),
    "POST /v1/auth/password-reset/confirm": (reset, NEW_PASSWORD),
}


def call_of(operation: str) -> tuple[Action, str | None]:
    assert operation in CALLS, f"no way to call {operation} here: add it to CALLS"
    return CALLS[operation]


@pytest.mark.parametrize(("operation", "actor_kind"), revoking_cases())
async def test_a_revoking_action_revokes_exactly_the_target(
    stack: Stack,  # noqa: F811  (the fixture)
    operation: str,
    actor_kind: str,
) -> None:
    call, password = call_of(operation)
    target = await account(stack)
    socket = await open_chat(stack, target)
    bystander = await account(stack)
    actor: Account | None = None
    if actor_kind == "self":
        actor = target
    elif actor_kind != "nobody":
        actor = await account(stack, Role(actor_kind))
    others = [a for a in (actor, bystander) if a is not None and a is not target]
    assert await statuses(stack, target.headers) == ALLOWED
    # every service's cache now holds "not revoked" for each of them
    before = [await statuses(stack, who.headers) for who in others]
    assert all(401 not in answers.values() for answers in before), before

    resp = await call(stack, target, actor)
    assert resp.status == 204, await resp.text()
    revoked_at = time.monotonic()
    # the users process wrote the record: it refuses the token at once
    me = await stack.users.get("/v1/users/me", headers=target.headers)
    assert me.status == 401, f"{operation} by {actor_kind}: the target's token still works"
    assert (await me.json())["detail"] == "token revoked"

    async def refused_everywhere() -> bool:
        return set((await statuses(stack, target.headers)).values()) == {401}

    await eventually(
        refused_everywhere, f"{operation} by {actor_kind}: 401 everywhere", CACHE_TTL + MARGIN
    )
    assert time.monotonic() - revoked_at < CACHE_TTL + MARGIN
    # the open socket is closed: 4001, within the sweep period plus the cache's bound
    closed = await socket.receive(timeout=SWEEP + CACHE_TTL + MARGIN)
    assert closed.type == aiohttp.WSMsgType.CLOSE, closed
    assert (closed.data, closed.extra) == (4001, "token revoked")
    assert time.monotonic() - revoked_at < SWEEP + CACHE_TTL + MARGIN
    await socket.close()
    # nor can the revoked token open a new socket (401 before the upgrade)
    token = target.headers["Authorization"].removeprefix("Bearer ")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.chat.ws_connect(
            "/v1/conversations/00000000-0000-0000-0000-000000000000/ws",
            protocols=("fixup.bearer", token),
        )
    assert refused.value.status == 401
    # past the caches' bound: a wrong revocation of anyone else would show by now
    for who, answers in zip(others, before, strict=True):
        name = "the actor" if who is actor else "a bystander"
        assert await statuses(stack, who.headers) == answers, f"{operation}: {name} revoked"

    if password is not None:
        # a new login with the new password works at once, in every service: its token
        # was signed after the revocation (milliseconds apart, maybe the same second)
        again = await login(stack, target.email, password)
        assert await statuses(stack, again) == ALLOWED
    old = await stack.users.post(
        "/v1/auth/login", json={"email": target.email, "password": PASSWORD}
    )
    assert old.status == 401  # the old password, or the account gone


def test_every_actor_of_the_document_is_covered() -> None:
    """Self, ADMIN on another and the reset link: what the issue asks for is in the list."""
    kinds = {kind for _, kind in revoking_cases()}
    assert {"self", "ADMIN", "nobody"} <= kinds, kinds
