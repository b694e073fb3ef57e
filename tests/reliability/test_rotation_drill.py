"""The secrets rotation drill, bounded (ADR 0032, ADR 0036; `make rotation-drill` runs it
longer with ROTATION_DRILL_FULL=1): every built HTTP service on two replicas behind a real
NGINX (tests/reliability/drill.py), users signing from a key directory and every other
service verifying through the gateway's JWK Set; the release drill's whole stories under
load, and signed-in sessions (login once, then a refresh every second, each access token
used on orders and chat, the first one kept in use throughout). Every secret is rotated in
turn with the commands' own steps: the signing key (stage, promote once allowed: no
restart), then the picture-URL key and ENCRYPTION_KEY (tests/reliability/secrets_rotation.py:
each step a rollout of users' replicas; the bounded run takes both rings through each step
together, to stay short). Passes with 0 requests refused and 0 sessions
logged out (no 401 anywhere), sessions refreshed with the new key, and the drill's
invariants held; the figures per secret are printed.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import jwt

from lib.auth.keysources import RING
from lib.auth.principal import Role
from lib.keyring import read_keyring, write_keyring
from tests.e2e.gateway_stack import wait_until
from tests.integration.auth_support import KEYS
from tests.reliability import figures
from tests.reliability.drill import Drill, start_drill
from tests.reliability.secrets_rotation import Checks, Rings, rotate
from tests.reliability.stack import PASSWORD
from tests.reliability.test_release_drill import Load, invariants, stories
from tests.reliability.world import actor, catalog_service
from tools.keys import signing_keyring
from tools.local.service_process import PROCESS_MARGIN
from tools.secrets.rotate import SECRETS, Refused, promote, stage

FULL = os.environ.get("ROTATION_DRILL_FULL") == "1"
CLIENTS = 3
SESSIONS = 2
BEFORE = 6 if not FULL else 40  # whole stories before the rotation, and after it
AFTER = 2 if not FULL else 20  # whole stories after each of the other secrets' rotation
RELOAD, REFRESH = 1.0, 2.0  # JWT_KEYS_RELOAD_INTERVAL, JWKS_REFRESH_INTERVAL of the drill
PUBLISH = RELOAD + REFRESH  # the signing key's promotion gate in the drill
SHARED = {
    "JWT_KEYS_RELOAD_INTERVAL": str(RELOAD),
    "JWKS_REFRESH_INTERVAL": str(REFRESH),
    "LOGIN_RATE": "100000",
    "LOGIN_BURST": "100000",
}


class Sessions:
    """Signed-in clients: one login each, then refreshes; every answer counted."""

    def __init__(self, drill: Drill, http: aiohttp.ClientSession) -> None:
        self.drill, self.http = drill, http
        self.outcomes: Counter[str] = Counter()
        self.kids: Counter[str] = Counter()  # the kid of each access token users issued
        self.refreshes = 0

    async def call(self, method: str, url: str, expect: int, **kwargs: object) -> object:
        async with self.http.request(method, url, **kwargs) as resp:  # type: ignore[arg-type]
            body = await resp.json(content_type=None)
            outcome = (
                "ok" if resp.status == expect else f"{method} {url.split('/api/')[1]} {resp.status}"
            )
            self.outcomes[outcome] += 1
            return body if resp.status == expect else None

    async def use(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        await self.call(
            "GET", f"{self.drill.api('orders')}/v1/orders?limit=5", 200, headers=headers
        )
        await self.call(
            "GET", f"{self.drill.api('chat')}/v1/conversations?limit=5", 200, headers=headers
        )

    async def pair(self, answer: object) -> tuple[str, str] | None:
        if not isinstance(answer, dict):
            return None
        data = answer["data"]
        self.kids[jwt.get_unverified_header(data["access_token"])["kid"]] += 1
        return data["access_token"], data["refresh_token"]

    async def session(self, stop: asyncio.Event) -> None:
        users = self.drill.api("users")
        email = f"session{uuid.uuid4().hex[:12]}@fixup.test"
        account = {"email": email, "password": PASSWORD, "first_name": "Ada",
                   "last_name": "Lovelace", "phone_number": "+1 555 0100",
                   "role": "CUSTOMER"}  # fmt: skip
        await self.call("POST", f"{users}/v1/auth/register", 201, json=account)
        login = {"email": email, "password": PASSWORD}
        pair = await self.pair(await self.call("POST", f"{users}/v1/auth/login", 200, json=login))
        assert pair is not None, self.outcomes
        first = pair[0]  # issued before the rotation: used until the drill ends
        while not stop.is_set():
            await self.use(first)
            await self.use(pair[0])
            body = {"refresh_token": pair[1]}
            fresh = await self.pair(
                await self.call("POST", f"{users}/v1/auth/refresh", 200, json=body)
            )
            if fresh is None:
                return  # logged out: counted, the drill fails
            pair = fresh
            self.refreshes += 1
            await asyncio.sleep(1.0)  # the client's pace, not a synchronisation


async def every_replica_ready(drill: Drill) -> None:
    """/ready of every replica: 503 until its JWK Set first arrived through the gateway
    (started after the services), as a balancer's probe would see it."""
    async with aiohttp.ClientSession() as http:
        for slots in drill.slots.values():
            for process in slots.running.values():

                async def ready(url: str = f"{process.url}/ready") -> bool:
                    async with http.get(url) as resp:
                        return resp.status == 200

                await wait_until(ready, f"{process.url} ready", REFRESH + PROCESS_MARGIN)


async def test_rotation_drill(migrated_db: Callable[[str], str], tmp_path: Path) -> None:
    dsn = functools.cache(migrated_db)  # one new database each, asked for many times

    keys, jwt = tmp_path / "jwt", SECRETS["jwt"]
    signing_keyring(keys, KEYS[0])  # the drill's actors hold tokens of KEYS[0]
    old = read_keyring(keys / RING).current
    rings = Rings(tmp_path)
    drill = await start_drill(tmp_path, dsn, SHARED, keys=keys, users=rings.env())
    await every_replica_ready(drill)
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=2 * PROCESS_MARGIN)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as own,
        ):
            providers = [actor(Role.PROVIDER) for _ in range(CLIENTS)]
            service_id = await catalog_service(http, drill.api("catalog"), *providers)
            load = Load(drill, http, service_id, providers)
            sessions = Sessions(drill, own)
            checks = Checks(drill, own, dsn("users"))
            phases: list[tuple[str, Counter[str]]] = []

            def mark(name: str) -> None:  # every outcome so far, at the end of a phase
                phases.append((name, load.outcomes + sessions.outcomes + checks.outcomes))

            tasks = [asyncio.create_task(load.client(stop, p)) for p in providers]
            tasks += [asyncio.create_task(sessions.session(stop)) for _ in range(SESSIONS)]
            try:
                await stories(load, BEFORE)
                load.phase = "during"
                write_keyring(keys / RING, stage(read_keyring(keys / RING), jwt, time.time()))
                staged = read_keyring(keys / RING).keys[-1]

                async def promoted() -> bool:
                    try:
                        ring = promote(read_keyring(keys / RING), jwt, time.time(), PUBLISH)
                    except Refused:
                        return False
                    write_keyring(keys / RING, ring)
                    return True

                await wait_until(promoted, "the promotion allowed", PUBLISH + PROCESS_MARGIN)

                async def new_key_signs() -> bool:
                    return sessions.kids[staged.kid] >= 2 * SESSIONS

                await wait_until(
                    new_key_signs,
                    "sessions refreshed with the new key",
                    RELOAD + 2 * PROCESS_MARGIN,
                )
                await stories(load, BEFORE)
                mark("signing key")
                await checks.start()
                if FULL:  # each secret in turn
                    await rotate(drill, rings, checks, ("storage",))
                    await stories(load, AFTER)
                    mark("picture-URL key")
                    resealed = await rotate(drill, rings, checks, ("encryption",))
                    await stories(load, AFTER)
                    mark("ENCRYPTION_KEY")
                else:  # bounded: both rings through each step, one rollout a step
                    resealed = await rotate(drill, rings, checks, ("storage", "encryption"))
                    await stories(load, AFTER)
                    mark("picture-URL key + ENCRYPTION_KEY")
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
        held = await invariants(drill, load, dsn)
    finally:
        drill.stop()
    everything = load.outcomes + sessions.outcomes + checks.outcomes
    failed = {k: n for k, n in everything.items() if k != "ok"}
    requests = sum(everything.values())
    lines = [
        f"rotation drill: {requests} requests ({load.stories} whole stories, "
        f"{sessions.refreshes} refreshes, {checks.providers} providers signed up), "
        f"failed {sum(failed.values())} {failed}",
        f"access tokens issued: {sessions.kids[old.kid]} by the old key, "
        f"{sessions.kids[staged.kid]} by the new one; {resealed} values re-encrypted",
        *phase_lines(phases),
        *(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in held.items()),
    ]
    print("\n".join(lines))
    assert failed == {}, lines
    assert all(held.values()), lines
    figures.add("secrets rotated under load without a refused request", len(phases))


def phase_lines(phases: list[tuple[str, Counter[str]]]) -> list[str]:
    """Requests, refused and logouts (a refresh refused) while each secret rotated."""
    lines, before = [], Counter[str]()
    for name, totals in phases:
        during = totals - before
        refused = sum(n for k, n in during.items() if k != "ok")
        logouts = sum(n for k, n in during.items() if "auth/refresh" in k)
        requests = sum(during.values())
        lines.append(f"{name}: {requests} requests, {refused} refused, {logouts} logouts")
        before = totals
    return lines
