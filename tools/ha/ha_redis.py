"""Redis that survives the loss of a machine: a master, one replica and 3 Sentinels.

    python -m tools.ha.ha_tier up [--only redis]   (tools/ha/ha_tier.py drives this module)

Plain `redis-server` and `redis-sentinel` processes (Debian's packages) under `var/ha/`
on loopback ports of their own, from the checked-in deploy/redis/redis.conf and
sentinel.conf with their ports and directories filled in. The Sentinels agree (quorum 2)
that the master is down once it has not answered for `DOWN_AFTER_MS`, and promote the
replica; services connected through Sentinel (lib/redis_client.py, `REDIS_SENTINELS`)
follow it.
"""

from __future__ import annotations

import shutil
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tools.local.local_servers import StartError
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


def server_config(layout: RedisLayout, k: int, home: Path) -> str:
    """Server k's redis.conf (0: the first master, 1: its replica)."""
    template = string.Template((CONFIG / "redis.conf").read_text())
    text = template.substitute(port=layout.servers[k], dir=home)
    return text + (f"replicaof 127.0.0.1 {layout.master}\n" if k > 0 else "")


def sentinel_config(layout: RedisLayout, k: int, home: Path) -> str:
    text = string.Template((CONFIG / "sentinel.conf").read_text())
    return text.substitute(port=layout.sentinels[k], dir=home, master_port=layout.master)


def master_address(layout: RedisLayout) -> tuple[str, int] | None:
    """The master the Sentinels name now (the first that answers), if any does."""
    for port in layout.sentinels:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            answer = client.sentinel_get_master_addr_by_name(SERVICE)
        except (redis.RedisError, OSError):
            continue
        finally:
            client.close()
        if isinstance(answer, (list, tuple)) and len(answer) == 2:
            host, port_ = answer
            return (host.decode() if isinstance(host, bytes) else str(host), int(port_))
    return None


def role(port: int) -> str | None:
    """What the server on `port` says it is (master, slave), None when it does not answer."""
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        answer = client.role()
        return str(answer[0].decode() if isinstance(answer[0], bytes) else answer[0])
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def replica_in_sync(port: int) -> bool:
    """The replica on `port` holds its master's data: its link is up, its first full
    synchronisation done (before, it holds nothing a promotion could keep)."""
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        info = client.info("replication")
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


def sentinels_ready(layout: RedisLayout) -> bool:
    """Every Sentinel knows the master, its replica and the other Sentinels, and the
    replica is in sync: a failover can be agreed on and keeps the data."""
    for port in layout.sentinels:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            master = client.sentinel_master(SERVICE)
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        if not isinstance(master, dict):
            return False
        if int(master.get("num-slaves", 0)) < 1 or int(master.get("num-other-sentinels", 0)) < 2:
            return False
    address = master_address(layout)
    return address is not None and all(
        replica_in_sync(port) for port in layout.servers if port != address[1]
    )


def spawn(command: list[str], log: Path) -> int:
    """A process leading its own group (ha_tier.stop_group ends it), output to `log`."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc.pid


def _wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not callable(predicate) or not predicate():
        if time.monotonic() > deadline:
            raise StartError(f"{what} not within {START_TIMEOUT:.0f} s")
        time.sleep(0.1)


def start_redis(layout: RedisLayout, root: Path, started: list[int]) -> list[int]:
    """The master, its replica, then the Sentinels; -> the process groups, appended to
    `started` as each starts (a failure half-way still knows what to stop)."""
    for tool in ("redis-server", "redis-sentinel"):
        if shutil.which(tool) is None:
            raise StartError(f"no {tool}; as root: apt-get install -y redis-server redis-sentinel")
    for k in range(2):
        home = root / f"redis{k}"
        home.mkdir(parents=True, exist_ok=True)
        (home / "redis.conf").write_text(server_config(layout, k, home))
        started.append(spawn(["redis-server", str(home / "redis.conf")], home / "stdout.log"))
    _wait(lambda: role(layout.master) == "master", f"Redis master on {layout.master}")
    _wait(lambda: replica_in_sync(layout.replica), f"Redis replica on {layout.replica} in sync")
    for k in range(SENTINELS):
        home = root / f"sentinel{k}"
        home.mkdir(parents=True, exist_ok=True)
        (home / "sentinel.conf").write_text(sentinel_config(layout, k, home))
        started.append(spawn(["redis-sentinel", str(home / "sentinel.conf")], home / "stdout.log"))
    _wait(lambda: sentinels_ready(layout), "3 Sentinels that know the master and its replica")
    return started
