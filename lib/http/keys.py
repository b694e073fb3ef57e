"""Typed AppKeys: the resources an app shares between requests, opened and closed by cleanup_ctx.

Process-wide state lives outside them and is set once at start: the Prometheus registry
(lib.metrics), tracing's switch and SDK (lib.tracing) and the log writer (lib.logging).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from redis.asyncio import Redis

from lib.auth.principal import Principal
from lib.auth.revocation import Revocations
from lib.auth.tokens import TokenVerifier
from lib.config import ServiceSettings
from lib.db.clock import DatabaseClock
from lib.db.pool import Database
from lib.forwarding import REQUEST_ID as REQUEST_ID  # set by the first middleware
from lib.forwarding import request_id as request_id
from lib.resilience.ratelimit import Limits

SETTINGS = web.AppKey("settings", ServiceSettings)
DB = web.AppKey("db", Database)
REDIS: web.AppKey[Redis | None] = web.AppKey("redis")
AUTH: web.AppKey[TokenVerifier | None] = web.AppKey("auth")
REVOCATIONS = web.AppKey("revocations", Revocations)
# Unix seconds on the database's clock (lib/db/clock.py): what token times are judged by
CLOCK = web.AppKey("clock", DatabaseClock)
LIMITS: web.AppKey[Limits] = web.AppKey("limits")
# set when SIGTERM's drain begins (on_shutdown): /ready answers 503 from then on
DRAINING = web.AppKey("draining", asyncio.Event)
# False: /ready does not wait for the token keys (a gRPC service's side port: its calls
# take no token, only its audit list does, which answers 503 until they come)
KEYS_GATE_READY = web.AppKey("keys_gate_ready", bool)

# per request, set by the middleware chain
CLIENT_IP = web.RequestKey("client_ip", str)
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")


def principal_of(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)
