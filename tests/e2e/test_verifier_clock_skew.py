"""Verifiers judge token times by their database's clock (ADR 0028): a real orders or
chat process under libfaketime (Debian `faketime`) 90 s ahead of, then behind, the real
clock the tokens are signed with (and PostgreSQL's). A fresh token is accepted there and
on the calls between services (chat asking orders whether the order is the caller's,
orders asking catalog for the service); a token expired by more than TOKEN_CLOCK_LEEWAY,
or issued further than that in the future, is 401 "token expired" / "invalid token"
(judged by the database's clock: without it, orders 90 s behind refused every fresh
token). Each case starts orders and chat once (about 10 s on a loaded machine)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests.integration.auth_support import KEYS
from tests.reliability.stack import common_env
from tests.reliability.world import Orders, actor, call, catalog_service, talk
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess
from tools.time_scale import scaled

STARTUP = scaled(60.0)  # a process starting on a loaded machine
LEEWAY = 5  # TOKEN_CLOCK_LEEWAY (the default)
MARGIN = 3  # seconds a case keeps from the leeway's edge: a loaded machine's scheduling
CASES = [("orders", "+90s"), ("orders", "-90s"), ("chat", "+90s"), ("chat", "-90s")]


@dataclass
class Stack:
    catalog: str
    orders: str
    chat: str


@pytest.fixture(scope="module")
async def catalog(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if shutil.which("faketime") is None:
        pytest.fail("faketime is missing: apt-get install -y faketime", pytrace=False)
    tmp = tmp_path_factory.mktemp("verifier_skew")
    env = common_env("catalog", migrated_db("catalog"))
    service = ServiceProcess(env, tmp / "catalog.log", name="catalog")
    try:
        await service.wait_healthy(STARTUP)
        yield service.url
    finally:
        service.stop()


@pytest.fixture(params=CASES, ids=[f"{name}{offset}" for name, offset in CASES])
async def stack(
    request: pytest.FixtureRequest,
    catalog: str,
    migrated_db: Callable[[str], str],
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """orders and chat, one of them with its wall clock `offset` from the real one (its
    monotonic clock untouched: asyncio's timers stay real)."""
    skewed, offset = request.param
    ports = {"orders": free_port(), "chat": free_port()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    extra = {
        "CATALOG_URL": catalog,
        "ORDERS_URL": urls["orders"],
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    started = []
    try:
        for name in ("orders", "chat"):
            env = common_env(name, migrated_db(name), **extra) | {
                f"{name.upper()}_PORT": str(ports[name])
            }
            wrapper = ("faketime", "-f", offset) if name == skewed else ()
            started.append(ServiceProcess(env, tmp_path / f"{name}.log", name=name,
                                          wrapper=wrapper))  # fmt: skip
        for service in started:
            await service.wait_healthy(STARTUP)
        yield Stack(catalog, urls["orders"], urls["chat"])
    finally:
        for service in started:
            service.stop()


def signed_at(moment: datetime, ttl: int = 900) -> dict[str, str]:
    """A customer's token issued at `moment` (the real clock, as users' database's)."""
    value, _ = TokenSigner(KEYS[0], ttl, clock=lambda: moment).issue(
        actor(Role.CUSTOMER).id, Role.CUSTOMER, True
    )
    return {"Authorization": f"Bearer {value}"}


async def answer(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[int, str]:
    async with http.get(url, headers=headers) as resp:
        body = await resp.json(content_type=None)
        return resp.status, (body or {}).get("detail", "")


async def test_a_verifier_90_s_off_accepts_fresh_tokens_and_refuses_expired_ones(
    stack: Stack,
) -> None:
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    async with aiohttp.ClientSession() as http:
        # fresh tokens, through the calls between services: orders -> catalog, chat -> orders
        service_id = await catalog_service(http, stack.catalog, provider)
        steps = Orders(http, stack.orders, service_id, customer, provider)
        conversation = await talk(steps, stack.chat)
        await conversation.post(customer, "a fresh token at every hop")
        await call(http, "GET", f"{stack.orders}/v1/orders/{conversation.order_id}", customer, 200)
        for url in (f"{stack.orders}/v1/orders", f"{stack.chat}/v1/conversations"):
            now = datetime.now(UTC)
            for ok in (signed_at(now), signed_at(now + timedelta(seconds=LEEWAY - MARGIN))):
                assert (await answer(http, url, ok))[0] == 200, url
            # within the leeway past its exp: still accepted; beyond it: expired
            ttl = 60
            late = signed_at(now - timedelta(seconds=ttl + LEEWAY - MARGIN), ttl)
            assert (await answer(http, url, late))[0] == 200, url
            expired = signed_at(now - timedelta(seconds=ttl + LEEWAY + MARGIN), ttl)
            assert await answer(http, url, expired) == (401, "token expired"), url
            future = signed_at(now + timedelta(seconds=LEEWAY + MARGIN))
            assert await answer(http, url, future) == (401, "invalid token"), url
