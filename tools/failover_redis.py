"""The failover drill's Redis fault: a writer appending numbered entries through Sentinel
while the master is SIGKILLed; the Sentinels promote the replica, and the writer's
acknowledged entries are then looked for on the new master.

Redis replicates asynchronously: an entry the master acknowledged in the instant before
it died, not yet sent to the replica, is lost with it. The drill counts such entries
(at most `ALLOWED_LOSS`, the one write in flight; ADR 0033 says why that is acceptable
for what Redis holds here). Each attempt carries a
number of its own and the client does not retry, so an entry is never written twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from tools import ha_tier
from tools.failover_drill import FaultResult, Writer, latency
from tools.ha_postgres import wait_until
from tools.ha_redis import SERVICE, RedisLayout, master_address, sentinels_ready
from tools.local_servers import StartError

KEY = "drill:writes"
TIMEOUT = 1.0  # a command's and a connection's bound: past it, a failure, never a hang
RECOVERY_LIMIT = 30.0  # down-after 1 s, an election, a promotion: a few seconds here
WARM_WRITES = 30
# replication is asynchronous: a write the master acknowledged as it died may not have
# reached the replica; one writer has at most one such write in flight
ALLOWED_LOSS = 1
PACE = 0.002  # at most ~500 writes a second: a busy service's rate, not the CPU's


@dataclass
class RedisWriter(Writer):
    """`dsn` is the Sentinels' `host:port,...` (REDIS_SENTINELS)."""

    def run(self) -> None:
        hosts = [(h, int(p)) for h, _, p in (e.rpartition(":") for e in self.dsn.split(","))]
        bounds = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
        sentinel = Sentinel(hosts, sentinel_kwargs=bounds)  # type: ignore[no-untyped-call]
        pool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
            SERVICE, sentinel, is_master=True, **bounds
        )
        client = redis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        n = 0
        while not self.stop.is_set():
            n += 1
            began = time.monotonic()
            try:
                client.rpush(KEY, n)
                self.acked.append((n, began, time.monotonic()))
                self.stop.wait(PACE)  # a steady rate, not a synchronisation
            except (redis.RedisError, OSError) as exc:
                self.failures[type(exc).__name__] += 1
                self.failed_at.append(began)
                self.longest_failure = max(self.longest_failure, time.monotonic() - began)
                self.stop.wait(0.05)  # a retry's pause, not a synchronisation
        client.close()
        pool.disconnect()
        for each in sentinel.sentinels:
            each.close()


def kill_master(layout: RedisLayout, groups: list[int]) -> tuple[int, str]:
    """SIGKILL the server the Sentinels name master (and reap it when it is ours)."""
    address = master_address(layout)
    assert address is not None, "no Redis master to kill"
    k = layout.servers.index(address[1])
    os.killpg(groups[k], signal.SIGKILL)  # groups: the two servers, then the Sentinels
    with contextlib.suppress(ChildProcessError):
        os.waitpid(groups[k], 0)
    return address[1], f"Redis master on {address[1]} SIGKILLed"


def drill_redis(var: Path) -> FaultResult:
    layout, groups = ha_tier.read_redis(var)
    wait_until(lambda: sentinels_ready(layout), "3 Sentinels ready", RECOVERY_LIMIT)
    writer = RedisWriter(layout.sentinels_setting)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(writer.acked) >= WARM_WRITES, "warm-up writes", RECOVERY_LIMIT)
        killed_at = time.monotonic()
        old, what = kill_master(layout, groups)
        wait_until(
            lambda: (master_address(layout) or ("", old))[1] != old, "a promotion", RECOVERY_LIMIT
        )
        promoted_at = time.monotonic()
        wait_until(lambda: writer.recovered_since(killed_at), f"a write after {what}", 5.0)
        outage = writer.first_failure_after(killed_at)
        first = min((s for _, s, _ in writer.acked if s > (outage or killed_at)), default=None)
        recovered_at = time.monotonic()
        wait_until(
            lambda: writer.acked_after(recovered_at) >= WARM_WRITES,
            f"writes flowing again after {what}",
            RECOVERY_LIMIT,
        )
    except StartError as exc:
        raise StartError(f"{exc}; failed writes {dict(writer.failures)}") from None
    finally:
        writer.stop.set()
        thread.join(3 * TIMEOUT + 5)
    address = master_address(layout)
    assert address is not None, "no Redis master after the drill"
    client = redis.Redis(host=address[0], port=address[1], socket_timeout=TIMEOUT)
    try:
        entries = [int(e) for e in client.lrange(KEY, 0, -1)]
        client.delete(KEY)
    finally:
        client.close()
    acked_ids = [n for n, _, _ in writer.acked]
    counts = Counter(entries)
    return FaultResult(
        fault=what,
        recovery_seconds=(first or killed_at) - killed_at,
        failures=dict(writer.failures),
        latency=(
            latency([w for w in writer.acked if w[2] < killed_at]),
            latency([w for w in writer.acked if killed_at <= w[1] < recovered_at]),
            latency([w for w in writer.acked if w[1] >= recovered_at]),
        ),
        lost=[n for n in acked_ids if n not in counts],
        duplicated=[n for n, c in counts.items() if c > 1],
        longest_failure=writer.longest_failure,
        promotion_seconds=promoted_at - killed_at,
        bound=TIMEOUT,
        allowed_loss=ALLOWED_LOSS,
    )
