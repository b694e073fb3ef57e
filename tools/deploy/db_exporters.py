"""How Debian's database exporters are started against one server each, credentials kept out
of URLs, command lines and logs (a password goes in a mode-0600 file under the caller's
secrets folder, or the environment). `make run` watches the development servers
(`dev_servers`), tools/ha/data_tier_watch.py every member of the HA tier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from lib import registry
from tools.deploy.generated import ROOT
from tools.local.databases import REDIS_DEFAULT

Job = Literal["postgres", "mysqld", "redis"]
QUERIES = ROOT / "observability" / "postgres_exporter" / "queries.yml"
BINARIES: dict[Job, str] = {
    "postgres": "prometheus-postgres-exporter",
    "mysqld": "prometheus-mysqld-exporter",
    "redis": "prometheus-redis-exporter",
}
# the series only a primary with standbys, or a replica, exports: a single development
# server has none (tests/reliability/test_data_tier_watch.py sees them on the HA tier)
REPLICA_ONLY = frozenset(
    {
        "pg_standby_replay_lag_bytes",
        "pg_standby_replay_lag_seconds",
        "mysql_slave_status_seconds_behind_master",
        "mysql_slave_status_slave_io_running",
        "mysql_slave_status_slave_sql_running",
    }
)
DEFAULT_URLS: dict[Job, str] = {
    "postgres": registry.SERVERS["postgresql"],
    "mysqld": registry.SERVERS["mysql"],
    "redis": REDIS_DEFAULT,
}


@dataclass(frozen=True, slots=True)
class Server:
    """One database server an exporter watches."""

    job: Job
    host: str
    port: int
    user: str = ""
    password: str = ""

    @property
    def name(self) -> str:
        return f"{self.job}-{self.port}"

    @classmethod
    def from_url(cls, job: Job, url: str) -> Server:
        parts = urlsplit(url)
        default = urlsplit(DEFAULT_URLS[job])
        return cls(
            job,
            parts.hostname or "127.0.0.1",
            parts.port or int(default.port or 0),
            unquote(parts.username or default.username or ""),
            unquote(parts.password or ""),
        )


def _secret_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT
    return path


def command(
    server: Server, binary: str, listen: str, secrets: Path
) -> tuple[list[str], dict[str, str]]:
    """The exporter's command line and the environment it adds: nothing secret in the first."""
    if server.job == "postgres":
        env = {
            "DATA_SOURCE_URI": f"{server.host}:{server.port}/postgres?sslmode=disable",
            "DATA_SOURCE_USER": server.user,
        }
        if server.password:
            env["DATA_SOURCE_PASS_FILE"] = str(
                _secret_file(secrets / f"{server.name}.pass", server.password)
            )
        args = [f"--web.listen-address={listen}", f"--extend.query-path={QUERIES}"]
        return [binary, *args], env
    if server.job == "mysqld":
        listen_arg = f"--web.listen-address={listen}"
        if not server.password:  # 0.14 refuses a my.cnf without one: nothing secret here
            return [binary, listen_arg], {
                "DATA_SOURCE_NAME": f"{server.user}@tcp({server.host}:{server.port})/"
            }
        lines = ["[client]", f"host={server.host}", f"port={server.port}", f"user={server.user}"]
        cnf = _secret_file(
            secrets / f"{server.name}.cnf",
            "\n".join([*lines, f"password={server.password}"]) + "\n",
        )
        return [binary, listen_arg, f"--config.my-cnf={cnf}"], {}
    args = [f"-web.listen-address={listen}", f"-redis.addr=redis://{server.host}:{server.port}"]
    return [binary, *args], ({"REDIS_PASSWORD": server.password} if server.password else {})


def dev_servers(environ: dict[str, str] | None = None) -> list[Server]:
    """`make run`'s servers: the first PostgreSQL and MariaDB a database of the registry is
    configured on (`<DB>_DATABASE_URL`, else the registry's default), and `REDIS_URL`."""
    env = os.environ if environ is None else environ
    first: dict[Job, str] = {}
    for service in registry.MICROSERVICES:
        job: Job = "postgres" if service.engine == "postgresql" else "mysqld"
        url = env.get(f"{service.database.upper()}_DATABASE_URL")
        first.setdefault(job, url or service.default_database_url)
    first["redis"] = env.get("REDIS_URL") or DEFAULT_URLS["redis"]
    return [
        Server.from_url(job, first[job]) for job in ("postgres", "mysqld", "redis") if job in first
    ]
