"""`make run ha=1`'s entry point (tools/ha/run_ha.py) on free ports: the whole HA tier comes up,
every database is migrated and seeded on it, honcho runs a Procfile (users and departments
on free ports, NGINX in front), a story call through NGINX logs in and writes a department
that lands, through HAProxy's address, on the Patroni primary (and its synchronous standby),
and rate-limits in the Sentinels' Redis master; on the same tier (WAL archived by
pgBackRest) one backup and one restore to a time; SIGTERM then stops honcho and the tier and
leaves no process. One tier start for both: `make test` runs it (~2-3 min here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import redis

from tools import keys
from tools.backups import backup, pgbackrest, restore
from tools.backups.backup_settings import BackupSettings
from tools.ha import ha_tier
from tools.ha.ha_postgres import START_TIMEOUT
from tools.ha.ha_tier import LEDGER
from tools.ha.run_ha import ENV_FILE, HONCHO_STOP_TIMEOUT
from tools.local.local_servers import listening
from tools.local.ports import free_port
from tools.local.processes import STOP_TIMEOUT, alive
from tools.local.seed import ADMIN, DEFAULT_ADMIN_PASSWORD
from tools.time_scale import scaled

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ".venv/bin/python"
# the tier (etcd, three members, Redis, MariaDB), the seed, then the services' start
UP_LIMIT = 3 * START_TIMEOUT


def _procfile(tmp: Path, ports: dict[str, int]) -> str:
    nginx = [
        f"{PYTHON} -m tools.deploy.nginx run",
        f"--listen 127.0.0.1:{ports['nginx']} --status-listen 127.0.0.1:{ports['status']}",
        f"--upstream users=127.0.0.1:{ports['users']}",
        f"--upstream departments=127.0.0.1:{ports['departments']}",
        f"--runtime {tmp / 'nginx'} --access-log {tmp / 'nginx' / 'access.log'}",
    ]
    return "\n".join(
        [
            f"users: env USERS_PORT={ports['users']} {PYTHON} -m services.users",
            f"departments: env DEPARTMENTS_PORT={ports['departments']}"
            f" {PYTHON} -m services.departments",
            f"nginx: {' '.join(nginx)}",
            "",
        ]
    )


def _wait_for(check: object, what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not (callable(check) and check()):
        assert time.monotonic() < deadline, f"{what} not within {limit:.0f} s"
        time.sleep(0.5)


def _logged_in(base: str) -> str | None:
    try:
        answer = httpx.post(
            f"{base}/api/users/v1/auth/login",
            json={"email": ADMIN.email, "password": DEFAULT_ADMIN_PASSWORD},
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    return str(answer.json()["data"]["access_token"]) if answer.status_code == 200 else None


def _groups_alive(groups: list[int]) -> list[int]:
    """The groups with a live process; zombies handed to this process (the suite is a
    subreaper) when the entry point exited are reaped, not counted."""
    return [group for group in groups if alive(group, group=True)]


def _department(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    conn.execute(
        "INSERT INTO departments (id, name, address) VALUES (gen_random_uuid(), %s, %s)",
        (name, "1 Archive Street"),
    )


def backed_up_and_restored(var: Path, dsn: str) -> None:
    """WAL archived on the tier (tools/backups/backup_servers.py): `make backup` takes a full backup
    from the primary (and a mariadb-backup of points' primary), and `make restore` brings
    departments back to a time between two writes into a new server: the write before it
    is there, the one after it is not."""
    settings = replace(BackupSettings.from_env(var.resolve()), s3=None)
    lines = backup.backup(settings)
    assert lines[0].startswith("postgresql: full backup into repo1"), lines
    before, after = (f"pitr-{uuid.uuid4().hex[:12]}" for _ in range(2))
    earliest = restore.earliest_pg_target(pgbackrest.info(settings)[0])
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_sleep_until(%s)", (earliest,))  # a target pgBackRest takes
        _department(conn, before)
        # the target: the database's clock, after the first commit, before the second
        moment = conn.execute("SELECT clock_timestamp()").fetchone()
        assert moment is not None
        _department(conn, after)
    done = restore.restore(settings, "departments", moment[0].isoformat())
    try:
        with psycopg.connect(done.dsn, connect_timeout=5) as copy:
            found = copy.execute(
                "SELECT name FROM departments WHERE name IN (%s, %s)", (before, after)
            ).fetchall()
    finally:
        restore.discard(done.home)
    assert found == [(before,)], f"restored to {moment[0]}"
    assert "migrations applied" in done.migrations


def test_make_run_ha_serves_a_story_call_through_nginx_and_stops_clean() -> None:
    with tempfile.TemporaryDirectory(prefix="fixup-run-ha-") as directory:
        tmp = Path(directory)
        tmp.chmod(0o755)  # the postgres and mysql users run the members
        var = tmp / "var"
        var.mkdir(mode=0o755)
        ports = {name: free_port() for name in ("users", "departments", "nginx", "status")}
        procfile = tmp / "Procfile"
        procfile.write_text(_procfile(tmp, ports))
        key_dir = tmp / "keys"
        keys.write_keys(key_dir)
        keys.write_encryption_key(key_dir)
        env = {
            **os.environ,
            "JWT_PUBLIC_KEY_FILE": str(key_dir / keys.PUBLIC_NAME),
            "JWT_PRIVATE_KEY_FILE": str(key_dir / keys.PRIVATE_NAME),
            keys.ENCRYPTION_ENV: str(key_dir / keys.ENCRYPTION_NAME),
            "WORKERS": "1",
            "LOG_LEVEL": "WARNING",
        }
        log = (tmp / "run_ha.log").open("wb")
        command = [sys.executable, "-m", "tools.ha.run_ha", "--procfile", str(procfile)]
        run = subprocess.Popen(
            [*command, "--var", str(var), "--free-ports"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        groups: list[int] = []
        try:
            base = f"http://127.0.0.1:{ports['nginx']}"
            _wait_for(
                lambda: run.poll() is not None or _logged_in(base) is not None,
                "a login through NGINX on the HA tier",
                UP_LIMIT,
            )
            assert run.poll() is None, (tmp / "run_ha.log").read_text()[-3000:]
            ledger = json.loads((var / "ha" / LEDGER).read_text())
            groups = [*ledger["groups"], *ledger["redis_groups"], *ledger["mariadb_groups"]]
            settings = dict(
                line.split("=", 1) for line in (var / "ha" / ENV_FILE).read_text().splitlines()
            )
            token = _logged_in(base)
            assert token is not None
            name = f"ha-{uuid.uuid4().hex[:12]}"
            created = httpx.post(
                f"{base}/api/departments/v1/departments",
                json={"name": name, "address": "1 Failover Street"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": name},
                timeout=scaled(10),
            )
            assert created.status_code == 201, created.text
            dsn = settings["DEPARTMENTS_DATABASE_URL"]
            haproxy = ledger["ports"][-1]  # the layout's last port: the primary's address
            assert dsn.startswith(f"postgresql://postgres@127.0.0.1:{haproxy}/")  # ADR 0033
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                rows = conn.execute("SELECT count(*) FROM departments WHERE name = %s", (name,))
                assert rows.fetchone() == (1,)
                # synchronous mode: the commit was on a standby before it was acknowledged
                standby = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
                ).fetchone()
                assert standby == (1,)
            master = redis.Redis(port=ledger["redis_ports"][0], socket_timeout=5)
            assert master.role()[0] == b"master"
            assert master.dbsize() > 0  # the login's limits went through the Sentinels
            assert settings["POINTS_DATABASE_URL"].startswith(  # the pair's HAProxy (ADR 0039)
                f"mysql://root@127.0.0.1:{ledger['mariadb_ports'][2]}/"
            )
            backed_up_and_restored(var, dsn)
        finally:
            if run.poll() is None:
                run.send_signal(signal.SIGTERM)
            try:
                code = run.wait(HONCHO_STOP_TIMEOUT + STOP_TIMEOUT * 3)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                code = -1
            finally:
                log.close()
                leftover = ha_tier.down(var)  # whatever the entry point left: stopped here
        assert code == 0, (tmp / "run_ha.log").read_text()[-3000:]
        assert leftover == 0
        assert _groups_alive(groups) == []
        left = [name for name, port in ports.items() if listening("127.0.0.1", port, 0.2)]
        assert left == [], f"still listening after the stop: {left}"
