"""A PostgreSQL cluster and a MariaDB instance of the run's own, as plain processes on
loopback ports, for what the machine's shared servers must not be reconfigured for: WAL
archived by pgBackRest, a binary log kept for point-in-time recovery, and the restored
copies of `make restore`. PostgreSQL and MariaDB refuse to run as root: as root, their
tools run as the `postgres` and `mysql` users (runuser), which own the data directories.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pymysql

from tools.local.local_servers import (
    START_TIMEOUT,
    hand_to,
    postgres_bin,
    require,
    stop_pid,
    wait_until,
)
from tools.local.local_servers import as_user as as_user
from tools.local.local_servers import run as run


@dataclass(frozen=True, slots=True)
class PgCluster:
    """A cluster in `data`; its socket and log beside it (`data.parent`)."""

    data: Path
    port: int

    def tool(self, name: str, *args: str) -> list[str]:
        return as_user("postgres", [str(postgres_bin() / name), *args])

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self, settings: dict[str, str]) -> None:
        """initdb, then `settings` appended to postgresql.conf."""
        hand_to("postgres", self.data.parent)
        self.data.parent.chmod(0o700)
        run(
            self.tool(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        )
        self.configure(settings)

    def configure(self, settings: dict[str, str]) -> None:
        """Append to postgresql.auto.conf (read last: it wins over postgresql.conf)."""
        lines = "".join(f"{key} = '{value}'\n" for key, value in settings.items())
        auto = self.data / "postgresql.auto.conf"
        with auto.open("a") as out:
            out.write(lines)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists() and self.answers()

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.data.parent}"
        )
        log = str(self.data.parent / "postgresql.log")
        wait = str(int(START_TIMEOUT))
        run(
            self.tool(
                "pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", wait, "start"
            )
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            run(self.tool("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"))


@dataclass(frozen=True, slots=True)
class MariaInstance:
    """A mariadbd on `data`; its binary log in `binlog` (None: none, a restored copy)."""

    data: Path
    port: int
    binlog: Path | None = None

    @property
    def home(self) -> Path:
        return self.data.parent

    def dsn(self, database: str = "mysql") -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def connect(
        self, database: str | None = None
    ) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", database=database, connect_timeout=2,
            autocommit=True,
        )  # fmt: skip

    def install(self) -> None:
        hand_to("mysql", self.home)
        hand_to("mysql", self.data)
        if self.binlog is not None:
            hand_to("mysql", self.binlog)
        run([
            require("mariadb-install-db", "mariadb-server"), "--no-defaults",
            f"--datadir={self.data}", "--auth-root-authentication-method=normal", "--skip-test-db",
            *(["--user=mysql"] if os.geteuid() == 0 else []),
        ])  # fmt: skip

    def answers(self) -> bool:
        try:
            self.connect().close()
            return True
        except pymysql.err.OperationalError:
            return False

    def running(self) -> bool:
        return (self.home / "mariadbd.pid").exists() and self.answers()

    def start(self) -> None:
        log = self.binlog and [f"--log-bin={self.binlog / 'binlog'}", "--binlog-format=ROW"]
        command = [
            require("mariadbd", "mariadb-server"), "--no-defaults", f"--datadir={self.data}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.home / 'sock'}",
            f"--pid-file={self.home / 'mariadbd.pid'}", f"--log-error={self.home / 'error.log'}",
            "--skip-name-resolve", "--server-id=1", "--innodb-buffer-pool-size=64M",
            "--default-time-zone=+00:00",  # binary log targets and DATETIMEs in UTC
            *(log or ["--skip-log-bin"]), *(["--user=mysql"] if os.geteuid() == 0 else []),
        ]  # fmt: skip
        subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(
            self.answers, f"mariadbd on {self.port} ({self.home / 'error.log'})", START_TIMEOUT
        )

    def stop(self) -> None:
        pid_file = self.home / "mariadbd.pid"
        if pid_file.exists():
            stop_pid(int(pid_file.read_text().strip()))
