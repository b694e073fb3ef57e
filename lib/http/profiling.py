"""Opt-in memory profiling on a separate loopback port: the pprof of this project.

`profiling_ctx(port)` is a cleanup_ctx: when enabled it starts tracemalloc (25 frames)
and a second aiohttp server on 127.0.0.1:<port>, never on the service's own port:

- `GET  /debug/memory/top?limit=N&group=lineno|filename|traceback` the largest
  allocation sites now: `size_kib`, `count`, `where`;
- `POST /debug/memory/snapshot` stores a baseline snapshot;
- `GET  /debug/memory/diff?limit=N&group=...` the largest changes since the baseline
  (409 problem+json when there is none);
- `GET  /debug/tasks` every asyncio task of the loop: name, coroutine, await stack.

Cleanup stops the server and tracemalloc (when this context started it). The port of a
process is `port_for(service)`: 6060 + the service's index in lib/registry.py x 10 + the
worker index (docs/architecture.md "Ports and settings").
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import tracemalloc
import types
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from lib import registry
from lib.errors import Conflict, FieldError, ValidationFailed
from lib.http import problems
from lib.http.jsonio import json_response
from lib.logging import get_logger

log = get_logger("lib.http.profiling")

BASE_PORT = 6060
FRAMES = 25
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_STACK = 50
HOST = "127.0.0.1"

Group = Literal["lineno", "filename", "traceback"]
GROUPS: tuple[Group, ...] = ("lineno", "filename", "traceback")
# the profiler's own bookkeeping and the import machinery are noise in every report;
# filtered on the grouped rows (Snapshot.filter_traces costs seconds on a big heap)
NOISE = frozenset(
    {
        tracemalloc.__file__,
        "<frozen importlib._bootstrap>",
        "<frozen importlib._bootstrap_external>",
        "<unknown>",
    }
)


def profiling_port(base: int, service_index: int, worker_index: int) -> int:
    """`base + service_index*10 + worker_index`: ten workers per service, no overlaps."""
    if service_index < 0:
        raise ValueError("service_index must be >= 0")
    if not 0 <= worker_index <= 9:
        raise ValueError("worker_index must be 0..9 (ten ports per service)")
    port = base + service_index * 10 + worker_index
    if not 1 <= port <= 65535:
        raise ValueError(f"profiling port {port} is out of range")
    return port


SERVICE_INDEX = {service.name: service.index for service in registry.MICROSERVICES}
OTHER_INDEX = 0  # a process outside the registry (a test app): 6060..6069


def port_for(service: str, configured: int = 0) -> int:
    """The profiling port of this process: `base + worker index`, base being PROFILING_PORT
    when set, else BASE_PORT + the service's index x 10 (FIXUP_WORKER_INDEX is set by
    lib.runner for each worker, so the workers of one service never share a port)."""
    worker = int(os.environ.get("FIXUP_WORKER_INDEX", "0"))
    if configured:
        return profiling_port(configured, 0, worker)
    return profiling_port(BASE_PORT, SERVICE_INDEX.get(service, OTHER_INDEX), worker)


@dataclass
class Profiler:
    """What one profiling server holds: its address and the baseline snapshot."""

    host: str
    port: int
    baseline: tracemalloc.Snapshot | None = None
    baseline_at: float = 0.0
    started_tracing: bool = False


PROFILER = web.AppKey("profiler", Profiler)


def profiling_ctx(
    port: int, *, enabled: bool = True, host: str = HOST
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx for the service app; `port=0` binds any free port (see `PROFILER`)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not enabled:
            yield
            return
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start(FRAMES)
        profiler = Profiler(host, port, started_tracing=started)
        debug_app = web.Application()
        debug_app[PROFILER] = profiler
        debug_app.router.add_get("/debug/memory/top", memory_top)
        debug_app.router.add_post("/debug/memory/snapshot", memory_snapshot)
        debug_app.router.add_get("/debug/memory/diff", memory_diff)
        debug_app.router.add_get("/debug/tasks", tasks)
        runner = web.AppRunner(debug_app, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            if started:
                tracemalloc.stop()
            raise
        if runner.addresses:
            profiler.port = int(runner.addresses[0][1])
        app[PROFILER] = profiler
        log.info("profiling_started", host=host, port=profiler.port, frames=FRAMES)
        try:
            yield
        finally:
            await runner.cleanup()
            profiler.baseline = None
            if started:
                tracemalloc.stop()
            log.info("profiling_stopped", port=profiler.port)

    return ctx


# --- handlers ---


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed("invalid query parameters", errors=[FieldError(field, message)])


def _query(request: web.Request) -> tuple[int, Group]:
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        raise _invalid("limit", f"must be an integer 1..{MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid("limit", f"must be an integer 1..{MAX_LIMIT}")
    group = request.query.get("group", "lineno")
    if group not in GROUPS:
        raise _invalid("group", f"must be one of: {', '.join(GROUPS)}")
    return limit, group


def _conflict(detail: str) -> web.Response:
    return problems.from_app_error(Conflict(detail), "")


def _not_tracing() -> web.Response:
    return _conflict("tracemalloc is not tracing")


def _noise(trace: tracemalloc.Traceback) -> bool:
    return trace[-1].filename in NOISE  # the most recent frame made the allocation


def _where(trace: tracemalloc.Traceback, group: Group) -> list[str]:
    """Most recent call first; one entry unless grouped by traceback."""
    frames = list(reversed(trace)) if group == "traceback" else [trace[-1]]
    if group == "filename":
        return [frame.filename for frame in frames]
    return [f"{frame.filename}:{frame.lineno}" for frame in frames]


def _kib(size: int) -> float:
    return round(size / 1024, 1)


def _totals() -> dict[str, float]:
    current, peak = tracemalloc.get_traced_memory()
    return {"traced_kib": _kib(current), "peak_kib": _kib(peak)}


def _top(limit: int, group: Group) -> list[dict[str, Any]]:
    stats = (s for s in tracemalloc.take_snapshot().statistics(group) if not _noise(s.traceback))
    return [
        {"size_kib": _kib(s.size), "count": s.count, "where": _where(s.traceback, group)}
        for s in itertools.islice(stats, limit)
    ]


def _diff(baseline: tracemalloc.Snapshot, limit: int, group: Group) -> list[dict[str, Any]]:
    diffs = [
        d
        for d in tracemalloc.take_snapshot().compare_to(baseline, group)
        if not _noise(d.traceback)
    ]
    diffs.sort(key=lambda d: (d.size_diff, d.size), reverse=True)
    return [
        {
            "size_kib": _kib(d.size),
            "size_diff_kib": _kib(d.size_diff),
            "count": d.count,
            "count_diff": d.count_diff,
            "where": _where(d.traceback, group),
        }
        for d in diffs[:limit]
    ]


# The reports walk every trace in Python (seconds on a big heap): run them in a thread so
# the service's event loop keeps getting turns.


async def memory_top(request: web.Request) -> web.Response:
    try:
        limit, group = _query(request)
    except ValidationFailed as exc:
        return problems.from_app_error(exc, "")
    if not tracemalloc.is_tracing():
        return _not_tracing()
    rows = await asyncio.to_thread(_top, limit, group)
    return json_response({"data": rows, "meta": {"group": group, "limit": limit, **_totals()}})


async def memory_snapshot(request: web.Request) -> web.Response:
    if not tracemalloc.is_tracing():
        return _not_tracing()
    profiler = request.app[PROFILER]
    baseline = await asyncio.to_thread(tracemalloc.take_snapshot)
    profiler.baseline = baseline
    profiler.baseline_at = time.time()
    body = {"traces": len(baseline.traces), **_totals()}
    return json_response({"data": body}, status=201)


async def memory_diff(request: web.Request) -> web.Response:
    try:
        limit, group = _query(request)
    except ValidationFailed as exc:
        return problems.from_app_error(exc, "")
    profiler = request.app[PROFILER]
    if profiler.baseline is None:
        return _conflict("no baseline: POST /debug/memory/snapshot first")
    if not tracemalloc.is_tracing():
        return _not_tracing()
    rows = await asyncio.to_thread(_diff, profiler.baseline, limit, group)
    meta = {
        "group": group,
        "limit": limit,
        "baseline_age_s": round(time.time() - profiler.baseline_at, 3),
        **_totals(),
    }
    return json_response({"data": rows, "meta": meta})


def _await_stack(coro: Any) -> list[str]:
    """The frames a task is suspended in, outermost first (follows cr_await/gi_yieldfrom)."""
    lines: list[str] = []
    obj = coro
    while obj is not None and len(lines) < MAX_STACK:
        frame: types.FrameType | None = (
            getattr(obj, "cr_frame", None)
            or getattr(obj, "gi_frame", None)
            or getattr(obj, "ag_frame", None)
        )
        if frame is not None:
            code = frame.f_code
            lines.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        obj = (
            getattr(obj, "cr_await", None)
            or getattr(obj, "gi_yieldfrom", None)
            or getattr(obj, "ag_await", None)
        )
    return lines


def _coroutine_name(coro: Any) -> str:
    return str(getattr(coro, "__qualname__", None) or type(coro).__name__)


async def tasks(request: web.Request) -> web.Response:
    current = asyncio.current_task()
    rows = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        state = "cancelled" if task.cancelled() else "done" if task.done() else "pending"
        rows.append(
            {
                "name": task.get_name(),
                "coroutine": _coroutine_name(coro),
                "state": state,
                "current": task is current,
                "stack": _await_stack(coro),
            }
        )
    rows.sort(key=lambda row: str(row["name"]))
    return json_response({"data": rows, "meta": {"count": len(rows)}})
