"""bench/http_peers.py's peers answer what the service answers (issue 31): the ratios
against them are only meaningful while they do the same work. A module of its own: the
departments database of a module is shared by its tests."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import pytest

from bench.common import ROOT, parsed_answer, wait_ready
from lib.auth.principal import Role
from tests.integration.auth_support import bearer
from tools.local.ports import free_port


@pytest.mark.parametrize("peer", ["litestar", "blacksheep"])
async def test_peer_answers_the_service_body(client: Any, departments_dsn: str, peer: str) -> None:
    """bench/http_peers.py's peers (their own process, under uvicorn as in the benchmark)
    answer the service's departments page value for value, and refuse a bad limit."""
    for name in (f"Zeta {peer}", f"Alpha {peer}"):
        resp = await client.post(
            "/v1/departments",
            json={"name": name, "address": "1 Main St"},
            headers=bearer(Role.ADMIN),
        )
        assert resp.status == 201, await resp.text()
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.http_peers", peer, "departments"),
        *(str(port), departments_dsn),
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/departments"
        got = await asyncio.to_thread(wait_ready, f"{url}?limit=50")
        service = await (await client.get("/v1/departments?limit=50")).read()
        assert parsed_answer(got) == parsed_answer(service)
        names = [r["name"] for r in json.loads(got)["data"] if r["name"].endswith(peer)]
        assert names == [f"Alpha {peer}", f"Zeta {peer}"]
        async with aiohttp.ClientSession() as session, session.get(f"{url}?limit=0") as bad:
            assert bad.status == 400
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
