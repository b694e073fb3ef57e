"""Run by test_fixtures.py in two pytest processes at once; not collected on its own."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import redis

from tests.servers import Servers


def test_probe(migrated_db: Callable[[str], str], redis_prefix: str, servers: Servers) -> None:
    dsn = migrated_db("departments")
    client = redis.Redis.from_url(servers.redis_url)
    key = f"{redis_prefix}probe"
    client.set(key, os.getpid(), ex=60)
    time.sleep(1.5)  # both runs are alive at once
    assert client.get(key) == str(os.getpid()).encode(), "another run wrote our key"
    client.delete(key)
    client.close()
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump({"dsn": dsn, "prefix": redis_prefix}, out)
