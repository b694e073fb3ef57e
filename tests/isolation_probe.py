"""Run by integration/test_fixtures.py in two pytest processes at once; not collected on its
own (not named test_*)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import redis

from tests.servers import Servers
from tools.time_scale import scaled

BARRIER_SECONDS = scaled(60.0)  # the other run's start-up, on a loaded machine


def wait_for_both(client: redis.Redis, barrier: str) -> None:
    """Count this run in at `barrier` and return once the other run has counted in too."""
    client.incr(barrier)
    deadline = time.monotonic() + BARRIER_SECONDS
    while int(client.get(barrier) or 0) < 2:
        assert time.monotonic() < deadline, "the other run never reached the barrier"
        time.sleep(0.02)  # polling interval only: the event is the other run's INCR


def test_probe(migrated_db: Callable[[str], str], redis_prefix: str, servers: Servers) -> None:
    # MariaDB: on PostgreSQL, DROP DATABASE waits for two cluster-wide checkpoints, seconds
    # each while the rest of the suite writes; what is proven here is the same on both.
    dsn = migrated_db("points")
    client = redis.Redis.from_url(servers.redis_url)
    key = f"{redis_prefix}probe"
    client.set(key, os.getpid(), ex=60)
    wait_for_both(client, os.environ["PROBE_BARRIER"])  # both runs have written their key
    assert client.get(key) == str(os.getpid()).encode(), "another run wrote our key"
    client.delete(key)
    client.close()
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump({"dsn": dsn, "prefix": redis_prefix}, out)
