"""Token revocation across real services (issue 27.4; lib/auth/revocation.py): users,
catalog, orders and chat apps on loopback, on real PostgreSQL, sharing the real Redis.
When Redis does not take the revocation, users answers 503 and changes nothing. The
stack and its revoking calls serve the other revocation tests; tests/integration/
test_revocation_actors.py revokes a token by each documented action and actor (401
everywhere within the bound, the open chat WebSocket closed with 4001, a new login after
a password change or reset working at once)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from lib.auth.principal import Role
from services.catalog.app import create_app as catalog_app
from services.chat.app import create_app as chat_app
from services.orders.app import create_app as orders_app
from services.users.app import create_app as users_app
from services.users.auth_kit import digest
from services.users.db import auth as auth_q
from services.users.db.models import EmailTokenPurpose
from tests import pg
from tests.integration.catalog_support import catalog_settings
from tests.integration.chat_support import chat_settings, eventually
from tests.integration.orders_support import (
    Caller,
    caller,
    catalog_service,
    offer_body,
    order_body,
    orders_settings,
)
from tests.integration.users_support import PASSWORD, make_user, users_settings
from tests.reliability.throwaway import RedisServer
from tests.servers import Servers

CACHE_TTL = 1.0  # REVOCATION_CACHE_TTL of every service here (the default)
SWEEP = 1.0  # WS_REVOCATION_CHECK of chat (the default)
MARGIN = 3.0  # a loaded machine's scheduling, on top of the documented bound
NEW_PASSWORD = "a brand new passphrase"


@dataclass
class Stack:
    users: Any
    catalog: Any
    orders: Any
    chat: Any
    chat_2: Any  # a second replica: its own caches, the same database and Redis
    users_dsn: str
    service_id: str
    provider: Caller


async def start_stack(
    aiohttp_server: Any,
    aiohttp_client: Any,
    dsns: tuple[str, str, str, str],
    redis_url: str,
    prefix: str,
    **users_extra: Any,
) -> Stack:
    """Five apps, each with its own revocation cache (as five processes), one Redis; each
    asks this users app for the record while Redis is away (REVOCATION_RECORD_URL)."""
    users_dsn, catalog_dsn, orders_dsn, chat_dsn = dsns
    users = users_settings(users_dsn, redis_url=redis_url, revocation_prefix=prefix,
                           rate_limit_prefix=prefix, **users_extra)  # fmt: skip
    users_server = await aiohttp_server(users_app(users, points=no_points))
    shared = {
        "redis_url": redis_url,
        "revocation_prefix": prefix,
        "rate_limit_prefix": prefix,
        "revocation_record_url": f"http://127.0.0.1:{users_server.port}",
    }
    catalog_server = await aiohttp_server(catalog_app(catalog_settings(catalog_dsn, **shared)))
    orders_server = await aiohttp_server(
        orders_app(
            orders_settings(
                orders_dsn, catalog_url=f"http://127.0.0.1:{catalog_server.port}", **shared
            )
        )
    )
    chat = chat_settings(
        chat_dsn, prefix, orders_url=f"http://127.0.0.1:{orders_server.port}", **shared
    )
    stack = Stack(
        users=await aiohttp_client(users_server),
        catalog=await aiohttp_client(catalog_server),
        orders=await aiohttp_client(orders_server),
        chat=await aiohttp_client(chat_app(chat)),
        chat_2=await aiohttp_client(chat_app(chat)),
        users_dsn=users_dsn,
        service_id="",
        provider=caller(Role.PROVIDER),
    )
    stack.service_id = await catalog_service(stack.catalog, stack.provider.id)
    return stack


async def no_points(_: Any) -> AsyncIterator[None]:
    yield None


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}rv:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def stack(
    aiohttp_server: Any,
    aiohttp_client: Any,
    servers: Servers,
    prefix: str,
    users_dsn: str,
    chat_catalog_dsn: str,
    chat_orders_dsn: str,
    chat_dsn: str,
) -> Stack:
    dsns = (users_dsn, chat_catalog_dsn, chat_orders_dsn, chat_dsn)
    return await start_stack(aiohttp_server, aiohttp_client, dsns, servers.redis_url, prefix)


@dataclass
class Account:
    id: uuid.UUID
    email: str
    headers: dict[str, str]


async def login(stack: Stack, email: str, password: str = PASSWORD) -> dict[str, str]:
    resp = await stack.users.post("/v1/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['data']['access_token']}"}


async def signed_in(stack: Stack) -> Account:
    """A real account and an access token from a real login."""
    user_id = await make_user(stack.users_dsn)
    email = await pg.fetchval(stack.users_dsn, "SELECT email FROM users WHERE id = $1", user_id)
    return Account(user_id, email, await login(stack, email))


async def new_order(stack: Stack, headers: dict[str, str]) -> Any:
    return await stack.orders.post("/v1/orders", json=order_body(stack.service_id), headers=headers)


async def statuses(stack: Stack, headers: dict[str, str]) -> dict[str, int]:
    """What each service answers the token: orders (a write), catalog, chat REST, users."""
    order = await new_order(stack, headers)
    catalog = await stack.catalog.get("/v1/category-types", headers=headers)
    chat = await stack.chat.get("/v1/conversations", headers=headers)
    users = await stack.users.get("/v1/users/me", headers=headers)
    return {
        "orders": order.status,
        "catalog": catalog.status,
        "chat": chat.status,
        "users": users.status,
    }


async def open_chat(stack: Stack, account: Account) -> Any:
    """A conversation of the account (an order of its, the provider's offer) and its
    WebSocket, opened with the account's token."""
    resp = await new_order(stack, account.headers)
    assert resp.status == 201, await resp.text()
    order_id = (await resp.json())["data"]["id"]
    resp = await stack.orders.post(
        f"/v1/orders/{order_id}/offers", json=offer_body(), headers=stack.provider.headers
    )
    assert resp.status == 201, await resp.text()
    body = {"order_id": order_id, "provider_id": str(stack.provider.id)}
    resp = await stack.chat.post("/v1/conversations", json=body, headers=account.headers)
    assert resp.status == 201, await resp.text()
    conversation_id = (await resp.json())["data"]["id"]
    token = account.headers["Authorization"].removeprefix("Bearer ")
    return await stack.chat.ws_connect(
        f"/v1/conversations/{conversation_id}/ws", protocols=("fixup.bearer", token)
    )


async def delete_account(stack: Stack, account: Account) -> Any:
    version = await pg.fetchval(
        stack.users_dsn, "SELECT version FROM users WHERE id = $1", account.id
    )
    return await stack.users.delete(
        "/v1/users/me", headers=account.headers | {"If-Match": f'"{version}"'}
    )


async def reset_password(stack: Stack, account: Account) -> Any:
    """The reset link's token (stored as its digest, as the mail flow stores it), used."""
    token = uuid.uuid4().hex
    async with pg.connected(stack.users_dsn) as conn:
        await auth_q.add_email_token(
            conn,
            user_id=account.id,
            purpose=EmailTokenPurpose.PASSWORD_RESET,
            token_hash=digest(token),
            ttl_seconds=600,
        )
    body = {"token": token, "new_password": NEW_PASSWORD}
    return await stack.users.post("/v1/auth/password-reset/confirm", json=body)


async def change_password(stack: Stack, account: Account) -> Any:
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    return await stack.users.post("/v1/users/me/password", json=body, headers=account.headers)


async def test_redis_not_taking_the_revocation_is_503_and_changes_nothing(
    aiohttp_server: Any,
    aiohttp_client: Any,
    prefix: str,
    users_dsn: str,
    chat_catalog_dsn: str,
    chat_orders_dsn: str,
    chat_dsn: str,
    own_redis: RedisServer,
) -> None:
    dsns = (users_dsn, chat_catalog_dsn, chat_orders_dsn, chat_dsn)
    # a long cache in users: the caller's token passes from it while Redis is away,
    # so the request reaches the revocation write itself
    stack = await start_stack(aiohttp_server, aiohttp_client, dsns, own_redis.url, prefix,
                              revocation_cache_ttl=60.0, revocation_timeout=0.3)  # fmt: skip
    account = await signed_in(stack)
    assert (await stack.users.get("/v1/users/me", headers=account.headers)).status == 200
    before = await pg.fetchrow(
        stack.users_dsn, "SELECT version, email FROM users WHERE id = $1", account.id
    )
    own_redis.stop()  # (a frozen Redis: tests/integration/test_revocation.py)
    try:
        started = time.monotonic()
        for revoke in (delete_account, change_password, reset_password):
            resp = await revoke(stack, account)
            assert resp.status == 503, await resp.text()
            problem = await resp.json()
            assert problem["code"] == "SERVICE_UNAVAILABLE"
            assert "nothing was changed" in problem["detail"]
            assert resp.headers["Retry-After"]
        assert time.monotonic() - started < MARGIN  # refused at once, never a hang
        # the other services ask users' record instead (ADR 0010): not revoked
        resp = await new_order(stack, account.headers)
        assert resp.status == 201, await resp.text()
    finally:
        own_redis.start()  # the same port
    after = await pg.fetchrow(
        stack.users_dsn, "SELECT version, email FROM users WHERE id = $1", account.id
    )
    assert tuple(after) == tuple(before)  # not anonymised, no password change
    open_families = await pg.fetchrow(
        stack.users_dsn,
        "SELECT count(*) FROM refresh_token_families WHERE user_id = $1 AND revoked_at IS NULL",
        account.id,
    )
    assert open_families[0] >= 1  # the sessions are as they were
    await login(stack, account.email)  # the old password still works

    async def deleted() -> bool:  # a trial after REVOCATION_RETRY finds Redis back
        resp = await delete_account(stack, account)  # a 503 changed nothing: again
        assert resp.status in (204, 503), await resp.text()
        return resp.status == 204

    await eventually(deleted, "the deletion goes through once Redis answers")

    async def refused() -> bool:
        return (await new_order(stack, account.headers)).status == 401

    await eventually(refused, "orders refuses the token", CACHE_TTL + MARGIN)
