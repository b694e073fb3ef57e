"""Redis that survives the loss of a machine: a master, one replica and 3 Sentinels
(tools/ha/ha_tier.py drives this module).

Plain `redis-server` and `redis-sentinel` processes under `var/ha/` on loopback ports of
their own, from the checked-in deploy/redis/redis.conf and sentinel.conf with their ports
and directories filled in; services connected through Sentinel (`REDIS_SENTINELS`) follow
the replica the Sentinels promote.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import redis

from tools.local.local_servers import require, spawn, wait_until
from tools.time_scale import scaled

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "redis"
SERVICE = "fixup"  # the master's name the Sentinels monitor (REDIS_SENTINEL_SERVICE)
SENTINELS = 3


def _sentinel_setting(name: str) -> int:
    """One of sentinel.conf's clocks for SERVICE, in milliseconds."""
    for line in (CONFIG / "sentinel.conf").read_text().splitlines():
        if line.startswith(f"sentinel {name} {SERVICE} "):
            return int(line.split()[-1])
    raise LookupError(f"deploy/redis/sentinel.conf sets no {name}")


DOWN_AFTER_MS = _sentinel_setting("down-after-milliseconds")
FAILOVER_TIMEOUT_MS = _sentinel_setting("failover-timeout")
START_TIMEOUT = scaled(30.0)  # 30 s at load 3, times FIXUP_TIME_SCALE
PORTS_NEEDED = 2 + SENTINELS


@dataclass(frozen=True, slots=True)
class RedisLayout:
    """The ports of one HA Redis: the first master, the first replica, the Sentinels."""

    master: int
    replica: int
    sentinels: tuple[int, ...]

    @property
    def servers(self) -> tuple[int, int]:
        return (self.master, self.replica)

    @property
    def sentinels_setting(self) -> str:
        """The services' `REDIS_SENTINELS`."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)


def redis_layout_from(ports: list[int]) -> RedisLayout:
    return RedisLayout(master=ports[0], replica=ports[1], sentinels=tuple(ports[2:PORTS_NEEDED]))


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)


def master_address(layout: RedisLayout) -> tuple[str, int] | None:
    """The master the Sentinels name now (the first that answers), if any does."""
    for port in layout.sentinels:
        try:
            with _client(port) as client:
                answer = client.sentinel_get_master_addr_by_name(SERVICE)
        except (redis.RedisError, OSError):
            continue
        if isinstance(answer, (list, tuple)) and len(answer) == 2:
            host, port_ = answer
            return (host.decode() if isinstance(host, bytes) else str(host), int(port_))
    return None


def role(port: int) -> str | None:
    """What the server on `port` says it is (master, slave), None when it does not answer."""
    try:
        with _client(port) as client:
            answer = client.role()
    except (redis.RedisError, OSError):
        return None
    return str(answer[0].decode() if isinstance(answer[0], bytes) else answer[0])


def replica_in_sync(port: int) -> bool:
    """The replica on `port` has its link up and its first full synchronisation done."""
    try:
        with _client(port) as client:
            info = client.info("replication")
    except (redis.RedisError, OSError):
        return False
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


def sentinels_ready(layout: RedisLayout) -> bool:
    """Every Sentinel knows the master, its replica and the other Sentinels, and the
    replica is in sync: a failover can be agreed on and keeps the data."""
    for port in layout.sentinels:
        try:
            with _client(port) as client:
                master = client.sentinel_master(SERVICE)
        except (redis.RedisError, OSError):
            return False
        if int(master.get("num-slaves", 0)) < 1 or int(master.get("num-other-sentinels", 0)) < 2:
            return False
    address = master_address(layout)
    return address is not None and all(
        replica_in_sync(port) for port in layout.servers if port != address[1]
    )


def start_redis(layout: RedisLayout, root: Path, started: list[int]) -> None:
    """The master, its replica, then the Sentinels, each group appended to `started`."""
    redis_server = require("redis-server", "redis-server redis-sentinel")
    redis_sentinel = require("redis-sentinel", "redis-server redis-sentinel")
    for k, port in enumerate(layout.servers):  # the master, then its replica
        home = root / f"redis{k}"
        home.mkdir(parents=True, exist_ok=True)
        conf = string.Template((CONFIG / "redis.conf").read_text()).substitute(port=port, dir=home)
        replica = f"replicaof 127.0.0.1 {layout.master}\n" if k > 0 else ""
        (home / "redis.conf").write_text(conf + replica)
        started.append(spawn([redis_server, str(home / "redis.conf")], home / "stdout.log"))
    wait_until(
        lambda: role(layout.master) == "master", f"Redis master on {layout.master}", START_TIMEOUT
    )
    wait_until(
        lambda: replica_in_sync(layout.replica),
        f"Redis replica on {layout.replica} in sync",
        START_TIMEOUT,
    )
    for k, port in enumerate(layout.sentinels):
        home = root / f"sentinel{k}"
        home.mkdir(parents=True, exist_ok=True)
        template = string.Template((CONFIG / "sentinel.conf").read_text())
        sentinel = template.substitute(port=port, dir=home, master_port=layout.master)
        (home / "sentinel.conf").write_text(sentinel)
        started.append(spawn([redis_sentinel, str(home / "sentinel.conf")], home / "stdout.log"))
    ready = "3 Sentinels that know the master and its replica"
    wait_until(lambda: sentinels_ready(layout), ready, START_TIMEOUT)
