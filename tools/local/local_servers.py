"""The embedded default: servers of the project's own where nothing listens.

    python3 -m tools.local.local_servers up|down [--tests] [--var var]

`make run` and `make test` call `up` first: for every address the configuration names, a
server that answers is used as it is; where nothing listens on a loopback address, a
PostgreSQL, MariaDB or Redis of our own is started there, its data under
`var/servers/<kind>-<port>/` (tools/local/server_homes.py), and `down` stops exactly the
ones `up` started. Standard library only: it runs before .venv exists."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from tools import packages
from tools.local import server_homes
from tools.local.processes import alive, stop_pid
from tools.local.server_homes import StartError as StartError
from tools.local.server_homes import hand_to as hand_to
from tools.packages import sbin
from tools.time_scale import scaled

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
# a 2-core machine at load 3, times FIXUP_TIME_SCALE (a server of ours starts in seconds)
START_TIMEOUT = scaled(60.0)
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


def as_user(user: str, command: list[str]) -> list[str]:
    """PostgreSQL and MariaDB refuse to run as root: root runs them as their own user."""
    return ["runuser", "-u", user, "--", *command] if os.geteuid() == 0 else command


def run(command: list[str], *, timeout: float = START_TIMEOUT, stdin: bytes | None = None) -> str:
    """`command`'s output; a StartError naming it, its exit status and its error past one."""
    done = subprocess.run(command, capture_output=True, input=stdin, timeout=timeout, check=False)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode(errors="replace").strip()
        raise StartError(f"{' '.join(command)} failed ({done.returncode}): {output[-2000:]}")
    return done.stdout.decode(errors="replace")


def _own(directory: Path, owner: str) -> None:
    hand_to(owner, directory)
    directory.chmod(0o700)


def spawn(
    command: Sequence[str],
    log: Path,
    *,
    as_postgres: bool = False,
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> int:
    """`command` leading a session of its own (`stop_pid(pid, group=True)` ends it), its
    output to `log`; `as_postgres`: as that user when we are root, from `log`'s directory
    (it cannot always enter the caller's); `prefix`: what runs it (a reaper, a member's
    host); `env`: added to ours. -> its pid, its group's id."""
    user = ("runuser", "-u", "postgres", "--") if as_postgres and os.geteuid() == 0 else ()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*prefix, *user, *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C of make run reaches it through `down`, in order
            cwd=log.parent if as_postgres else None,
            env={**os.environ, **env} if env else None,
        )
    return proc.pid


def _serve(address: Address, command: list[str], log: Path) -> int:
    """`command` spawned, once it listens at `address`; a StartError naming its log when it
    exits first or does not listen within START_TIMEOUT."""
    pid = spawn(command, log)

    def opened() -> bool:
        if not alive(pid):
            raise StartError(f"{address} exited at start; its log: {log}")
        return listening(address.host, address.port, timeout=0.5)

    wait_until(opened, f"{address} open (its log: {log})", START_TIMEOUT)
    return pid


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin/."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise StartError("no PostgreSQL server binaries; as root: apt-get install -y postgresql")
    return found[-1].parent


def _pg_ctl(*args: str) -> list[str]:
    return as_user("postgres", [str(postgres_bin() / "pg_ctl"), *args])


def pg_settings(data: Path, settings: dict[str, str]) -> None:
    """`settings` appended to the cluster's postgresql.auto.conf (read last: it wins)."""
    with (data / "postgresql.auto.conf").open("a") as out:
        out.write("".join(f"{key} = '{value}'\n" for key, value in settings.items()))


def start_postgresql(
    address: Address, home: Path, settings: dict[str, str] | None = None
) -> int | None:
    """pg_ctl start on `home`/data, trusting local connections as the README's do; the
    first time initdb, then `settings` in its postgresql.auto.conf."""
    _own(home, "postgres")
    data, log = home / "data", home / "server.log"
    if not (data / "PG_VERSION").exists():
        initdb = [str(postgres_bin() / "initdb"), "-D", str(data), "-U", "postgres"]
        run(as_user("postgres", [*initdb, "--auth=trust", "-E", "UTF8"]))
        pg_settings(data, settings or {})
    options = (
        f"-p {address.port} -c listen_addresses={address.host} -c unix_socket_directories={home}"
    )
    start = ["-D", str(data), "-l", str(log), "-o", options, "-w", "-t", str(int(START_TIMEOUT))]
    run(_pg_ctl(*start, "start"))
    return None


def stop_postgresql(home: Path, mode: str = "fast") -> None:
    if (home / "data" / "postmaster.pid").exists():
        run(_pg_ctl("-D", str(home / "data"), "-m", mode, "-w", "stop"))


def start_mysql(
    address: Address, home: Path, options: tuple[str, ...] = (), defaults: Path | None = None
) -> int | None:
    """mariadb-install-db (first time), then mariadbd on `home`/data with no option file of
    the machine's: root without a password, as the development server of the README;
    `options` add to its command line (the archived server's binary log,
    tools/local/db_servers.py), `defaults` is its one option file (the HA tier's
    replication.cnf, tools/ha/ha_mariadb.py)."""
    install = require("mariadb-install-db", "mariadb-server")
    server = require("mariadbd", "mariadb-server")
    home = home.resolve()  # mariadb-install-db resolves a relative datadir against /usr
    _own(home, "mysql")
    data = home / "data"
    # its temporary tables in its own home: a server starting deletes every #sql file in its
    # tmpdir, and the machine's /tmp holds the tables another server is reading from
    tmp = home / "tmp"
    _own(tmp, "mysql")  # made if missing
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    if not (data / "mysql").exists():
        run(
            [
                *(install, "--no-defaults", f"--datadir={data}", f"--tmpdir={tmp}", *user),
                *("--auth-root-authentication-method=normal", "--skip-test-db"),
            ]
        )
    only = f"--defaults-file={defaults}" if defaults else "--no-defaults"  # first of all
    command = [
        *(server, only, f"--datadir={data}", f"--tmpdir={tmp}", f"--port={address.port}"),
        *(f"--bind-address={address.host}", f"--socket={home / 'mysqld.sock'}"),
        *(f"--pid-file={home / 'mysqld.pid'}", *user, *options),
    ]
    return _serve(address, command, home / "server.log")  # its error log: its stderr


def start_redis(address: Address, home: Path) -> int | None:
    """redis-server without persistence: Redis holds nothing that must survive (ADR 0010)."""
    server = require("redis-server")
    home.mkdir(parents=True, exist_ok=True)
    command = [
        *(server, "--port", str(address.port), "--bind", address.host, "--save", ""),
        *("--appendonly", "no", "--dir", str(home)),
    ]
    return _serve(address, command, home / "server.log")  # its log: its stdout


def require(name: str, package: str = "") -> str:
    """`sbin(name)`, or a StartError naming the package that brings it (`name` itself)."""
    found = sbin(name)
    if found is None:
        raise StartError(f"no {name}; as root: apt-get install -y {package or name}")
    return found


STARTERS: dict[Kind, Callable[[Address, Path], int | None]] = {
    "postgresql": start_postgresql,
    "mysql": start_mysql,
    "redis": start_redis,
}


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
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--var", type=Path, default=Path("var"))
    parser.add_argument("--tests", action="store_true", help="the test run's addresses")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            lines = up(args.var, configured(tests=args.tests))
        else:
            lines = down(args.var)
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
