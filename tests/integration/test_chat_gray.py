"""Chat -> orders under gray failures (injected latency, a black hole) through the proxy in
front of the real orders app: a new conversation is a 503 with Retry-After within the
bound ORDERS_TIMEOUT gives (the participants' read is retried once), the breaker opens
after its threshold, and ORDERS_BREAKER_RESET after the fault ends the next conversation
is made (tests/reliability/test_gray.py: orders' own clients)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.chat_support import ChatFactory, World, eventually, start_conversation
from tests.proxy import TcpProxy

TIMEOUT = 0.3  # ORDERS_TIMEOUT of chat here
RESET = 0.8  # ORDERS_BREAKER_RESET
THRESHOLD = 2
MARGIN = 2.0  # the in-process apps' own work on a loaded machine
BOUND = 2 * TIMEOUT + 0.05 + MARGIN  # two attempts, the retry's first backoff


@pytest.mark.parametrize("kind", ["latency", "black_hole"])
async def test_orders_slow_or_silent_is_a_bounded_503_then_recovers(
    chat_factory: ChatFactory, chat_world: World, chat_orders_proxy: TcpProxy, kind: str
) -> None:
    chat = await chat_factory(
        orders_timeout=TIMEOUT,
        orders_breaker_threshold=THRESHOLD,
        orders_breaker_reset=RESET,
        orders_cache_ttl=0,  # every new conversation asks orders
    )
    world = chat_world
    if kind == "latency":
        chat_orders_proxy.delay = TIMEOUT  # a round trip: twice the deadline
    else:
        chat_orders_proxy.hold()
    codes: list[str] = []
    try:
        for _ in range(THRESHOLD + 1):
            started = time.monotonic()
            resp = await start_conversation(chat, world.customer, world.order_id, world.p1)
            took = time.monotonic() - started
            assert resp.status == 503, await resp.text()
            assert int(resp.headers["Retry-After"]) >= 1
            assert took < BOUND, took
            codes.append((await resp.json())["code"])
    finally:
        chat_orders_proxy.delay = 0.0
        chat_orders_proxy.release()
    assert codes[:THRESHOLD] == ["SERVICE_UNAVAILABLE"] * THRESHOLD
    assert codes[THRESHOLD] == "CIRCUIT_OPEN"

    async def made() -> bool:
        resp: Any = await start_conversation(chat, world.customer, world.order_id, world.p1)
        return bool(resp.status == 201)

    await eventually(made, f"a conversation after the {kind}", RESET + BOUND + MARGIN)
