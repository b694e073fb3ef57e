"""A Redis outage is not an auth outage (ADR 0010): users, catalog, orders and two chat
replicas on loopback with a redis-server of their own, really stopped. While it is down
every service asks users' record (GET /v1/auth/revocation, users' database) instead:
an account no process has seen posts on either chat replica, opens a socket and uses every
authenticated route normally; an account deleted just before the outage is refused
everywhere within the cache's bound. Only with users away too does a service answer 503
(Retry-After), never a pass. Anonymous auth routes ignore a revoked Authorization header.
About 10 s."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.integration.chat_support import eventually
from tests.integration.orders_support import offer_body
from tests.integration.test_revocation_services import (
    CACHE_TTL,
    MARGIN,
    Account,
    Stack,
    delete_account,
    new_order,
    signed_in,
    start_stack,
    statuses,
)
from tests.integration.users_support import PASSWORD
from tests.reliability.throwaway import RedisServer

NORMAL = {"orders": 201, "catalog": 200, "chat": 200, "users": 200}


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}outage:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def stack(
    aiohttp_server: Any,
    aiohttp_client: Any,
    own_redis: RedisServer,
    prefix: str,
    migrated_db: Callable[[str], str],
) -> Stack:
    users, catalog, orders, chat = (
        migrated_db(db) for db in ("users", "catalog", "orders", "chat")
    )
    dsns = (users, catalog, orders, chat)
    return await start_stack(aiohttp_server, aiohttp_client, dsns, own_redis.url, prefix)


async def conversation(stack: Stack, account: Account, chat: Any) -> str:
    """An order of the account, the provider's offer, and their conversation on `chat`."""
    resp = await new_order(stack, account.headers)
    assert resp.status == 201, await resp.text()
    order_id = (await resp.json())["data"]["id"]
    resp = await stack.orders.post(
        f"/v1/orders/{order_id}/offers", json=offer_body(), headers=stack.provider.headers
    )
    assert resp.status == 201, await resp.text()
    body = {"order_id": order_id, "provider_id": str(stack.provider.id)}
    resp = await chat.post("/v1/conversations", json=body, headers=account.headers)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["data"]["id"])


async def test_with_redis_stopped_every_route_answers_and_a_revocation_just_before_holds(
    stack: Stack, own_redis: RedisServer
) -> None:
    gone = await signed_in(stack)
    assert (await statuses(stack, gone.headers)) == NORMAL  # every cache: "not revoked"
    resp = await delete_account(stack, gone)
    assert resp.status == 204, await resp.text()
    fresh = await signed_in(stack)  # its token: seen by no process but users' login
    own_redis.stop()

    async def refused_everywhere() -> bool:
        return set((await statuses(stack, gone.headers)).values()) == {401}

    # the revocation made just before the outage: once the caches' bound has passed, each
    # service asks users' record and refuses the token
    await eventually(refused_everywhere, "401 at every service", CACHE_TTL + MARGIN)
    assert (await statuses(stack, fresh.headers)) == NORMAL
    # a conversation started and posted on the second replica, then on the first, and a
    # socket opened on the second: it gets the post made there (replicas deliver their own
    # posts while Redis is away, ADR 0011)
    conversation_id = await conversation(stack, fresh, stack.chat_2)
    token = fresh.headers["Authorization"].removeprefix("Bearer ")
    socket = await stack.chat_2.ws_connect(
        f"/v1/conversations/{conversation_id}/ws", protocols=("fixup.bearer", token)
    )
    try:
        for chat in (stack.chat_2, stack.chat):
            resp = await chat.post(
                f"/v1/conversations/{conversation_id}/messages",
                json={"body": "still here"},
                headers=fresh.headers,
            )
            assert resp.status == 201, await resp.text()
        while True:  # frames before the message (a gap-fill, pings) are skipped
            frame = await socket.receive(timeout=CACHE_TTL + MARGIN)
            assert frame.type == aiohttp.WSMsgType.TEXT, frame
            if '"still here"' in frame.data:
                break
    finally:
        await socket.close()
    # nor can the deleted account's token open a socket
    gone_token = gone.headers["Authorization"].removeprefix("Bearer ")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await stack.chat_2.ws_connect(
            f"/v1/conversations/{conversation_id}/ws", protocols=("fixup.bearer", gone_token)
        )
    assert refused.value.status == 401


async def test_with_redis_and_users_away_an_unseen_token_is_503_never_a_pass(
    stack: Stack, own_redis: RedisServer
) -> None:
    unseen = await signed_in(stack)
    own_redis.stop()
    await stack.users.server.close()  # users away too
    resp = await new_order(stack, unseen.headers)
    assert resp.status == 503, await resp.text()
    assert resp.headers["Retry-After"]
    resp = await stack.chat_2.get("/v1/conversations", headers=unseen.headers)
    assert resp.status == 503, await resp.text()


async def test_anonymous_auth_routes_ignore_a_revoked_authorization_header(
    stack: Stack,
) -> None:
    account = await signed_in(stack)
    resp = await stack.users.post(
        "/v1/users/me/password",
        json={"old_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=account.headers,
    )
    assert resp.status == 204, await resp.text()
    revoked = account.headers | {"Cookie": f"fixup_access={uuid.uuid4().hex}"}
    assert (await stack.users.get("/v1/users/me", headers=account.headers)).status == 401
    login = {"email": account.email, "password": "a brand new passphrase"}
    resp = await stack.users.post("/v1/auth/login", json=login, headers=revoked)
    assert resp.status == 200, await resp.text()
    refresh = (await resp.json())["data"]["refresh_token"]
    for path, body in (
        ("/v1/auth/refresh", {"refresh_token": refresh}),
        ("/v1/auth/password-reset", {"email": account.email}),
        ("/v1/auth/verify", {"token": "A" * 43}),
    ):
        resp = await stack.users.post(path, json=body, headers=revoked)
        assert resp.status != 401 or (await resp.json())["detail"] != "token revoked", path
    resp = await stack.users.post("/v1/auth/refresh", json={"refresh_token": "B" * 43},
                                  headers=revoked)  # fmt: skip
    assert (await resp.json())["detail"] != "token revoked"
