"""The embedded default (tools/local/local_servers.py): with the configured addresses pointed at
free ports where nothing listens, `up` starts a PostgreSQL, a MariaDB and a Redis of its own
there, each answering a real client; a second `up` uses them as they are; `down` stops
exactly those; a start that fails half-way names the failure and leaves nothing running.
Never the machine's own servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from lib import registry
from tools.local import local_servers, server_homes
from tools.local.dbadmin import mysql_connect
from tools.local.local_servers import START_TIMEOUT, StartError, hand_to, listening
from tools.local.ports import free_port
from tools.local.processes import STOP_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def var() -> Iterator[Path]:
    """A var/ of the test's own that the postgres and mysql users can reach."""
    with tempfile.TemporaryDirectory(prefix="fixup-local-servers-") as directory:
        Path(directory).chmod(0o755)
        yield Path(directory)
        # whatever the test left, stopped before the directory goes
        subprocess.run(
            [sys.executable, "-m", "tools.local.local_servers", "down", "--var", directory],
            cwd=ROOT,
            capture_output=True,
            check=False,
            timeout=STOP_TIMEOUT * 3,
        )


def _addresses() -> dict[str, str]:
    pg, my, rd = free_port(), free_port(), free_port()
    env = {
        f"{s.database.upper()}_DATABASE_URL": (
            f"postgresql://postgres@127.0.0.1:{pg}/fixup_{s.database}"
            if s.engine == "postgresql"
            else f"mysql://root@127.0.0.1:{my}/fixup_{s.database}"
        )
        for s in registry.MICROSERVICES
    }
    return {
        **env,
        "REDIS_URL": f"redis://127.0.0.1:{rd}/0",
        "PG": str(pg),
        "MY": str(my),
        "RD": str(rd),
    }


def _local_servers(
    command: str, var: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.local.local_servers", command, "--var", str(var)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT * 4,
        check=False,
    )


def test_up_starts_what_is_missing_and_down_stops_it(
    var: Path, request: pytest.FixtureRequest
) -> None:
    env = _addresses()
    pg, my, rd = int(env["PG"]), int(env["MY"]), int(env["RD"])

    # Redis cannot start (a file where its data directory goes): exit 1 naming it, and the
    # PostgreSQL and MariaDB this run started are stopped again
    (var / "servers").mkdir()
    blocker = var / "servers" / f"redis-{rd}"
    blocker.write_text("not a directory")
    # a temporary table of another MariaDB in the machine's tmpdir, as the server that owns it
    # leaves it: ours, installed then started (twice), must not delete it as its own leftover
    theirs = Path(tempfile.gettempdir()) / f"#sql-temptable-{os.getpid():x}-{my}-0.MAI"
    theirs.touch()
    request.addfinalizer(lambda: theirs.unlink(missing_ok=True))
    if os.geteuid() == 0:
        shutil.chown(theirs, "mysql", "mysql")
    failed = _local_servers("up", var, env)
    assert failed.returncode == 1, failed.stderr
    assert f"Redis at 127.0.0.1:{rd} could not start" in failed.stderr
    assert not any(listening("127.0.0.1", port) for port in (pg, my, rd)), failed.stderr

    blocker.unlink()
    started = _local_servers("up", var, env)
    assert started.returncode == 0, started.stderr
    for name, port in (("PostgreSQL", pg), ("MariaDB", my), ("Redis", rd)):
        assert f"{name} at 127.0.0.1:{port}: nothing listened, started ours" in started.stderr
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg}/postgres") as pg_conn:
        assert pg_conn.execute("SELECT current_setting('port')").fetchone() == (str(pg),)
    assert theirs.exists(), "our MariaDB deleted another server's temporary table"
    with mysql_connect(f"mysql://root@127.0.0.1:{my}/mysql") as my_conn, my_conn.cursor() as cur:
        cur.execute("SELECT @@port, @@tmpdir")
        port, tmpdir = cur.fetchone()
        assert port == my
        assert Path(tmpdir) == (var / "servers" / f"mysql-{my}" / "tmp").resolve()
    client = redis.Redis(port=rd)
    try:
        assert client.config_get("port") == {"port": str(rd)}
    finally:
        client.close()

    again = _local_servers("up", var, env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("answering, used as it is") == 3, again.stderr
    assert "started ours" not in again.stderr

    stopped = _local_servers("down", var, env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stderr.count(": stopped") == 3, stopped.stderr
    assert not any(listening("127.0.0.1", port) for port in (pg, my, rd))
    # the ledger is empty: a second down stops nothing
    assert ": stopped" not in _local_servers("down", var, env).stderr


def test_a_directory_the_server_user_cannot_reach_is_refused_naming_the_closed_parent() -> None:
    """A checkout under a 0700 `mktemp -d` (or /root): one line naming the directory to open,
    not "Permission denied" deep in PgBouncer's, Patroni's or pgBackRest's own log. As
    another user than root nothing is handed over, so nothing can be refused."""
    with tempfile.TemporaryDirectory(prefix="fixup-closed-") as closed:
        Path(closed).chmod(0o700)
        home = Path(closed) / "var" / "pgbouncer"
        if os.geteuid() != 0:
            hand_to("postgres", home)
            assert home.is_dir()
            return
        with pytest.raises(StartError, match=f"cannot reach {home}: {closed} is closed to it"):
            hand_to("postgres", home)
        Path(closed).chmod(0o755)
        hand_to("postgres", home)
        assert home.owner() == "postgres"


def test_a_server_whose_user_cannot_pass_the_checkout_keeps_its_data_in_the_server_root() -> None:
    """`make test` on a machine with no PostgreSQL, from a checkout under a 0700 home: the
    cluster starts all the same, its data where the postgres user can pass, kept there from
    one run to the next (a second `up` after `down` uses it again)."""
    with tempfile.TemporaryDirectory(prefix="fixup-closed-") as closed:
        Path(closed).chmod(0o700)
        var = Path(closed) / "fixup" / "var"
        address = local_servers.Address("postgresql", "127.0.0.1", free_port())
        expected = var / "servers" / f"postgresql-{address.port}"
        if os.geteuid() == 0:  # as any other user the server runs as us: var/ it is
            expected = server_homes.server_root(var) / expected.name
        try:
            assert local_servers.up(var, [address]) == [
                f"{address}: nothing listened, started ours (data: {expected})"
            ]
            assert (expected / "data" / "PG_VERSION").exists()
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{address.port}/postgres"):
                pass
            local_servers.down(var)
            assert not listening(address.host, address.port)
            assert local_servers.up(var, [address])[0].endswith(f"(data: {expected})")
        finally:
            local_servers.down(var)
            server_homes.remove_home(expected)
