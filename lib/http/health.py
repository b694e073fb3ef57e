"""The routes every service has: /health, /ready, /metrics, /v1/openapi.json."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.multiprocess import MultiProcessCollector

from lib.errors import ServiceUnavailable
from lib.http import problems
from lib.http.jsonio import dumps, json_response
from lib.http.keys import AUTH, DB, DRAINING, KEYS_GATE_READY, REDIS, request_id
from lib.http.openapi import build_spec

READY_TIMEOUT = 2.0


async def health(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def _unavailable(request: web.Request, detail: str, retry_after: float = 1) -> web.Response:
    error = ServiceUnavailable(detail, retry_after=retry_after)
    return problems.from_app_error(error, request_id(request))


async def ready(request: web.Request) -> web.Response:
    """503 naming the service's own database when it does not answer, while the replica
    drains (a balancer that probes it stops sending), or before its JWK Set first arrived
    (it could verify no token: ADR 0032; not a gRPC side port's, KEYS_GATE_READY); Redis
    is optional."""
    draining = request.app.get(DRAINING)
    if draining is not None and draining.is_set():
        return _unavailable(request, "this replica is shutting down: another one answers")
    verifier = request.app.get(AUTH)
    gated = request.app.get(KEYS_GATE_READY, True)
    if gated and verifier is not None and not verifier.keys.published():  # JWKS_URL not yet
        return _unavailable(request, "no token signing key fetched yet (JWKS_URL)")
    checks: dict[str, str] = {}
    db = request.app.get(DB)
    if db is not None:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await db.ping()
            checks["database"] = "ok"
        except Exception:
            return _unavailable(request, "the database does not answer", retry_after=5)
    redis: Any = request.app.get(REDIS)
    if redis is not None:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await redis.ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "degraded"
    status = "degraded" if "degraded" in checks.values() else "ok"
    return json_response({"status": status, "checks": checks})


def metrics_handler() -> Any:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # sums the workers
        return make_aiohttp_handler(registry)
    return make_aiohttp_handler(REGISTRY)


def openapi_handler(service: str, title: str, version: str) -> Any:
    built: dict[str, bytes] = {}  # the routes never change once the app runs

    async def openapi(request: web.Request) -> web.Response:
        if "body" not in built:
            spec = build_spec(request.app, service=service, title=title, version=version)
            built["body"] = dumps(spec)
        return web.Response(body=built["body"], content_type="application/json")

    return openapi


async def start_draining(app: web.Application) -> None:
    """on_shutdown (SIGTERM: the listener is closed already, in-flight requests still run)."""
    app[DRAINING].set()


def add_common_routes(app: web.Application, service: str, title: str, version: str) -> None:
    app[DRAINING] = asyncio.Event()
    app.on_shutdown.append(start_draining)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_handler())
    app.router.add_get("/v1/openapi.json", openapi_handler(service, title, version))
