"""A Redis a fault test may stop, on a free port: never the machine's own server (a
PostgreSQL cluster of a test's own: tools/local/db_servers.py's PgCluster). It is started
by tools/local/local_servers.py's `start_redis`, as `make run` starts one of its own."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from contextlib import suppress
from pathlib import Path

from tools.local.local_servers import Address, start_redis
from tools.local.ports import free_port
from tools.local.processes import stop_pid


class RedisServer:
    """redis-server without persistence on a free port; stop() and start() keep the port.
    `pid` is the running server's, for a test to pause it (SIGSTOP)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.address = Address("redis", "127.0.0.1", self.port)
        self.home = Path(tempfile.mkdtemp(prefix="fixup-redis-"))
        self.pid: int | None = None

    def start(self) -> None:
        self.pid = start_redis(self.address, self.home)

    def stop(self) -> None:
        """SIGTERM (after SIGCONT: a test may have paused it), once it has exited its home
        (the log) goes."""
        if self.pid is not None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            stop_pid(self.pid)
            self.pid = None
        shutil.rmtree(self.home, ignore_errors=True)
