"""lib.http.profiling: the separate loopback server, tracemalloc reports, the task dump."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lib import registry
from lib.http.profiling import BASE_PORT, PROFILER, port_for, profiling_ctx, profiling_port
from tools.local.ports import free_port

THIS_FILE = Path(__file__).name


@pytest.fixture
async def profiler() -> AsyncIterator[tuple[str, web.Application]]:
    """Run the cleanup_ctx of a throwaway app by hand: start, yield its URL, clean up; the
    cleanup stops the tracing it started and the server."""
    assert not tracemalloc.is_tracing()
    app = web.Application()
    port = free_port()
    ctx = profiling_ctx(port)(app)
    await anext(ctx)
    yield f"http://127.0.0.1:{port}", app
    with pytest.raises(StopAsyncIteration):
        await anext(ctx)
    assert not tracemalloc.is_tracing()
    with pytest.raises(ConnectionRefusedError):  # nothing listens
        await asyncio.open_connection("127.0.0.1", port)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_json(
    http: aiohttp.ClientSession, url: str, status: int = 200, method: str = "GET"
) -> Any:
    async with http.request(method, url) as resp:
        assert resp.status == status, await resp.text()
        expected = "application/json" if status < 400 else "application/problem+json"
        assert resp.content_type == expected
        return await resp.json(content_type=None)


def allocate(n: int = 4096) -> list[bytearray]:
    return [bytearray(1024) for _ in range(n)]  # ~4 MiB from this line


def sites(rows: list[dict[str, Any]]) -> list[str]:
    return [where for row in rows for where in row["where"]]


# --- profiling_port ---


def test_profiling_port_follows_design() -> None:
    assert profiling_port(6060, 0, 0) == 6060
    assert profiling_port(6060, 1, 0) == 6070
    assert profiling_port(6060, 2, 3) == 6083
    assert profiling_port(7000, 5, 9) == 7059


@pytest.mark.parametrize(("service", "worker"), [(-1, 0), (0, -1), (0, 10), (6000, 0)], ids=str)
def test_profiling_port_rejects_overlaps_and_range(service: int, worker: int) -> None:
    with pytest.raises(ValueError, match=r"worker_index|service_index|out of range"):
        profiling_port(6060, service, worker)


def test_port_for_each_registered_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """6060 + the registry's index x 10 + the worker index; PROFILING_PORT moves the base."""
    assert BASE_PORT == 6060
    monkeypatch.delenv("FIXUP_WORKER_INDEX", raising=False)
    ports = {service.name: port_for(service.name) for service in registry.MICROSERVICES}
    assert ports == {s.name: 6060 + 10 * s.index for s in registry.MICROSERVICES}
    assert (ports["departments"], ports["points"]) == (6070, 6120)  # the documented two
    assert port_for("a-test-app") == 6060  # outside the registry: 6060..6069
    monkeypatch.setenv("FIXUP_WORKER_INDEX", "3")
    assert port_for("users") == 6083
    assert port_for("users", configured=7000) == 7003  # each worker its own port
    monkeypatch.setenv("FIXUP_WORKER_INDEX", "0")
    assert port_for("users", configured=7000) == 7000


def test_profiling_ports_never_overlap() -> None:
    ports = [
        profiling_port(BASE_PORT, s.index, w) for s in registry.MICROSERVICES for w in range(10)
    ]
    assert len(set(ports)) == len(ports) == 10 * len(registry.MICROSERVICES)


# --- the server ---


async def test_starts_tracemalloc_and_binds_loopback(
    profiler: tuple[str, web.Application],
) -> None:
    url, app = profiler
    assert tracemalloc.is_tracing()
    assert tracemalloc.get_traceback_limit() == 25
    state = app[PROFILER]
    assert state.host == "127.0.0.1"
    assert url.endswith(f":{state.port}")
    assert state.started_tracing is True


async def test_top_shows_the_big_allocation(
    profiler: tuple[str, web.Application], http: aiohttp.ClientSession
) -> None:
    url, _ = profiler
    big = allocate()
    body = await get_json(http, f"{url}/debug/memory/top?limit=5")
    assert body["meta"]["group"] == "lineno"
    assert body["meta"]["limit"] == 5
    assert body["meta"]["traced_kib"] >= 4096
    assert len(body["data"]) <= 5
    top = body["data"][0]
    assert set(top) == {"size_kib", "count", "where"}
    assert len(top["where"]) == 1
    assert top["where"][0].endswith(f"{THIS_FILE}:{allocate.__code__.co_firstlineno + 1}")
    assert top["size_kib"] >= 4096
    assert top["count"] >= 4096
    del big


async def test_top_groups_by_filename_and_traceback(
    profiler: tuple[str, web.Application], http: aiohttp.ClientSession
) -> None:
    url, _ = profiler
    big = allocate()
    by_file = await get_json(http, f"{url}/debug/memory/top?limit=3&group=filename")
    assert by_file["meta"]["group"] == "filename"
    assert any(w.endswith(THIS_FILE) for w in sites(by_file["data"]))
    by_tb = await get_json(http, f"{url}/debug/memory/top?limit=1&group=traceback")
    stack = by_tb["data"][0]["where"]
    assert len(stack) > 1  # the whole traceback, most recent call first
    assert stack[0].endswith(f"{THIS_FILE}:{allocate.__code__.co_firstlineno + 1}")
    assert any("test_top_groups_by_filename_and_traceback" in w or THIS_FILE in w for w in stack)
    del big


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=abc", "limit"), ("group=x", "group")],
)
async def test_bad_query_is_400(
    profiler: tuple[str, web.Application], http: aiohttp.ClientSession, query: str, field: str
) -> None:
    url, _ = profiler
    for path in ("top", "diff"):
        body = await get_json(http, f"{url}/debug/memory/{path}?{query}", status=400)
        assert body["code"] == "VALIDATION_ERROR"
        assert [e["field"] for e in body["errors"]] == [field]


async def test_diff_without_baseline_is_409(
    profiler: tuple[str, web.Application], http: aiohttp.ClientSession
) -> None:
    url, _ = profiler
    body = await get_json(http, f"{url}/debug/memory/diff", status=409)
    assert body["status"] == 409
    assert body["code"] == "CONFLICT"
    assert "snapshot" in body["detail"]


async def test_snapshot_then_diff_shows_growth(
    profiler: tuple[str, web.Application], http: aiohttp.ClientSession
) -> None:
    url, app = profiler
    taken = await get_json(http, f"{url}/debug/memory/snapshot", status=201, method="POST")
    assert taken["data"]["traces"] > 0
    assert app[PROFILER].baseline is not None
    grown = allocate(8192)
    body = await get_json(http, f"{url}/debug/memory/diff?limit=3")
    first = body["data"][0]
    assert set(first) == {"size_kib", "size_diff_kib", "count", "count_diff", "where"}
    assert first["where"][0].endswith(f"{THIS_FILE}:{allocate.__code__.co_firstlineno + 1}")
    assert first["size_diff_kib"] >= 8192
    assert first["count_diff"] >= 8192
    assert [row["size_diff_kib"] for row in body["data"]] == sorted(
        (row["size_diff_kib"] for row in body["data"]), reverse=True
    )
    # a new baseline absorbs the growth: the same line no longer tops the diff by 8 MiB
    await get_json(http, f"{url}/debug/memory/snapshot", status=201, method="POST")
    again = await get_json(http, f"{url}/debug/memory/diff?limit=50")
    line = f"{THIS_FILE}:{allocate.__code__.co_firstlineno + 1}"
    assert all(
        row["size_diff_kib"] < 1024 for row in again["data"] if row["where"][0].endswith(line)
    )
    del grown


async def parked(event: asyncio.Event) -> None:
    await event.wait()


async def test_tasks_lists_a_named_task_with_its_stack(
    profiler: tuple[str, web.Application], http: aiohttp.ClientSession
) -> None:
    url, _ = profiler
    release = asyncio.Event()
    task = asyncio.create_task(parked(release), name="profiling-probe")
    await asyncio.sleep(0)
    try:
        body = await get_json(http, f"{url}/debug/tasks")
    finally:
        release.set()
        await task
    assert body["meta"]["count"] == len(body["data"])
    probe = [row for row in body["data"] if row["name"] == "profiling-probe"]
    assert len(probe) == 1
    row = probe[0]
    assert row["coroutine"] == "parked"
    assert row["state"] == "pending"
    assert row["current"] is False
    assert row["stack"][0].startswith(str(Path(__file__)))
    assert row["stack"][0].endswith(" in parked")
    assert any(line.endswith(" in wait") for line in row["stack"])  # Event.wait, awaited
    assert sum(1 for r in body["data"] if r["current"]) == 1  # the handler's own task


async def test_cleanup_leaves_tracing_it_did_not_start() -> None:
    tracemalloc.start(5)
    try:
        app = web.Application()
        ctx = profiling_ctx(0)(app)
        await anext(ctx)
        assert app[PROFILER].started_tracing is False
        assert app[PROFILER].port > 0  # port 0: the bound port is reported
        with pytest.raises(StopAsyncIteration):
            await anext(ctx)
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


async def test_disabled_starts_nothing() -> None:
    app = web.Application()
    port = free_port()
    ctx = profiling_ctx(port, enabled=False)(app)
    await anext(ctx)
    assert not tracemalloc.is_tracing()
    assert PROFILER not in app
    with pytest.raises(ConnectionRefusedError):  # nothing listens
        await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(StopAsyncIteration):
        await anext(ctx)


async def test_port_in_use_fails_start_and_stops_tracing() -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        ctx = profiling_ctx(port)(web.Application())
        with pytest.raises(OSError, match="address already in use"):
            await anext(ctx)
        assert not tracemalloc.is_tracing()
    finally:
        blocker.close()
        await blocker.wait_closed()
