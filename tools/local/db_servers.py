"""A PostgreSQL cluster and a MariaDB instance of the run's own, as plain processes on
loopback ports, for what the machine's shared servers must not be reconfigured for: WAL
archived by pgBackRest, a binary log kept for point-in-time recovery, and the restored
copies of `make restore`. Each is started (and made, the first time) by
tools/local/local_servers.py's own starters, its files in the directory above its data:
as root its tools run as the `postgres` and `mysql` users, which own them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql

from tools.local.dbadmin import mysql_connect
from tools.local.local_servers import (
    Address,
    hand_to,
    start_mysql,
    start_postgresql,
    stop_postgresql,
)
from tools.local.processes import stop_pid


@dataclass(frozen=True, slots=True)
class PgCluster:
    """A cluster in `data`; its socket and log beside it (`data.parent`)."""

    data: Path
    port: int

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists() and self.answers()

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def start(self, settings: dict[str, str] | None = None) -> None:
        """pg_ctl start; a new cluster first (initdb, then `settings`) when there is none."""
        start_postgresql(Address("postgresql", "127.0.0.1", self.port), self.data.parent, settings)

    def stop(self, mode: str = "fast") -> None:
        stop_postgresql(self.data.parent, mode)


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

    def connect(self, database: str | None = None) -> pymysql.connections.Connection[Any]:
        return mysql_connect(self.dsn(), database=database)

    def answers(self) -> bool:
        try:
            self.connect().close()
            return True
        except pymysql.err.OperationalError:
            return False

    def running(self) -> bool:
        return (self.home / "mysqld.pid").exists() and self.answers()

    def start(self) -> None:
        """mariadbd (installed first when there is none), its binary log on when it has one."""
        if self.binlog is not None:
            hand_to("mysql", self.binlog)
        log = self.binlog and [f"--log-bin={self.binlog / 'binlog'}", "--binlog-format=ROW"]
        options = (
            *("--skip-name-resolve", "--server-id=1", "--innodb-buffer-pool-size=64M"),
            "--default-time-zone=+00:00",  # binary log targets and DATETIMEs in UTC
            *(log or ["--skip-log-bin"]),
        )
        start_mysql(Address("mysql", "127.0.0.1", self.port), self.home, options)

    def stop(self) -> None:
        pid_file = self.home / "mysqld.pid"
        if pid_file.exists():
            stop_pid(int(pid_file.read_text().strip()))
