"""A PgBouncer of the project's own, in transaction mode, in front of one PostgreSQL.

    python -m tools.local.pgbouncer up [--listen 127.0.0.1:6432] [--server 127.0.0.1:5432]
    python -m tools.local.pgbouncer down|status [--listen ...]
    python -m tools.local.pgbouncer run [--listen ...] [--server ...] -- COMMAND...

What listens at `PGBOUNCER_ADDR` for `POOLER=pgbouncer` (ADR 0037): Debian's `pgbouncer`,
its files in `pgbouncer-<port>/` of the checkout's server root (tools/local/server_homes.py),
every database forwarded to the same name on `--server`, auth_type trust. `run` starts one
sized for a test run (TEST_* below), runs COMMAND with `PGBOUNCER_ADDR` and
`TEST_PGBOUNCER_ADDR` set, and stops it: what `make test-pgbouncer` uses. Standard library
only, like tools/local/local_servers.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import string
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lib.config import host_port
from tools.local import server_homes
from tools.local.local_servers import (
    START_TIMEOUT,
    StartError,
    as_user,
    listening,
    require,
    run,
    wait_until,
)
from tools.local.ports import free_port
from tools.local.processes import alive, stop_pid

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "pgbouncer" / "pgbouncer.ini"
DEFAULT_LISTEN = "127.0.0.1:6432"
DEFAULT_SERVER = "127.0.0.1:5432"
# server connections per database and user: what PostgreSQL sees, whatever the clients
DEFAULT_POOL_SIZE = 10
# client connections PgBouncer accepts (every replica's pool together)
MAX_CLIENT_CONN = 2000
# seconds an idle server connection is kept (PgBouncer's default: 600)
IDLE_TIMEOUT = 60
# a test run (a database per module): idle server connections closed soon, all of them
# within TEST_MAX_SERVER_CONN, so runs beside it on one server keep room under max_connections
TEST_POOL_SIZE = 5
TEST_IDLE_TIMEOUT = 3
TEST_MAX_SERVER_CONN = 40
USER = "postgres"  # PgBouncer refuses to run as root: it runs as postgres, the ini's admin


def version() -> tuple[int, int]:
    """The installed PgBouncer's (major, minor): 1.21 added protocol-level prepared statements."""
    out = subprocess.run(
        [require("pgbouncer"), "--version"], capture_output=True, text=True, check=True
    )
    major, minor, *_ = out.stdout.split()[1].split(".")
    return int(major), int(minor)


@dataclass(frozen=True, slots=True)
class Bouncer:
    listen: str
    server: str
    home: Path
    pool_size: int = DEFAULT_POOL_SIZE
    idle_timeout: int = IDLE_TIMEOUT
    max_server_conn: int = 0  # every database together (max_user_connections); 0: no cap

    @property
    def ini(self) -> Path:
        return self.home / "pgbouncer.ini"

    @property
    def pidfile(self) -> Path:
        return self.home / "pgbouncer.pid"  # the ini's

    @property
    def log(self) -> Path:
        return self.home / "pgbouncer.log"  # the ini's

    def config(self) -> str:
        """deploy/pgbouncer/pgbouncer.ini for this one."""
        (host, port), (server_host, server_port) = map(host_port, (self.listen, self.server))
        return string.Template(CONFIG.read_text()).substitute(
            host=host,
            port=port,
            server_host=server_host,
            server_port=server_port,
            home=self.home,
            pool_size=self.pool_size,
            max_client_conn=MAX_CLIENT_CONN,
            max_server_conn=self.max_server_conn,
            idle_timeout=self.idle_timeout,
        )

    def write(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.ini.write_text(self.config())
        (self.home / "userlist.txt").write_text(f'"{USER}" ""\n')
        server_homes.hand_to(USER, self.home, self.ini, self.home / "userlist.txt")


def server_of_tests() -> str:
    """TEST_PG_DSN's host:port (the test run's PostgreSQL), else DEFAULT_SERVER."""
    parts = urlsplit(os.environ.get("TEST_PG_DSN", ""))
    return f"{parts.hostname}:{parts.port or 5432}" if parts.hostname else DEFAULT_SERVER


def home_of(var: Path, listen: str) -> Path:
    return server_homes.server_root(var) / f"pgbouncer-{host_port(listen)[1]}"


def _pid(bouncer: Bouncer) -> int | None:
    """The running PgBouncer's pid (its pidfile's, while that process lives)."""
    try:
        pid = int(bouncer.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def start(bouncer: Bouncer) -> None:
    """Start it and wait until it answers; a taken port or a failed start is a StartError."""
    host, port = host_port(bouncer.listen)
    if listening(host, port):
        if _pid(bouncer) is not None:
            return  # ours, already up
        raise StartError(f"{bouncer.listen} is taken by something else: choose another --listen")
    bouncer.write()
    run(as_user(USER, [require("pgbouncer"), "-d", str(bouncer.ini)]))  # -d: pid in the pidfile
    opened = f"pgbouncer on {bouncer.listen} (its log: {bouncer.log})"
    wait_until(lambda: listening(host, port, timeout=0.5), opened, START_TIMEOUT)


def stop(bouncer: Bouncer) -> bool:
    """SIGTERM (immediate shutdown), SIGKILL after STOP_TIMEOUT; False when none ran."""
    pid = _pid(bouncer)
    if pid is None:
        return False
    stop_pid(pid, signal.SIGTERM)
    server_homes.remove_home(bouncer.home)
    return True


@contextmanager
def running(
    server: str,
    var: Path,
    listen: str | None = None,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    idle_timeout: int = IDLE_TIMEOUT,
    max_server_conn: int = 0,
) -> Iterator[str]:
    """A PgBouncer in front of `server` for the block; -> its host:port."""
    address = listen or f"127.0.0.1:{free_port()}"
    home = home_of(var, address)
    bouncer = Bouncer(address, server, home, pool_size, idle_timeout, max_server_conn)
    start(bouncer)
    try:
        yield address
    finally:
        stop(bouncer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local.pgbouncer", description=__doc__)
    parser.add_argument("action", choices=("up", "down", "status", "run"))
    parser.add_argument("--listen", default=None, help=f"host:port (default {DEFAULT_LISTEN})")
    parser.add_argument(
        "--server", default=server_of_tests(), help="PostgreSQL's host:port (TEST_PG_DSN's)"
    )
    parser.add_argument("--var", type=Path, default=Path("var"))
    given = sys.argv[1:] if argv is None else argv
    split = given.index("--") if "--" in given else len(given)
    args = parser.parse_args(given[:split])
    command = given[split + 1 :] or ["true"]  # run: what follows "--"
    listen = args.listen or (f"127.0.0.1:{free_port()}" if args.action == "run" else DEFAULT_LISTEN)
    testing = args.action == "run"  # a test run: a database per module (TEST_* above)
    bouncer = Bouncer(
        listen,
        args.server,
        home_of(args.var, listen),
        pool_size=TEST_POOL_SIZE if testing else DEFAULT_POOL_SIZE,
        idle_timeout=TEST_IDLE_TIMEOUT if testing else IDLE_TIMEOUT,
        max_server_conn=TEST_MAX_SERVER_CONN if testing else 0,
    )
    try:
        if args.action == "up":
            start(bouncer)
            print(f"pgbouncer: {listen} -> {args.server} (transaction mode; {bouncer.log})")
        elif args.action == "down":
            print(f"pgbouncer: {'stopped' if stop(bouncer) else 'none running at'} {listen}")
        elif args.action == "status":
            up = _pid(bouncer) is not None
            print(f"pgbouncer: {listen} {'up' if up else 'down'}")
            return 0 if up else 1
        else:
            start(bouncer)
            try:
                env = {**os.environ, "PGBOUNCER_ADDR": listen, "TEST_PGBOUNCER_ADDR": listen}
                print(f"pgbouncer: {listen} -> {args.server}; running {' '.join(command)}")
                return subprocess.run(command, env=env, check=False).returncode
            finally:
                stop(bouncer)
    except (StartError, ValueError) as exc:
        print(f"pgbouncer: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
