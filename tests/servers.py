"""Where the test run finds its real servers, and throwaway databases on them.

Order: TEST_PG_DSN / TEST_MYSQL_DSN / TEST_REDIS_URL, else testcontainers when a Docker
engine answers, else the local servers on 127.0.0.1. A server that does not answer
fails the run with a message saying how to get one; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis

from lib.config import ServiceSettings
from lib.db.connecting import engine_of
from tools.local.databases import with_database
from tools.local.dbadmin import create_database, drop_database, mysql_connect, psycopg_dsn
from tools.time_scale import scaled

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_MYSQL = "mysql://root@127.0.0.1:3306/mysql"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"

HOW_TO_GET = {
    "postgresql": "start PostgreSQL on 127.0.0.1:5432 (pg_ctlcluster 15 main start), "
    "or set TEST_PG_DSN=postgresql://user@host:port/postgres",
    "mysql": "start MariaDB on 127.0.0.1:3306 (start-stop-daemon --start --background "
    "--exec /usr/sbin/mariadbd), or set TEST_MYSQL_DSN=mysql://root@host:port/mysql",
    "redis": "start redis-server on 127.0.0.1:6379, or set TEST_REDIS_URL=redis://host:port/0",
}

# Unique per test run: two runs side by side never share a database or a Redis key.
RUN_ID = f"{os.getpid()}{uuid.uuid4().hex[:6]}"
_RUN_IDS = {os.getpid(): RUN_ID}


def run_id() -> str:
    """RUN_ID, or in a process forked after this module was imported one of its own:
    mutmut forks the pytest sessions of its mutants, several at once, from the process
    that imported it, and they must not share databases or keys either."""
    pid = os.getpid()
    if pid not in _RUN_IDS:
        _RUN_IDS[pid] = f"{pid}{uuid.uuid4().hex[:6]}"
    return _RUN_IDS[pid]


class ServerUnavailableError(RuntimeError):
    pass


def _docker_answers() -> bool:
    with contextlib.suppress(Exception):
        import docker  # type: ignore[import-untyped]  # no stubs; used only where Docker runs

        docker.from_env(timeout=2).ping()
        return True
    return False


def _check_pg(dsn: str) -> None:
    with psycopg.connect(psycopg_dsn(dsn), connect_timeout=5) as conn:
        conn.execute("SELECT 1")


def _check_mysql(dsn: str) -> None:
    with mysql_connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")


def _check_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    finally:
        client.close()


@dataclass
class Servers:
    pg_dsn: str
    mysql_dsn: str
    redis_url: str
    _containers: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for container in self._containers:
            with contextlib.suppress(Exception):
                container.stop()


def _from_containers() -> tuple[str | None, str | None, str | None, list[Any]]:
    """Start what TEST_* does not name in testcontainers; None where Docker is absent."""
    if not _docker_answers():
        return None, None, None, []
    from testcontainers.mysql import MySqlContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    pg = PostgresContainer("postgres:15", driver=None).start()
    my = MySqlContainer("mariadb:10.11", username="root", password="test").start()
    rd = RedisContainer("redis:7").start()
    pg_dsn = pg.get_connection_url().replace("postgresql://", "postgresql://", 1)
    my_dsn = f"mysql://root:test@{my.get_container_host_ip()}:{my.get_exposed_port(3306)}/mysql"
    rd_url = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0"
    return pg_dsn, my_dsn, rd_url, [pg, my, rd]


def resolve_servers() -> Servers:
    pg = os.environ.get("TEST_PG_DSN")
    my = os.environ.get("TEST_MYSQL_DSN")
    rd = os.environ.get("TEST_REDIS_URL")
    containers: list[Any] = []
    if not (pg and my and rd):
        c_pg, c_my, c_rd, containers = _from_containers()
        pg, my, rd = pg or c_pg, my or c_my, rd or c_rd
    servers = Servers(pg or LOCAL_PG, my or LOCAL_MYSQL, rd or LOCAL_REDIS, containers)
    problems = []
    for kind, check, where in (
        ("postgresql", _check_pg, servers.pg_dsn),
        ("mysql", _check_mysql, servers.mysql_dsn),
        ("redis", _check_redis, servers.redis_url),
    ):
        try:
            check(where)
        except Exception as exc:
            problems.append(f"{kind} at {where} does not answer ({exc}); {HOW_TO_GET[kind]}")
    if problems:
        servers.stop()
        raise ServerUnavailableError("\n".join(problems))
    return servers


class DatabaseFactory:
    """Uniquely named throwaway databases for this run; `drop_all` removes them."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers
        self.created: list[str] = []
        self._counter = 0
        self.run_id = run_id()

    def server_dsn(self, engine: str) -> str:
        return self.servers.pg_dsn if engine == "postgresql" else self.servers.mysql_dsn

    def create(self, label: str, engine: str, *, template: str = "template0") -> str:
        """A new database; on PostgreSQL a copy of `template` (a database's name)."""
        self._counter += 1
        name = f"fixup_t{self.run_id}_{label}_{self._counter}"
        dsn = with_database(self.server_dsn(engine), name)
        create_database(dsn, template=template)
        self.created.append(dsn)
        return dsn

    def drop(self, dsn: str) -> None:
        drop_database(dsn)
        if dsn in self.created:
            self.created.remove(dsn)

    def drop_all(self) -> None:
        """Drop every database of the run at once. PostgreSQL's DROP DATABASE waits for two
        immediate checkpoints of the whole cluster (seconds each when other runs keep it
        busy); drops in flight together share them, one after the other never do."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            for dsn in list(self.created):
                pool.submit(self._drop_quietly, dsn)

    def _drop_quietly(self, dsn: str) -> None:
        with contextlib.suppress(Exception):
            self.drop(dsn)


@contextlib.contextmanager
def env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def engine(dsn: str) -> str:
    return engine_of(dsn)


def pooler_settings(dsn: str) -> dict[str, str]:
    """A service's settings for PgBouncer when the run goes through one (`make
    test-pgbouncer`: tools/local/pgbouncer.py sets TEST_PGBOUNCER_ADDR): an app a test builds on
    the run's PostgreSQL then reaches it through PgBouncer in transaction mode (ADR 0037);
    {} otherwise, and for a `dsn` a test routes through a proxy of its own (what a lost
    connection does is tested on that route)."""
    address = os.environ.get("TEST_PGBOUNCER_ADDR", "")
    server, given = urlsplit(os.environ.get("TEST_PG_DSN") or LOCAL_PG), urlsplit(dsn)
    on_the_server = (given.hostname, given.port or 5432) == (server.hostname, server.port or 5432)
    if not address or not on_the_server:
        return {}
    return {"pooler": "pgbouncer", "pgbouncer_addr": address}


# what a service's database may take before it answers 503: a command, a free connection
DB_BOUNDS = ("db_command_timeout", "db_acquire_timeout")


def db_bounds() -> dict[str, float]:
    """DB_COMMAND_TIMEOUT and DB_ACQUIRE_TIMEOUT for a service under a test that is not
    about them: their defaults times FIXUP_TIME_SCALE, within each setting's own ceiling, so
    a database slowed by a busy machine answers late, not 503. A test of those bounds sets
    its own on top; the drills keep the defaults, whose recovery they measure."""
    bounds = {}
    for name in DB_BOUNDS:
        field = ServiceSettings.model_fields[name]
        ceilings = [bound.le for bound in field.metadata if hasattr(bound, "le")]
        bounds[name] = min([scaled(field.default), *ceilings])
    return bounds


def db_bounds_env() -> dict[str, str]:
    """db_bounds() as a service process's environment."""
    return {name.upper(): f"{value:g}" for name, value in db_bounds().items()}
