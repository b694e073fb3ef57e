"""lib/redis_client.py: which Redis a process's settings name (no connection is made)."""

from __future__ import annotations

from lib.config import ServiceSettings
from lib.redis_client import connect_redis


async def test_no_redis_setting_means_in_process_state() -> None:
    assert connect_redis(ServiceSettings()) is None


async def test_redis_url_names_one_server() -> None:
    link = connect_redis(ServiceSettings(redis_url="redis://127.0.0.1:6399/3"))
    assert link is not None
    assert link.sentinel is None
    assert link.client.connection_pool.connection_kwargs["port"] == 6399
    await link.aclose()


async def test_sentinels_win_over_the_url() -> None:
    settings = ServiceSettings(
        redis_url="redis://127.0.0.1:6399/3",
        redis_sentinels=["127.0.0.1:7415", "127.0.0.1:7416"],
        redis_sentinel_service="orders-cache",
        redis_sentinel_timeout=0.2,
    )
    link = connect_redis(settings)
    assert link is not None
    assert link.sentinel is not None
    assert [s.connection_pool.connection_kwargs["port"] for s in link.sentinel.sentinels] == [
        7415,
        7416,
    ]
    assert link.client.connection_pool.service_name == "orders-cache"
    # a question to a Sentinel, and a connection to the master, are bounded by the setting
    first = link.sentinel.sentinels[0].connection_pool.connection_kwargs
    assert first["socket_timeout"] == 0.2
    assert link.client.connection_pool.connection_kwargs["socket_connect_timeout"] == 0.2
    await link.aclose()
