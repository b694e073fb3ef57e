"""One user on real PostgreSQL with a real departments app: GET/PATCH/DELETE
/v1/users/{id|me}, the password change, the provider card, the access rules and attacks
(a moderator, an unverified user; another user's: test_access_matrix.py's owners), and
the departments check behind its breaker (down, open, recovered). The exact answers of
each route (a missing or stale If-Match, the bad paths of a read, an unknown department,
what an ADMIN may set, the anonymising DELETE and what its token gets after, departments
refusing the forwarded token) are in test_users_handlers.py; a cookie write without an
allowed Origin in test_departments_api.py (lib/http's rule, the same for every service);
fields no caller may set in tests/reliability/test_security.py (every write, nothing
written)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lib.auth.passwords import verify_password
from lib.auth.principal import Role
from services.departments.app import create_app as departments_app
from services.users.app import create_app
from tests import pg
from tests.integration.auth_support import settings_for
from tests.integration.users_support import (
    PASSWORD,
    auth,
    make_user,
    users_settings,
)
from tests.proxy import TcpProxy

BREAKER_RESET = 1.0
DEPT_TIMEOUT = 1.0


@pytest.fixture
async def departments_proxy(aiohttp_server: Any, departments_dsn: str) -> AsyncIterator[TcpProxy]:
    """The real departments app, reached through a proxy the test can take away."""
    server = await aiohttp_server(departments_app(settings_for(departments_dsn)))
    proxy = await TcpProxy("127.0.0.1", server.port).start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def client(
    aiohttp_client: Any, users_dsn: str, departments_proxy: TcpProxy, tmp_path: Any
) -> Any:
    settings = users_settings(
        users_dsn,
        departments_url=f"http://127.0.0.1:{departments_proxy.port}",
        departments_timeout=DEPT_TIMEOUT,
        departments_breaker_threshold=2,
        departments_breaker_reset=BREAKER_RESET,
        storage_dir=str(tmp_path),
    )
    return await aiohttp_client(create_app(settings))


async def get_me(client: Any, headers: dict[str, str]) -> tuple[dict[str, Any], str]:
    resp = await client.get("/v1/users/me", headers=headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["data"], resp.headers["ETag"]


async def patch(
    client: Any, target: str, body: Any, headers: dict[str, str], etag: str | None = '"1"'
) -> Any:
    extra = {} if etag is None else {"If-Match": etag}
    return await client.patch(f"/v1/users/{target}", json=body, headers={**headers, **extra})


async def test_read_me_and_by_id(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    me, tag = await get_me(client, auth(user_id))
    assert tag == '"1"'
    assert me["id"] == str(user_id)
    assert (me["first_name"], me["role"], me["age"], me["picture_url"]) == (
        "Ada",
        "CUSTOMER",
        36,
        None,
    )
    assert set(me) == {
        "id", "email", "first_name", "last_name", "phone_number", "role", "verified",
        "department_id", "age", "salary", "picture_url", "points", "version", "created_at",
    }  # fmt: skip
    resp = await client.get(f"/v1/users/{user_id}", headers=auth(user_id))
    assert (await resp.json())["data"] == me
    moderator = auth(await make_user(users_dsn, Role.MODERATOR), Role.MODERATOR)
    resp = await client.get(f"/v1/users/{user_id}", headers=moderator)
    assert resp.status == 200
    assert (await resp.json())["data"]["id"] == str(user_id)


async def test_a_moderator_sees_but_may_not_change(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    moderator = auth(await make_user(users_dsn, Role.MODERATOR), Role.MODERATOR)
    resp = await patch(client, str(user_id), {"first_name": "Mod"}, moderator)
    assert resp.status == 403
    assert (await resp.json())["code"] == "FORBIDDEN"


async def test_patch_absent_keeps_null_clears(
    client: Any, users_dsn: str, department: uuid.UUID
) -> None:
    user_id = await make_user(users_dsn)
    me = auth(user_id)
    body = {"last_name": "King", "salary": "1234.50", "department_id": str(department)}
    resp = await patch(client, "me", body, me)
    assert resp.status == 200, await resp.text()
    assert resp.headers["ETag"] == '"2"'
    got = (await resp.json())["data"]
    assert (got["first_name"], got["last_name"], got["age"]) == ("Ada", "King", 36)
    assert (got["salary"], got["department_id"], got["version"]) == (
        "1234.50",
        str(department),
        2,
    )
    resp = await patch(client, "me", {"age": None, "department_id": None}, me, etag='"2"')
    got = (await resp.json())["data"]
    assert (got["age"], got["department_id"], got["salary"]) == (None, None, "1234.50")
    resp = await patch(client, "me", {"first_name": None}, me, etag='"3"')
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == "first_name"
    assert (await patch(client, "me", {}, me, etag='"3"')).status == 400  # nothing to set
    assert (await get_me(client, me))[1] == '"3"'  # neither wrote


async def test_an_unverified_user_may_not_edit_the_profile(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    resp = await patch(client, "me", {"age": 1}, auth(user_id, verified=False))
    assert resp.status == 403


async def test_departments_down_opens_the_breaker_then_recovers(
    client: Any, users_dsn: str, department: uuid.UUID, departments_proxy: TcpProxy
) -> None:
    me = auth(await make_user(users_dsn))
    body = {"department_id": str(department)}
    port = departments_proxy.port
    await departments_proxy.stop()
    for _ in range(2):  # the threshold: each call is refused, retried, then 503
        resp = await patch(client, "me", body, me)
        assert resp.status == 503
        assert (await resp.json())["code"] == "SERVICE_UNAVAILABLE"
    # departments back, but its answers held at the proxy: a call that went out would wait
    # the whole DEPT_TIMEOUT, so answering sooner shows the open breaker made none
    await departments_proxy.start(port)
    departments_proxy.hold()
    started = time.monotonic()
    resp = await patch(client, "me", body, me)
    elapsed = time.monotonic() - started
    assert resp.status == 503
    assert (await resp.json())["code"] == "CIRCUIT_OPEN"
    assert "Retry-After" in resp.headers
    assert elapsed < DEPT_TIMEOUT, elapsed  # open: no network call at all
    metrics = await (await client.get("/metrics")).text()
    assert 'circuit_breaker_state{dependency="departments",service="users"} 1.0' in metrics

    departments_proxy.release()
    deadline = time.monotonic() + BREAKER_RESET + 5 * DEPT_TIMEOUT
    while True:  # the breaker lets a trial through once its reset timeout has passed
        resp = await patch(client, "me", body, me)
        if resp.status == 200 or time.monotonic() > deadline:
            break
        assert (await resp.json())["code"] == "CIRCUIT_OPEN"
        await client.get("/health")  # yield to the loop between probes
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"]["department_id"] == str(department)


async def test_an_admin_deletes_another_user(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    admin = auth(uuid.uuid4(), Role.ADMIN)
    resp = await client.delete(f"/v1/users/{user_id}", headers={**admin, "If-Match": '"1"'})
    assert resp.status == 204
    row = await pg.fetchrow(users_dsn, "SELECT first_name FROM users WHERE id=$1", user_id)
    assert row["first_name"] == "Deleted"


async def test_change_password(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    me = auth(user_id)
    url = "/v1/users/me/password"
    wrong = {"old_password": "not it at all", "new_password": "a new secret"}
    resp = await client.post(url, json=wrong, headers=me)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == "old_password"
    short = {"old_password": PASSWORD, "new_password": "short"}
    assert (await client.post(url, json=short, headers=me)).status == 400
    assert (await client.post(url, json={"old_password": PASSWORD})).status == 401
    resp = await client.post(
        url, json={"old_password": PASSWORD, "new_password": "a new secret"}, headers=me
    )
    assert resp.status == 204, await resp.text()
    row = await pg.fetchrow(users_dsn, "SELECT password_hash FROM users WHERE id=$1", user_id)
    assert verify_password(row["password_hash"], "a new secret")
    assert not verify_password(row["password_hash"], PASSWORD)
    family = await pg.fetchrow(
        users_dsn, "SELECT revoked_reason FROM refresh_token_families WHERE user_id=$1", user_id
    )
    assert family["revoked_reason"] == "password changed"


async def test_provider_card_is_public_for_providers_only(client: Any, users_dsn: str) -> None:
    provider = await make_user(users_dsn, Role.PROVIDER)
    resp = await client.get(f"/v1/providers/{provider}")
    assert resp.status == 200
    assert (await resp.json())["data"] == {
        "id": str(provider),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "picture_url": None,
        "department_id": None,
    }
    customer = await make_user(users_dsn)
    assert (await client.get(f"/v1/providers/{customer}")).status == 404
    assert (await client.get("/v1/providers/nope")).status == 400
