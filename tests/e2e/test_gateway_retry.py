"""The gateway's safe retry (ADR 0022), against a real nginx: two replicas of one service,
the first of which reads a request whole and then drops the connection without a word
(a process killed mid-request). A GET, and a POST carrying an Idempotency-Key to an
operation that honours it (its OpenAPI document declares the header), are passed to the
other replica and succeed; a write without the key, a PATCH, or a POST to an operation
that ignores the key is never sent twice:
the client gets the gateway's 503 problem+json (it alone knows whether to send it again)
and the other replica sees nothing of it. Six nginx runs, about 1.5 s in all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.gateway_stack import Gateway
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN

SERVICE = "departments"  # any HTTP service of the registry: only its upstream is used


@dataclass
class Dropper:
    """Reads each request's head and body, records its X-Request-ID, then closes."""

    port: int = field(default_factory=free_port)
    seen: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> Dropper:
        async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:-2]
                )
                lower = {k.lower(): v for k, v in headers.items()}
                await reader.readexactly(int(lower.get("content-length", "0")))
                self.seen.append(lower["x-request-id"])
            except (asyncio.IncompleteReadError, ConnectionError):
                pass  # a keep-alive connection nginx closed itself
            writer.transport.abort()  # a reset, no response: the replica died mid-request

        self.server = await asyncio.start_server(drop, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class Replica:
    """A healthy replica: answers every request, recording its X-Request-ID."""

    port: int = field(default_factory=free_port)
    seen: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self) -> Replica:
        async def answer(request: web.Request) -> web.Response:
            await request.read()
            self.seen.append(request.headers["X-Request-ID"])
            return web.json_response({"replica": "healthy"}, status=201)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Dropper, Replica]]:
    dropper, healthy = await Dropper().start(), await Replica().start()
    addresses = [f"127.0.0.1:{dropper.port}", f"127.0.0.1:{healthy.port}"]
    gateway = Gateway(tmp_path, {SERVICE: addresses}, tmp_path)
    try:
        yield await gateway.start(), dropper, healthy
    finally:
        gateway.stop()
        await dropper.stop()
        await healthy.stop()


ITEM = "/v1/departments/0b7c1f2e-5d7a-4c3e-9d1f-2a3b4c5d6e7f"


@pytest.mark.parametrize(
    ("method", "path", "key", "retried"),
    [
        ("GET", "/v1/departments", None, True),
        ("POST", "/v1/departments", "key", True),  # createDepartment takes Idempotency-Key
        ("POST", "/v1/departments", None, False),
        ("POST", f"{ITEM}/anything", "key", False),  # no such operation: the key means nothing
        ("PATCH", ITEM, "key", False),
        ("PATCH", ITEM, None, False),
    ],
)
async def test_only_a_replay_safe_request_goes_to_the_next_replica(
    pair: tuple[Gateway, Dropper, Replica],
    method: str,
    path: str,
    key: str | None,
    retried: bool,
) -> None:
    gateway, dropper, healthy = pair
    url = f"{gateway.url}/api/{SERVICE}{path}"
    timeout = aiohttp.ClientTimeout(total=PROCESS_MARGIN)
    answers: dict[str, int] = {}
    codes: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=timeout) as http:
        # round robin: within two requests one meets the dropping replica
        for _ in range(2):
            rid = uuid.uuid4().hex
            headers = {"X-Request-ID": rid}
            if key is not None:
                headers["Idempotency-Key"] = f"{key}-{rid}"
            body = None if method == "GET" else {"name": "x"}
            async with http.request(method, url, json=body, headers=headers) as resp:
                answers[rid] = resp.status
                if resp.status != 201:
                    codes[rid] = (await resp.json(content_type=None))["code"]
            if dropper.seen:
                break
    [dropped] = dropper.seen
    if retried:
        assert answers[dropped] == 201, answers
        assert healthy.seen.count(dropped) == 1  # passed on once, answered once
    else:
        assert (answers[dropped], codes[dropped]) == (503, "SERVICE_UNAVAILABLE"), answers
        assert dropped not in healthy.seen  # never sent twice
    assert all(status == 201 for rid, status in answers.items() if rid != dropped), answers
