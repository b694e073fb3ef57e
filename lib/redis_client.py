"""The one Redis client of a process: REDIS_URL's server, or the master through Sentinel.

Through Sentinel (`REDIS_SENTINELS`, `REDIS_SENTINEL_SERVICE`) a promoted replica is
followed without a restart (ADR 0033). Rate limits, revocations and chat's fan-out all
use this client.

With Sentinel every new connection asks a Sentinel for the master's address (each ask
bounded by `REDIS_SENTINEL_TIMEOUT`); a connection to a master that is gone fails, and
callers keep their documented behaviour for a Redis outage until one is promoted.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from lib.config import ServiceSettings, host_port


@dataclass(frozen=True, slots=True)
class RedisLink:
    """The client, and the Sentinel connections it asks for the master (if any)."""

    client: Redis
    sentinel: Sentinel | None = None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()


def connect_redis(settings: ServiceSettings) -> RedisLink | None:
    """The process's Redis from its settings; None when neither setting names one. No
    connection is made here: the first command connects."""
    if settings.redis_sentinels:
        timeout = settings.redis_sentinel_timeout
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            [host_port(entry) for entry in settings.redis_sentinels],
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
            socket_connect_timeout=timeout,
        )
        return RedisLink(sentinel.master_for(settings.redis_sentinel_service), sentinel)
    if settings.redis_url:
        return RedisLink(Redis.from_url(settings.redis_url))
    return None
