"""A client that goes away mid-body is its doing, not a server error (lib/http/body.py):
a real departments process counts it as 499 (NGINX's code for it), logs it below ERROR,
never a 500, and goes on serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.gateway_stack import departments_env, wait_until
from tests.integration.auth_support import KEYS, token
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess


async def requests_by_status(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """http_requests_total of POST /v1/departments by status."""
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            ours = labels.get("method") == "POST" and labels.get("route") == "/v1/departments"
            if sample.name == "http_requests_total" and ours:
                counts[labels["status"]] = counts.get(labels["status"], 0.0) + sample.value
    return counts


async def send_half(port: int, bearer: str, chunked: bool) -> None:
    """A POST whose body stops half-way, then the connection closed (a gateway killed)."""
    body = b'{"name": "half a depar'
    framing = (
        b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode() + body + b"\r\n"
        if chunked
        else b"Content-Length: 200\r\n\r\n" + body
    )
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/departments HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {bearer}\r\n".encode()
        + framing
    )
    await writer.drain()
    await asyncio.sleep(0)  # the head is parsed and the handler reads the body
    writer.close()
    await writer.wait_closed()


async def test_a_body_cut_off_mid_way_is_499_not_500(
    migrated_db: Callable[[str], str], tmp_path: Path
) -> None:
    dsn = migrated_db("departments")
    env = departments_env(dsn, JWT_PUBLIC_KEY=KEYS[1], JWT_PUBLIC_KEY_FILE="")
    service = ServiceProcess(env, tmp_path / "svc.log")
    try:
        await service.wait_healthy()
        for chunked in (False, True):
            await send_half(service.port, token(), chunked)

        async with aiohttp.ClientSession() as http:

            async def counted() -> bool:
                return (await requests_by_status(http, service.url)).get("499") == 2.0

            await wait_until(counted, "both cut bodies counted as 499", PROCESS_MARGIN)
            counts = await requests_by_status(http, service.url)
            assert {status: n for status, n in counts.items() if n} == {"499": 2.0}
            async with http.get(f"{service.url}/health") as resp:
                assert resp.status == 200  # it goes on serving
        text = service.log.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        cut = [line for line in lines if line.get("status") == 499]
        assert len(cut) == 2, lines
        assert all(line["level"] not in ("error", "critical") for line in lines), lines
    finally:
        service.stop()
