"""Typed AppKeys: the only shared state a process holds (opened and closed by cleanup_ctx)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from redis.asyncio import Redis

from lib.auth.tokens import TokenVerifier
from lib.config import ServiceSettings
from lib.db.pool import Database

if TYPE_CHECKING:
    from lib.http.middleware import Limits

SETTINGS = web.AppKey("settings", ServiceSettings)
DB = web.AppKey("db", Database)
REDIS: web.AppKey[Redis | None] = web.AppKey("redis")
AUTH: web.AppKey[TokenVerifier | None] = web.AppKey("auth")
LIMITS: web.AppKey[Limits] = web.AppKey("limits")


def request_id(request: web.Request) -> str:
    value: str = request.get("request_id", "")
    return value


def state(request: web.Request, key: str) -> Any:
    return request.get(key)
