"""The exporter's HTTP server (/metrics, /health) and its tail loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from observability.nginx_exporter.metrics import AccessLogMetrics
from observability.nginx_exporter.routes import with_openapi
from observability.nginx_exporter.stub_status import StubStatusCollector, fetch
from observability.nginx_exporter.tail import Follower

log = logging.getLogger("nginx_exporter")


@dataclass(frozen=True)
class Options:
    log: Path
    stub_status: str = "http://127.0.0.1:8088/nginx_status"  # "" -> not scraped
    host: str = "127.0.0.1"
    port: int = 9150
    poll_interval: float = 0.25
    from_start: bool = False
    openapi_dir: Path | None = None


@dataclass
class State:
    options: Options
    registry: CollectorRegistry
    metrics: AccessLogMetrics
    stub: StubStatusCollector
    follower: Follower
    session: aiohttp.ClientSession | None = None


STATE = web.AppKey("state", State)


def drain(state: State) -> None:
    """Count every complete line written since the last call, and any rotation seen."""
    follower = state.follower
    rotations, truncations = follower.rotations, follower.truncations
    try:
        for line in follower.poll():
            state.metrics.observe_line(line)
    except OSError as exc:  # an unreadable file is reported, never fatal
        log.warning("tail %s: %s", state.options.log, exc)
    state.metrics.reopened.labels("rename").inc(follower.rotations - rotations)
    state.metrics.reopened.labels("truncate").inc(follower.truncations - truncations)


async def tail_loop(state: State) -> None:
    while True:
        drain(state)
        await asyncio.sleep(state.options.poll_interval)


async def metrics_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.options.stub_status and state.session is not None:
        try:
            state.stub.update(await fetch(state.session, state.options.stub_status))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("stub_status %s: %s", state.options.stub_status, exc)
            state.stub.update(None)
    drain(state)  # what nginx logged up to now: a scrape right after a request sees it
    body = generate_latest(state.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def health_handler(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(options: Options) -> web.Application:
    registry = CollectorRegistry()
    stub = StubStatusCollector()
    if options.stub_status:
        registry.register(stub)
    state = State(
        options=options,
        registry=registry,
        metrics=AccessLogMetrics(registry, with_openapi(options.openapi_dir)),
        stub=stub,
        follower=Follower(options.log, from_start=options.from_start),
    )
    app = web.Application()
    app[STATE] = state

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        state.session = aiohttp.ClientSession()
        state.follower.poll()  # position at the end of an existing log now, not later
        task = asyncio.create_task(tail_loop(state))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await state.session.close()
        state.follower.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/health", health_handler)
    return app
