"""lib/clients/http.JsonHttpClient against a real loopback server: which answers raise
what, which are retried, and which count against the breaker."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from aiohttp import web

from lib.clients.http import JsonHttpClient
from lib.errors import DependencyRefused, ServiceUnavailable
from lib.resilience.breaker import BreakerState, CircuitBreaker


@pytest.fixture
async def upstream(aiohttp_server: Any) -> tuple[str, Counter[int]]:
    """GET /status/<code> answers <code> (problem+json), counting each request."""
    seen: Counter[int] = Counter()

    async def answer(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        seen[code] += 1
        return web.json_response({"status": code}, status=code)

    app = web.Application()
    app.router.add_route("*", "/status/{code}", answer)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}", seen


def client(url: str) -> JsonHttpClient:
    breaker = CircuitBreaker(
        "dep", failure_threshold=2, reset_timeout=60, failure_exceptions=(ServiceUnavailable,)
    )
    return JsonHttpClient("dep", url, service="test", breaker=breaker)


@pytest.mark.parametrize("code", [401, 403])
async def test_a_refusal_raises_its_own_error_once_and_keeps_the_breaker_closed(
    upstream: tuple[str, Counter[int]], code: int
) -> None:
    url, seen = upstream
    http = client(url)
    try:
        for _ in range(4):
            with pytest.raises(DependencyRefused) as refused:
                await http.get(f"/status/{code}")
            assert refused.value.status == 502
            assert refused.value.detail == f"dep refused the forwarded credentials ({code})"
        assert http.breaker.state is BreakerState.CLOSED
        assert seen[code] == 4  # an answer: never retried
    finally:
        await http.close()


async def test_other_4xx_are_replies_and_5xx_open_the_breaker(
    upstream: tuple[str, Counter[int]],
) -> None:
    url, seen = upstream
    http = client(url)
    try:
        reply = await http.get("/status/404")
        assert (reply.status, reply.body) == (404, {"status": 404})
        for _ in range(2):
            with pytest.raises(ServiceUnavailable):
                await http.get("/status/500")
        assert seen[500] == 4  # a GET is tried twice
        assert http.breaker.state is BreakerState.OPEN
    finally:
        await http.close()


@pytest.mark.parametrize(
    ("method", "tries"), [("POST", 1), ("PATCH", 1), ("PUT", 2), ("DELETE", 2)]
)
async def test_only_idempotent_methods_are_retried(
    upstream: tuple[str, Counter[int]], method: str, tries: int
) -> None:
    """A POST that failed with a 5xx may have been applied: sending it again could do it
    twice, so only GET/HEAD/PUT/DELETE/OPTIONS get a second attempt."""
    url, seen = upstream
    http = client(url)
    try:
        with pytest.raises(ServiceUnavailable):
            await http.request(method, "/status/503", json={"n": 1})
        assert seen[503] == tries
    finally:
        await http.close()
