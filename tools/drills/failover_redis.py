"""The failover drill's Redis fault: a writer appending numbered entries through Sentinel
while the master is SIGKILLed; the writer's acknowledged entries are then looked for on the
master the Sentinels promoted. Replication is asynchronous: the one write in flight may be
lost (`ALLOWED_LOSS`, ADR 0033)."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections import Counter
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from tools.drills.drill_writers import FaultResult, drive
from tools.drills.ha_faults import Injected, nothing_to_heal
from tools.ha import ha_tier
from tools.ha.ha_redis import SERVICE, RedisLayout, master_address, sentinels_ready
from tools.local.local_servers import wait_until
from tools.local.processes import stop_pid

KEY = "drill:writes"
TIMEOUT = 1.0  # a command's and a connection's bound: past it, a failure, never a hang
RECOVERY_LIMIT = 30.0  # down-after 1 s, an election, a promotion: a few seconds here
# replication is asynchronous: a write the master acknowledged as it died may not have
# reached the replica; one writer has at most one such write in flight
ALLOWED_LOSS = 1


class RedisWrites:
    """Entries appended to one list on the master the Sentinels name (REDIS_SENTINELS)."""

    errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def __init__(self, layout: RedisLayout) -> None:
        bounds = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
        hosts = [("127.0.0.1", port) for port in layout.sentinels]
        self.sentinel = Sentinel(hosts, sentinel_kwargs=bounds)  # type: ignore[no-untyped-call]
        self.pool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
            SERVICE, self.sentinel, is_master=True, **bounds
        )
        self.client = redis.Redis(connection_pool=self.pool, retry=Retry(NoBackoff(), 0))

    def write(self, n: int) -> None:
        self.client.rpush(KEY, n)

    def reset(self) -> None:
        """Connections dropped: the next write asks a Sentinel for the master again."""
        self.pool.disconnect()

    def close(self) -> None:
        self.client.close()
        self.pool.disconnect()
        for each in self.sentinel.sentinels:
            each.close()


def kill_master(layout: RedisLayout, groups: list[int]) -> tuple[int, str]:
    """SIGKILL the server the Sentinels name master (and reap it when it is ours)."""
    address = master_address(layout)
    assert address is not None, "no Redis master to kill"
    k = layout.servers.index(address[1])
    stop_pid(groups[k], signal.SIGKILL, group=True)  # groups: the servers, then the Sentinels
    return address[1], f"Redis master on {address[1]} SIGKILLed"


def drill_redis(var: Path) -> FaultResult:
    """The tier's Redis (ha_tier up with `redis`): its master killed under writes."""
    layout, groups = ha_tier.read_redis(var)
    wait_until(lambda: sentinels_ready(layout), "3 Sentinels ready", RECOVERY_LIMIT)

    def inject() -> Injected:
        killed_at = time.monotonic()
        old, what = kill_master(layout, groups)
        wait_until(
            lambda: (master_address(layout) or ("", old))[1] != old, "a promotion", RECOVERY_LIMIT
        )
        took = time.monotonic() - killed_at
        return Injected(f"{what}, a new master named after {took:.1f} s", nothing_to_heal)

    def count(acked_ids: list[int]) -> dict[int, int]:
        address = master_address(layout)
        assert address is not None, "no Redis master after the drill"
        with redis.Redis(host=address[0], port=address[1], socket_timeout=TIMEOUT) as client:
            entries = Counter(int(e) for e in client.lrange(KEY, 0, -1))
            client.delete(KEY)
        return {n: entries[n] for n in acked_ids if entries[n]}

    writes = RedisWrites(layout)
    try:
        result = drive(writes, inject, lambda: f"the master {master_address(layout)}", count)
    finally:
        writes.close()
    return dataclasses.replace(result, bound=TIMEOUT, allowed_loss=ALLOWED_LOSS)
