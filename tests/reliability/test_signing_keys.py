"""Signing keys by id through real processes (ADR 0032): users signs from its keyring
and serves its JWK Set; departments verifies through that JWK Set only, fetched through
NGINX's `/.well-known/jwks.json` (JWKS_URL).

- A rotation (stage -> promote) while both run: a token of the new key verifies at
  departments the moment users may sign with it; a token of the old key keeps verifying
  while it may live; the old key is refused once its window has passed.
- A flood of random kids costs users at most one fetch per JWKS_MIN_REFRESH_INTERVAL.
- Users away: the cached keys keep verifying, an unknown kid stays 401 (never 500).

Timings are this module's settings, short so the test is bounded; every wait polls with
a bound derived from them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from lib.auth.jwks import JWKS_PATH
from lib.auth.keysources import RING, DirectorySigningKeys, StaticSigningKey
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from lib.keyring import KeyringFile, read_keyring, write_keyring
from tests.e2e.gateway_stack import Gateway
from tests.reliability import figures
from tests.reliability.stack import common_env, start, token, users_env
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess
from tools.secrets.rotate import SECRETS, Refused, drop, promote, stage
from tools.time_scale import scaled

TTL = 8  # ACCESS_TOKEN_TTL
LEEWAY = 1  # TOKEN_CLOCK_LEEWAY
RELOAD = 0.5  # JWT_KEYS_RELOAD_INTERVAL
REFRESH = 1.0  # JWKS_REFRESH_INTERVAL
MIN_REFRESH = 2.0  # JWKS_MIN_REFRESH_INTERVAL
WINDOW = TTL + LEEWAY + RELOAD  # a retired key's trust after it stopped signing
JWT = SECRETS["jwt"]
MARGIN = scaled(10.0)  # a loaded machine's delay on top of any bound below


@dataclass
class Stack:
    keys: Path
    users: ServiceProcess
    gateway: Gateway
    departments: ServiceProcess

    def stop(self) -> None:
        self.departments.stop()
        self.gateway.stop()
        self.users.stop()


async def start_stack(users_dsn: str, departments_dsn: str, logs: Path, refresh: float) -> Stack:
    run = logs / f"keys-{uuid.uuid4().hex[:8]}"
    keys = run / "jwt"
    write_keyring(keys / RING, stage(None, JWT, time.time()))
    times = {
        "ACCESS_TOKEN_TTL": str(TTL),
        "TOKEN_CLOCK_LEEWAY": str(LEEWAY),
        "JWT_KEYS_RELOAD_INTERVAL": str(RELOAD),
        "JWKS_MIN_REFRESH_INTERVAL": str(MIN_REFRESH),
    }
    users = await start(
        "users",
        users_env(users_dsn, JWT_KEYS_DIR=str(keys), **times),
        run / "users.log",
    )
    try:
        gateway = await Gateway(run, {"users": [f"127.0.0.1:{users.port}"]}, run).start()
    except BaseException:
        users.stop()
        raise
    try:
        env = common_env(
            "departments",
            departments_dsn,
            JWT_PUBLIC_KEY="",
            JWKS_URL=gateway.url + JWKS_PATH,
            JWKS_REFRESH_INTERVAL=str(refresh),
            JWKS_TIMEOUT="0.5",
            **times,
        )
        departments = await start("departments", env, run / "departments.log")
    except BaseException:
        gateway.stop()
        users.stop()
        raise
    return Stack(keys, users, gateway, departments)


@pytest.fixture
async def stack(users_dsn: str, departments_dsn: str, logs: Path) -> AsyncIterator[Stack]:
    both = await start_stack(users_dsn, departments_dsn, logs, refresh=REFRESH)
    yield both
    both.stop()


@pytest.fixture
async def quiet_stack(users_dsn: str, departments_dsn: str, logs: Path) -> AsyncIterator[Stack]:
    """No periodic JWKS fetch within the test: every fetch is an unknown kid's."""
    both = await start_stack(users_dsn, departments_dsn, logs, refresh=3600)
    yield both
    both.stop()


def sign(keys: Path, key: StaticSigningKey | None = None, ttl: int = TTL) -> str:
    """A token of the keyring's current key (users' own code), or of `key`."""
    if key is None:
        signer = TokenSigner(DirectorySigningKeys(KeyringFile(keys / RING, reload_interval=0)), ttl)
    else:
        signer = TokenSigner(key, ttl)
    return signer.issue(uuid.uuid4(), Role.ADMIN, True)[0]


async def status_at(http: aiohttp.ClientSession, service: ServiceProcess, token: str) -> int:
    """An authenticated route of departments: 401 refused, anything else got through
    authentication (404: no such department)."""
    url = f"{service.url}/v1/departments/{uuid.uuid4()}"
    headers = {"Authorization": f"Bearer {token}", "If-Match": '"1"'}
    async with http.delete(url, headers=headers) as resp:
        body = await resp.text()
        assert resp.status < 500, body
        if resp.status == 401:
            assert resp.content_type == "application/problem+json", body
        return resp.status


async def published(http: aiohttp.ClientSession, stack: Stack) -> set[str] | None:
    """The kids of the JWK Set through NGINX when users' own says the same; None when users
    reloaded its key directory between the two reads (a rotation under way: ask again)."""
    kids = []
    for url in (stack.gateway.url + JWKS_PATH, stack.users.url + JWKS_PATH):
        async with http.get(url) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Cache-Control"] == "public, max-age=30"
            kids.append({key["kid"] for key in (await resp.json())["keys"]})
    return kids[0] if kids[0] == kids[1] else None


async def fetches(http: aiohttp.ClientSession, service: ServiceProcess, outcome: str) -> float:
    async with http.get(f"{service.url}/metrics") as resp:
        text = await resp.text()
    pattern = rf'^jwks_fetches_total\{{[^}}]*outcome="{outcome}"[^}}]*\}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no jwks_fetches_total{{outcome={outcome}}} in /metrics"
    return float(found.group(1))


async def test_a_rotation_keeps_every_token_valid_and_ends_the_old_key(stack: Stack) -> None:
    first = read_keyring(stack.keys / RING).current
    first_private = first.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    async with aiohttp.ClientSession() as http:
        assert await published(http, stack) == {first.kid}
        old = sign(stack.keys)
        assert await status_at(http, stack.departments, old) != 401

        write_keyring(stack.keys / RING, stage(read_keyring(stack.keys / RING), JWT, time.time()))
        staged = read_keyring(stack.keys / RING).keys[-1]
        deadline = time.monotonic() + RELOAD + MARGIN
        while await published(http, stack) != {first.kid, staged.kid}:
            assert time.monotonic() < deadline, "users never published the staged key"
            await asyncio.sleep(0.1)

        while True:  # the command's own rule: promote once every verifier may have it
            try:
                ring = promote(read_keyring(stack.keys / RING), JWT, time.time(), RELOAD + REFRESH)
                write_keyring(stack.keys / RING, ring)
                break
            except Refused:
                await asyncio.sleep(0.1)
        promoted_at = time.monotonic()
        new = sign(stack.keys)  # what users signs with from its next read of the directory
        assert await status_at(http, stack.departments, new) != 401
        assert await status_at(http, stack.departments, old) != 401  # within its life

        # a token the old key signs after its retirement (a leaked key): trusted for the
        # window, then refused everywhere, even with an exp far ahead
        leaked = sign(stack.keys, StaticSigningKey(first_private.decode()), ttl=3600)
        while await status_at(http, stack.departments, leaked) != 401:
            assert time.monotonic() - promoted_at < WINDOW + REFRESH + MARGIN, "never refused"
            await asyncio.sleep(0.2)
        refused_after = time.monotonic() - promoted_at
        assert await published(http, stack) == {staged.kid}
        assert await status_at(http, stack.departments, old) == 401  # expired by now
        assert await status_at(http, stack.departments, sign(stack.keys)) != 401
    figures.add(f"retired key refused after (s, window {WINDOW:.1f} s)", round(refused_after, 2))
    assert refused_after >= WINDOW - LEEWAY - 1  # not before its tokens may have expired
    final = drop(read_keyring(stack.keys / RING), JWT, time.time(), WINDOW, Counter())
    assert [key.kid for key in final.keys] == [staged.kid]


async def test_a_flood_of_unknown_kids_is_401_and_fetches_at_most_once_per_interval(
    quiet_stack: Stack,
) -> None:
    good = sign(quiet_stack.keys)
    fake = sign(quiet_stack.keys).split(".")  # the real key's signature, the kid replaced
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + MARGIN  # the first fetch at start-up
        while await fetches(http, quiet_stack.departments, "ok") < 1:
            assert time.monotonic() < deadline, "departments never fetched the JWK Set"
            await asyncio.sleep(0.1)
        assert await status_at(http, quiet_stack.departments, good) != 401
        before = await fetches(http, quiet_stack.departments, "ok")
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 2 * MIN_REFRESH:
            tokens = [forge_kid(fake, secrets.token_urlsafe(32)[:43]) for _ in range(20)]
            statuses = await asyncio.gather(
                *(status_at(http, quiet_stack.departments, t) for t in tokens)
            )
            assert set(statuses) == {401}
            sent += len(tokens)
        elapsed = time.monotonic() - started
        done = await fetches(http, quiet_stack.departments, "ok") - before
    allowed = math.ceil(elapsed / MIN_REFRESH) + 1
    figures.add("random kids sent (401)", sent)
    figures.add(f"JWKS fetches they caused (at most {allowed})", done)
    assert 1 <= done <= allowed


async def test_users_away_cached_keys_still_verify(quiet_stack: Stack) -> None:
    good = sign(quiet_stack.keys)
    fake = good.split(".")
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + MARGIN
        while await status_at(http, quiet_stack.departments, good) == 401:
            assert time.monotonic() < deadline, "the signing key never reached departments"
            await asyncio.sleep(0.1)
        quiet_stack.users.stop()
        failed = await fetches(http, quiet_stack.departments, "failed")
        for _ in range(3):
            assert await status_at(http, quiet_stack.departments, good) != 401
            unknown = forge_kid(fake, secrets.token_urlsafe(32)[:43])
            assert await status_at(http, quiet_stack.departments, unknown) == 401
        deadline = time.monotonic() + MIN_REFRESH + MARGIN  # the next allowed fetch fails
        while await fetches(http, quiet_stack.departments, "failed") == failed:
            assert time.monotonic() < deadline, "no fetch was tried with users away"
            unknown = forge_kid(fake, secrets.token_urlsafe(32)[:43])
            assert await status_at(http, quiet_stack.departments, unknown) == 401
            await asyncio.sleep(0.2)
        assert await status_at(http, quiet_stack.departments, good) != 401


def forge_kid(parts: list[str], kid: str) -> str:
    """The token's header with another kid (the signature no longer matches: it must not
    matter, the kid is refused before any signature check)."""
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    header["kid"] = kid
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{parts[1]}.{parts[2]}"


async def test_no_jwk_set_ever_fetched_is_503_and_not_ready(
    departments_dsn: str, logs: Path
) -> None:
    """users unreachable from the start: the service can verify no token, so it says it
    is not ready and answers 503 + Retry-After, never a 401 that would end a session."""
    nowhere = f"http://127.0.0.1:{free_port()}{JWKS_PATH}"
    env = common_env("departments", departments_dsn, JWT_PUBLIC_KEY="", JWKS_URL=nowhere)
    service = await start("departments", env, logs / f"nowhere-{uuid.uuid4().hex[:8]}.log")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{service.url}/ready") as resp:
                assert resp.status == 503, await resp.text()
                assert "JWKS_URL" in (await resp.json())["detail"]
            url = f"{service.url}/v1/departments/{uuid.uuid4()}"
            headers = {"Authorization": f"Bearer {token()}", "If-Match": '"1"'}
            async with http.delete(url, headers=headers) as resp:
                assert resp.status == 503, await resp.text()
                assert resp.headers["Retry-After"] == "1"
                assert resp.content_type == "application/problem+json"
    finally:
        service.stop()
