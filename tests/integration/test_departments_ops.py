"""Operational behaviour of a service: readiness, rate limits, log lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from services.departments.app import create_app
from tests.integration.auth_support import settings_for
from tests.logging_support import logging_to
from tests.proxy import TcpProxy, through


async def test_ready_is_503_naming_the_database_when_it_goes_down(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    parts = urlsplit(departments_dsn)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    try:
        client = await aiohttp_client(create_app(settings_for(through(departments_dsn, proxy))))
        assert (await client.get("/ready")).status == 200
        await proxy.stop()
        resp = await client.get("/ready")
        assert resp.status == 503
        body = await resp.json()
        assert (body["code"], body["detail"]) == (
            "SERVICE_UNAVAILABLE",
            "the database does not answer",
        )
        assert resp.headers["Retry-After"] == "5"
        assert (await client.get("/health")).status == 200  # alive, just not ready
    finally:
        await proxy.stop()


async def test_per_ip_rate_limit_gives_429_with_retry_after(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    settings = settings_for(departments_dsn, rate_limit_ip_rate=0.5, rate_limit_ip_burst=3)
    client = await aiohttp_client(create_app(settings))
    statuses = [(await client.get("/v1/departments?limit=1")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/v1/departments?limit=1")
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "2"  # one token per 2 s
    assert (await limited.json())["code"] == "RATE_LIMIT_EXCEEDED"
    assert (await client.get("/health")).status == 200  # probes are never limited


async def test_trusted_proxy_header_names_the_client(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    settings = settings_for(departments_dsn, rate_limit_ip_rate=0.5, rate_limit_ip_burst=1)
    client = await aiohttp_client(create_app(settings))
    # the test client's peer is 127.0.0.1, a trusted proxy: X-Real-IP is the client
    first = await client.get("/v1/departments?limit=1", headers={"X-Real-IP": "203.0.113.7"})
    second = await client.get("/v1/departments?limit=1", headers={"X-Real-IP": "203.0.113.8"})
    again = await client.get("/v1/departments?limit=1", headers={"X-Real-IP": "203.0.113.7"})
    assert (first.status, second.status, again.status) == (200, 200, 429)


async def test_every_log_line_of_a_request_carries_its_id(
    aiohttp_client: Any, departments_dsn: str, tmp_path: Path
) -> None:
    log_file = tmp_path / "service.log"
    with logging_to("departments", str(log_file)):
        client = await aiohttp_client(create_app(settings_for(departments_dsn)))
        await client.get("/v1/departments?limit=1", headers={"X-Request-ID": "trace-me-1"})
        await client.get("/v1/departments/not-a-uuid", headers={"X-Request-ID": "trace-me-2"})
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    mine = [line for line in lines if line.get("request_id") in ("trace-me-1", "trace-me-2")]
    assert {line["request_id"] for line in mine} == {"trace-me-1", "trace-me-2"}
    first = next(line for line in mine if line["request_id"] == "trace-me-1")
    assert first["event"] == "request"
    assert (first["service"], first["method"], first["route"], first["status"]) == (
        "departments", "GET", "/v1/departments", 200
    )  # fmt: skip
    assert first["ts"].endswith("Z")
    assert isinstance(first["duration_ms"], float)
    second = next(line for line in mine if line["request_id"] == "trace-me-2")
    assert (second["route"], second["status"]) == ("/v1/departments/{id}", 400)


async def test_the_access_log_redacts_secret_query_values(
    aiohttp_client: Any, departments_dsn: str, tmp_path: Path
) -> None:
    log_file = tmp_path / "service.log"
    secrets = ["tok-9f1c2e", "acc-77ab01", "sig-5d5d5d", "extra-31337", "enc-0badf00d"]
    query = (
        f"limit=1&token={secrets[0]}&ACCESS_TOKEN={secrets[1]}&sig={secrets[2]}"
        f"&api_key={secrets[3]}&%74oken={secrets[4]}&tokenish=kept"
    )
    with logging_to("departments", str(log_file)):
        settings = settings_for(departments_dsn, log_redact_params=["api_key"])
        client = await aiohttp_client(create_app(settings))
        url = URL(f"/v1/departments?{query}", encoded=True)  # sent as written: %74oken too
        resp = await client.get(url, headers={"X-Request-ID": "redact-1"})
        assert resp.status == 400  # unknown parameters; logged all the same
    text = log_file.read_text()
    assert [s for s in secrets if s in text] == []
    line = next(json.loads(x) for x in text.splitlines() if '"redact-1"' in x)
    assert line["path"] == "/v1/departments"
    assert line["query"] == (
        "limit=1&token=[REDACTED]&ACCESS_TOKEN=[REDACTED]&sig=[REDACTED]"
        "&api_key=[REDACTED]&%74oken=[REDACTED]&tokenish=kept"
    )


async def test_profiling_is_opt_in_on_its_own_port(
    aiohttp_client: Any, departments_dsn: str
) -> None:
    from tools.local.ports import free_port

    port = free_port()
    settings = settings_for(departments_dsn, profiling_enabled=True, profiling_port=port)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/debug/memory/top")).status == 404  # not on the API port
    async with client.session.get(f"http://127.0.0.1:{port}/debug/memory/top?limit=3") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert 1 <= len(body["data"]) <= 3
    assert body["meta"]["limit"] == 3
    async with client.session.get(f"http://127.0.0.1:{port}/debug/tasks") as resp:
        assert resp.status == 200
    off = await aiohttp_client(create_app(settings_for(departments_dsn)))
    assert (await off.get("/health")).status == 200  # and nothing listens unless enabled
