"""PostgreSQL through PgBouncer in transaction mode (POOLER=pgbouncer, ADR 0037): a bounded
smoke of what `make test-pgbouncer` runs in full.

A PgBouncer of this module's own (tools/local/pgbouncer.py: tools/local/server_homes.py, a free
port) in front of the run's PostgreSQL; representative integration tests of three services run
through it unchanged (departments list and writes, users' register/login/refresh races,
orders' whole story with its idempotent create and concurrent accepts); a departments app
whose pool is wider than PgBouncer's server pool answers a burst of writes and reads while
PostgreSQL sees at most that server pool; what cannot work there is refused at start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest

from lib.config import ConfigError, load_settings
from lib.pooler import pool_options, through
from services.departments.app import create_app
from services.departments.settings import DepartmentsSettings
from tests.integration.auth_support import Bearer, settings_for
from tests.servers import Servers
from tools.local import pgbouncer
from tools.local.dbadmin import psycopg_dsn
from tools.time_scale import scaled

# what `make test svc=` selects it for (tests/selection.py): the nested run's services
EXERCISES = ("departments", "users", "orders", "catalog")

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"
SERVER_POOL = 2  # PgBouncer's server connections per database in this module
# the same tests as the suite's, run through PgBouncer (a nested run: its own databases)
THROUGH_POOLER = (
    "tests/integration/test_departments_api.py::test_crud_round_trip",
    "tests/integration/test_departments_api.py::test_list_orders_and_pages",
    "tests/integration/test_departments_api.py::test_duplicate_name_is_409_and_leaves_no_row",
    "tests/integration/test_users_auth_guards.py::test_login_answers_the_pair_the_cookies_and_one_new_family",
    "tests/integration/test_users_auth.py::test_twenty_concurrent_refreshes_make_exactly_one_pair",
    "tests/integration/test_orders_api.py::test_order_lifecycle_to_review",
    "tests/integration/test_orders_api.py::test_idempotent_replays_do_not_ask_catalog",
    "tests/integration/test_orders_api.py::test_concurrent_accepts_exactly_one_wins",
)
# s: eight tests and three migrated databases at load 3, times FIXUP_TIME_SCALE
NESTED_TIMEOUT = scaled(240.0)


def server_of(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.hostname}:{parts.port or 5432}"


@pytest.fixture(scope="module")
def bouncer(servers: Servers) -> Iterator[str]:
    """host:port of a PgBouncer in transaction mode in front of the run's PostgreSQL."""
    try:
        with pgbouncer.running(
            server_of(servers.pg_dsn),
            VAR,
            pool_size=SERVER_POOL,
            idle_timeout=pgbouncer.TEST_IDLE_TIMEOUT,
            max_server_conn=pgbouncer.TEST_MAX_SERVER_CONN,
        ) as address:
            yield address
    except pgbouncer.StartError as exc:
        pytest.fail(f"PgBouncer is needed here: {exc}", pytrace=False)


def test_the_services_integration_tests_pass_through_pgbouncer(
    bouncer: str, servers: Servers
) -> None:
    nested_env = {
        **os.environ,
        "TEST_PGBOUNCER_ADDR": bouncer,
        "TEST_PG_DSN": servers.pg_dsn,
        "TEST_MYSQL_DSN": servers.mysql_dsn,
        "TEST_REDIS_URL": servers.redis_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *THROUGH_POOLER],
        cwd=ROOT,
        env=nested_env,
        capture_output=True,
        text=True,
        timeout=NESTED_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"{len(THROUGH_POOLER)} passed" in done.stdout, done.stdout[-2000:]
    # and they did go through it: PgBouncer logged each service's database
    log = pgbouncer.home_of(VAR, bouncer).joinpath("pgbouncer.log").read_text()
    for service in ("departments", "users", "orders"):
        assert f"_{service}_" in log, f"no {service} database reached PgBouncer"


async def test_a_pool_wider_than_the_server_pool_serves_a_burst(
    aiohttp_client: Any, departments_dsn: str, bouncer: str
) -> None:
    """10 pooled client connections, 2 server connections: every request of a burst of
    concurrent writes and reads succeeds (no prepared statement lost between server
    connections), and PostgreSQL never sees more than PgBouncer's server pool."""
    settings = settings_for(
        departments_dsn, pooler="pgbouncer", pgbouncer_addr=bouncer, db_pool_max=10
    )
    client = await aiohttp_client(create_app(settings))
    admin = Bearer()
    tag = uuid.uuid4().hex[:6]
    database = urlsplit(departments_dsn).path.lstrip("/")
    watcher = await asyncpg.connect(departments_dsn)  # direct: what PostgreSQL sees
    seen: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            seen.append(
                await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
            )
            await asyncio.sleep(0.01)

    async def write_then_read(i: int) -> None:
        made = await client.post(
            "/v1/departments", json={"name": f"B{tag} {i}", "address": "1 Road"}, headers=admin
        )
        assert made.status == 201, await made.text()
        got = await client.get(f"/v1/departments?limit=5&page={1 + i % 3}")
        assert got.status == 200, await got.text()

    watching = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(write_then_read(i) for i in range(40)))
    finally:
        done.set()
        await watching
        await watcher.close()
    assert max(seen) <= SERVER_POOL, seen


def test_session_state_with_the_pooler_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A service that keeps session state (DB_POOL_RESET=true) does not start through
    PgBouncer: one line names the variable and why."""
    env_file = tmp_path / ".env"
    env_file.write_text("POOLER=pgbouncer\nDB_POOL_RESET=true\n")
    with pytest.raises(ConfigError):
        load_settings(DepartmentsSettings, "departments", env_file)
    said = capsys.readouterr().err
    assert "POOLER=pgbouncer needs DB_POOL_RESET=false" in said
    assert "session advisory locks" in said
    env_file.write_text("POOLER=pgbouncer\nDB_POOL_RESET=false\nPGBOUNCER_ADDR=nowhere\n")
    with pytest.raises(ConfigError):
        load_settings(DepartmentsSettings, "departments", env_file)
    assert "PGBOUNCER_ADDR" in capsys.readouterr().err


def test_the_pooler_changes_only_where_the_pool_connects(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("POOLER=pgbouncer\nPGBOUNCER_ADDR=127.0.0.1:6543\n")
    settings = load_settings(DepartmentsSettings, "departments", env_file)
    assert settings.pooled
    pool, direct = urlsplit(settings.pool_url), urlsplit(settings.database_url)
    assert (pool.hostname, pool.port) == ("127.0.0.1", 6543)
    assert (pool.path, pool.username) == (direct.path, direct.username)
    assert direct.port != 6543  # the tools (migrations, seed) keep the direct address
    env_file.write_text("POOLER=\n")
    assert load_settings(DepartmentsSettings, "departments", env_file).pool_url == direct.geturl()


async def test_asyncpgs_statement_cache_breaks_there_and_the_pool_turns_it_off(
    departments_dsn: str, bouncer: str
) -> None:
    """Why POOLER=pgbouncer turns the cache off: a statement asyncpg named and cached on one
    server connection is asked for on another once a second client holds the first."""
    pooled = through(departments_dsn, bouncer)
    for options, fails in (({}, True), (pool_options("pgbouncer"), False)):
        first = await asyncpg.connect(pooled, **options)
        second = await asyncpg.connect(pooled, **options)
        try:
            assert await first.fetchval("SELECT count(*) FROM departments") is not None
            async with second.transaction():  # holds the server `first` prepared on
                await second.fetchval("SELECT 1")
                if fails:
                    with pytest.raises(asyncpg.InvalidSQLStatementNameError, match="pgbouncer"):
                        await first.fetchval("SELECT count(*) FROM departments")
                else:
                    assert await first.fetchval("SELECT count(*) FROM departments") is not None
        finally:
            await first.close()
            await second.close()


def test_psycopg_through_pgbouncer_needs_prepare_threshold_none(
    departments_dsn: str, bouncer: str
) -> None:
    """psycopg (the tools' driver, and the plugin's psycopg output) prepares a query once
    it ran `prepare_threshold` times (5): through PgBouncer 1.18 the next server connection
    lacks it. A psycopg user connects with prepare_threshold=None there (the repository's
    own tools keep the direct address)."""
    pooled = psycopg_dsn(through(departments_dsn, bouncer))
    query = "SELECT count(*) FROM departments WHERE name <> %s"
    for threshold, fails in ((5, True), (None, False)):
        with (
            psycopg.connect(pooled, autocommit=True, prepare_threshold=threshold) as first,
            psycopg.connect(pooled, autocommit=True, prepare_threshold=threshold) as second,
        ):
            for _ in range(6):  # the 6th prepares it, on the server connection it got
                assert first.execute(query, ("x",)).fetchone() is not None
            with second.transaction():  # holds that server connection
                second.execute("SELECT 1")
                if fails:
                    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
                        first.execute(query, ("x",))
                else:
                    assert first.execute(query, ("x",)).fetchone() is not None
