"""A Redis a fault test may stop, on a free port: never the machine's own server (a
PostgreSQL cluster of a test's own: tools/local/db_servers.py's PgCluster)."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from tools.local.ports import free_port
from tools.time_scale import scaled

# starting or stopping it takes well under this (30 s: a 2-core machine at load 3), times
# FIXUP_TIME_SCALE (tools/time_scale.py)
START_MARGIN = scaled(30.0)


class RedisServer:
    """redis-server without persistence on a free port; stop() and start() keep the port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("no redis-server: apt-get install -y redis-server")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_MARGIN
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise AssertionError(
                            f"redis-server did not answer on {self.port}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(START_MARGIN)
