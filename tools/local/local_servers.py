"""The embedded default: servers of the project's own where nothing listens.

    python3 -m tools.local.local_servers up|down|status [--var var]

`make run` and `make test` call `up` first: for every address the configuration names, a
server that answers is used as it is; where nothing listens on a loopback address, a
PostgreSQL, MariaDB or Redis of our own is started there, its data under
`var/servers/<kind>-<port>/` (tools/local/server_homes.py), and `down` stops exactly the
ones `up` started. PostgreSQL and MariaDB start as tools/local/db_servers.py starts them."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from tools import packages
from tools.local import server_homes
from tools.local.db_servers import (
    START_TIMEOUT,
    MariaInstance,
    PgCluster,
    sbin,
    stop_pid,
)
from tools.local.server_homes import StartError as StartError

Kind = Literal["postgresql", "mysql", "redis"]
NAMES: dict[Kind, str] = {"postgresql": "PostgreSQL", "mysql": "MariaDB", "redis": "Redis"}
PACKAGES: dict[Kind, str] = {
    "postgresql": "postgresql",
    "mysql": "mariadb-server",
    "redis": "redis-server",
}
DEFAULT_PORTS: dict[Kind, int] = {"postgresql": 5432, "mysql": 3306, "redis": 6379}
# the user a server runs as when we are root (Redis runs as us)
OWNERS: dict[Kind, str | None] = {"postgresql": "postgres", "mysql": "mysql", "redis": None}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STARTED = "started.json"


@dataclass(frozen=True, slots=True)
class Address:
    kind: Kind
    host: str
    port: int

    def __str__(self) -> str:
        return f"{NAMES[self.kind]} at {self.host}:{self.port}"


def configured(*, tests: bool = False) -> list[Address]:
    """Every server address the configuration names, once each, in a stable order: the
    services' (`<DB>_DATABASE_URL`, `REDIS_URL`), or with `tests` the test run's
    (`TEST_PG_DSN`, `TEST_MYSQL_DSN`, `TEST_REDIS_URL`, tests/servers.py)."""
    from lib import registry

    env = os.environ
    redis_url = "redis://127.0.0.1:6379/0"
    urls: list[tuple[Kind, str]] = []
    if tests:
        urls.append(("postgresql", env.get("TEST_PG_DSN") or registry.SERVERS["postgresql"]))
        urls.append(("mysql", env.get("TEST_MYSQL_DSN") or registry.SERVERS["mysql"]))
        urls.append(("redis", env.get("TEST_REDIS_URL") or redis_url))
    else:
        for service in registry.MICROSERVICES:
            url = env.get(f"{service.database.upper()}_DATABASE_URL")
            urls.append((service.engine, url or service.default_database_url))
        urls.append(("redis", env.get("REDIS_URL") or redis_url))
    found: list[Address] = []
    for kind, url in urls:
        parts = urlsplit(url)
        address = Address(kind, parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[kind])
        if address not in found:
            found.append(address)
    return found


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll `predicate` until it holds; a StartError naming `what` past `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise StartError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.2)


def _wait(address: Address, proc: subprocess.Popen[bytes], log: Path) -> None:
    def opened() -> bool:
        if proc.poll() is not None:
            raise StartError(f"{address} exited at start; its log: {log}")
        return listening(address.host, address.port, timeout=0.5)

    wait_until(opened, f"{address} open (its log: {log})", START_TIMEOUT)


def start_postgresql(address: Address, home: Path) -> int | None:
    """initdb (first time) and pg_ctl start, trusting local connections as the README's do."""
    cluster = PgCluster(home / "data", address.port, address.host)
    if not (cluster.data / "PG_VERSION").exists():
        cluster.init({})
    cluster.start()
    return None


def stop_postgresql(home: Path) -> None:
    PgCluster(home / "data", 0).stop()


def start_mysql(address: Address, home: Path) -> int | None:
    """mariadb-install-db (first time), then mariadbd: root without a password, no binary
    log, the sessions' time zone left to the clients (lib/db/connecting.py sets UTC), as
    the development server of the README."""
    server = MariaInstance(home.resolve() / "data", address.port, host=address.host)
    server.install()
    return server.start("--skip-log-bin")


def start_redis(address: Address, home: Path) -> int | None:
    """redis-server without persistence: Redis holds nothing that must survive (ADR 0010)."""
    server = sbin("redis-server")
    if server is None:
        raise StartError(
            f"no Redis server binaries; as root: apt-get install -y {PACKAGES['redis']}"
        )
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    proc = subprocess.Popen(
        [
            *(server, "--port", str(address.port), "--bind", address.host, "--save", ""),
            *("--appendonly", "no", "--dir", str(home), "--logfile", str(log)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(address, proc, log)
    return proc.pid


STARTERS = {"postgresql": start_postgresql, "mysql": start_mysql, "redis": start_redis}


@contextmanager
def _locked(var: Path) -> Iterator[None]:
    """Two `make run`s at once must not both start a server on one port."""
    root = var / "servers"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True, slots=True)
class Started:
    """A server `up` started (var/servers/started.json): what `down` stops."""

    kind: Kind
    port: int
    home: str
    pid: int | None  # None: PostgreSQL, stopped through pg_ctl and its data directory


def _ledger(var: Path) -> list[Started]:
    path = var / "servers" / STARTED
    return [Started(**entry) for entry in json.loads(path.read_text())] if path.exists() else []


def _write_ledger(var: Path, entries: list[Started]) -> None:
    (var / "servers" / STARTED).write_text(json.dumps([asdict(e) for e in entries], indent=1))


def _home(var: Path, address: Address) -> Path:
    """var/servers/<kind>-<port>/, or in the checkout's server root when the server's own
    user cannot pass var/ (a checkout under a 0700 home; tools/local/server_homes.py): kept from
    one run to the next either way."""
    home = var / "servers" / f"{address.kind}-{address.port}"
    owner = OWNERS[address.kind]
    if owner is None or server_homes.passable(owner, home):
        return home
    return server_homes.server_root(var) / home.name


def up(var: Path, addresses: list[Address]) -> list[str]:
    """Start a server of ours where nothing listens; -> one line per address."""
    lines = []
    with _locked(var):
        ledger = _ledger(var)
        for address in addresses:
            if listening(address.host, address.port):
                lines.append(f"{address}: answering, used as it is")
                continue
            if address.host not in LOOPBACK:
                raise StartError(f"{address} does not answer, and it is not on this machine")
            missing = packages.ensure((packages.Package(PACKAGES[address.kind], address.kind),))
            if missing:
                raise StartError(f"nothing listens at {address}; {packages.hint(missing)}")
            home = _home(var, address)
            try:
                pid = STARTERS[address.kind](address, home)
            except OSError as exc:  # a data directory that cannot be made, a binary gone
                raise StartError(f"{address} could not start: {exc}") from None
            ledger.append(Started(address.kind, address.port, str(home), pid))
            _write_ledger(var, ledger)
            lines.append(f"{address}: nothing listened, started ours (data: {home})")
    return lines


def down(var: Path) -> list[str]:
    """Stop every server `up` started, newest first."""
    lines = []
    with _locked(var):
        ledger = _ledger(var)
        while ledger:
            entry = ledger.pop()
            if entry.pid is None:
                stop_postgresql(Path(entry.home))
            else:
                stop_pid(entry.pid)
            _write_ledger(var, ledger)
            lines.append(f"{NAMES[entry.kind]} at port {entry.port}: stopped")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tools.local.local_servers", description=__doc__
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--var", type=Path, default=Path("var"))
    parser.add_argument("--tests", action="store_true", help="the test run's addresses")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            lines = up(args.var, configured(tests=args.tests))
        elif args.command == "down":
            lines = down(args.var)
        else:
            lines = [
                f"{a}: {'answering' if listening(a.host, a.port) else 'nothing listens'}"
                for a in configured(tests=args.tests)
            ]
    except StartError as exc:
        print(f"local servers: {exc}", file=sys.stderr)
        if args.command == "up":  # leave nothing running: stop what this `up` started
            for line in down(args.var):
                print(f"local servers: {line}", file=sys.stderr)
        return 1
    for line in lines:
        print(f"local servers: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
