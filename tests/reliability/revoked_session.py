"""A revoked session, kept across a fault: an account signs in through the gateway, its
password is changed (which revokes every token issued before, ADR 0028), and the old access
token must still be refused with 401 by every service that checks it after the fault,
within the revocation cache's bound."""

from __future__ import annotations

import contextlib
import uuid

import aiohttp

from tests.e2e.gateway_stack import wait_until
from tests.reliability.drill import Drill
from tests.reliability.stack import PASSWORD
from tools.time_scale import scaled

CACHE_TTL = 1.0  # REVOCATION_CACHE_TTL of every service (the default)
REDIS_FAILOVER = 30.0  # tools/drills/failover_redis.py's RECOVERY_LIMIT: a new master named
# a loaded machine's scheduling, on top of the documented bound (3 s at load 3)
MARGIN = scaled(3.0)
NEW_PASSWORD = "a brand new passphrase"
CHECKED = {"users": "/v1/users/me", "chat": "/v1/conversations", "catalog": "/v1/category-types"}


async def revoked_token(drill: Drill, http: aiohttp.ClientSession) -> str:
    """-> the access token of a session revoked by a password change."""
    users = drill.api("users")
    email = f"revoked{uuid.uuid4().hex[:12]}@fixup.test"
    account = {
        "email": email, "password": PASSWORD, "first_name": "Grace", "last_name": "Hopper",
        "phone_number": "+1 555 0101", "role": "CUSTOMER",
    }  # fmt: skip
    key = {"Idempotency-Key": uuid.uuid4().hex}
    async with http.post(f"{users}/v1/auth/register", json=account, headers=key) as resp:
        assert resp.status == 201, await resp.text()
    login = {"email": email, "password": PASSWORD}
    async with http.post(f"{users}/v1/auth/login", json=login) as resp:
        assert resp.status == 200, await resp.text()
        token: str = (await resp.json())["data"]["access_token"]
    change = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    bearer = {"Authorization": f"Bearer {token}"}
    answers: list[str] = []

    async def changed() -> bool:
        """A 503 + Retry-After (Redis still being replaced after a fault: nothing was
        changed) is tried again, as its answer asks; anything else but 204 fails."""
        url = f"{users}/v1/users/me/password"
        async with http.post(url, json=change, headers=bearer) as resp:
            answers.append(await resp.text())
            if resp.status == 503 and "Retry-After" in resp.headers:
                return False
            assert resp.status == 204, answers[-1]
            return True

    await wait_until(changed, "a password change answered 204", REDIS_FAILOVER)
    return token


async def still_refused(drill: Drill, http: aiohttp.ClientSession, token: str) -> dict[str, int]:
    """What each service checked answers the revoked token, once all say 401 or the
    cache's bound has passed (a 200 then: the revocation forgotten)."""
    bearer = {"Authorization": f"Bearer {token}"}
    seen: dict[str, int] = {}

    async def refused() -> bool:
        for service, path in CHECKED.items():
            async with http.get(f"{drill.api(service)}{path}", headers=bearer) as resp:
                seen[service] = resp.status
        return set(seen.values()) == {401}

    what = f"the revoked token refused everywhere (last answers {seen})"
    with contextlib.suppress(AssertionError):  # what was answered last is the verdict
        await wait_until(refused, what, CACHE_TTL + MARGIN)
    return seen
