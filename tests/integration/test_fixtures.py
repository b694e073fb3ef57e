"""Two test runs in parallel share neither databases nor Redis keys, and clean up after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis

from tests.servers import DatabaseFactory, Servers
from tools.local.databases import with_database
from tools.local.dbadmin import create_database, database_exists, psycopg_dsn
from tools.migrations import migrate
from tools.time_scale import scaled

# Outside tests/integration (whose conftest imports every service) and without the plugins
# the probe does not use: each run starts in ~0.7 s instead of ~2 s (more under load).
PROBE = Path(__file__).parents[1] / "isolation_probe.py"
LEAN = [
    f"-pno:{name}" for name in ("cacheprovider", "schemathesis", "hypothesispytest", "randomly")
]


def test_parallel_runs_are_isolated(tmp_path: Path, servers: Servers, redis_prefix: str) -> None:
    barrier = f"{redis_prefix}probe-barrier"  # this run's key: the probes meet there
    runs = []
    for i in range(2):
        out = tmp_path / f"probe{i}.json"
        env = {**os.environ, "PROBE_OUT": str(out), "PROBE_BARRIER": barrier}
        cmd = [sys.executable, "-m", "pytest", "-q", *LEAN, str(PROBE)]
        runs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True), out))
    results = []
    try:
        for proc, out in runs:
            stdout, _ = proc.communicate(timeout=scaled(120))
            assert proc.returncode == 0, stdout
            results.append(json.loads(out.read_text()))
    finally:
        client = redis.Redis.from_url(servers.redis_url)
        client.delete(barrier)
        client.close()
    first, second = results
    assert first["dsn"] != second["dsn"]
    assert first["prefix"] != second["prefix"]
    for result in results:
        assert not database_exists(result["dsn"]), f"{result['dsn']} was not dropped"


def schema(dsn: str) -> list[tuple[str, ...]]:
    """Every column of the public schema, and the migrations yoyo recorded as applied."""
    with psycopg.connect(psycopg_dsn(dsn)) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, column_name"
        ).fetchall()
        applied = conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY 1").fetchall()
    return [tuple(map(str, row)) for row in columns + applied]


def test_a_copied_database_is_the_migrated_one(
    migrated_db: Callable[[str], str], databases: DatabaseFactory
) -> None:
    """migrated_db copies a PostgreSQL database it migrated once: the copy is what the
    migrations make, yoyo's record included, and each ask is a database of its own."""
    first, second = migrated_db("users"), migrated_db("users")
    assert first != second
    migrated = databases.create("users_by_hand", "postgresql")
    migrate.up("users", migrated)
    assert schema(first) == schema(migrated) == schema(second)
    assert len(schema(migrated)) > 50  # the users tables' columns, not an empty database
    with psycopg.connect(psycopg_dsn(first), autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_first (id int)")
    assert schema(first) != schema(second)  # a copy, not the same database


def test_mysql_has_no_template(servers: Servers) -> None:
    with pytest.raises(ValueError, match="a MySQL database has no template"):
        create_database(with_database(servers.mysql_dsn, "never_made"), template="other")
    assert not database_exists(with_database(servers.mysql_dsn, "never_made"))
