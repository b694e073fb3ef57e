"""Commands that write, twice at once and after a kill (tools/local/locks.py): migrate up/down
and seed hold their database's advisory lock, so a second copy waits (saying for what)
or refuses with one line, and two copies at once never both migrate; a migration run
killed half-way leaves yoyo's lock row behind, which the next run removes (saying so)
before it applies what the killed one did not. tests/e2e/test_command_locks_tree.py does
the same for new-service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.servers import DatabaseFactory
from tools.local.dbadmin import psycopg_dsn
from tools.local.locks import LockBusy, database_lock, file_lock
from tools.local.service_process import PROCESS_MARGIN, ROOT
from tools.time_scale import scaled

DB = {"postgresql": "departments", "mysql": "points"}  # a database of each engine
STEP = scaled(120.0)  # one command's run on a loaded machine, migrations included


def command(*args: str, env: dict[str, str], stderr: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        text=True,
    )


def wait_for_text(path: Path, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in path.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} within {seconds:g} s: {path.read_text()}")
        time.sleep(0.05)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_migrate_waits_for_a_held_lock_or_refuses_in_one_line(
    databases: DatabaseFactory, engine: str, tmp_path: Path
) -> None:
    db = DB[engine]
    dsn = databases.create("lock", engine)
    env = {f"{db.upper()}_DATABASE_URL": dsn}
    err = tmp_path / "err"
    with database_lock(dsn, "migrate", wait=0):
        refused = command(
            "-m", "tools.migrations.migrate", "up", db, env={**env, "LOCK_WAIT": "0"}, stderr=err
        )
        assert refused.wait(STEP) == 2
        lines = err.read_text().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("migrate: the migrate lock of database "), lines
        assert "another copy is running" in lines[0]
        waiting = command(
            "-m",
            "tools.migrations.migrate",
            "up",
            db,
            env={**env, "LOCK_WAIT": str(STEP)},
            stderr=err,
        )
        wait_for_text(err, f"waiting up to {STEP:g} s for the migrate lock", STEP)
        assert waiting.poll() is None  # it waits while the lock is held
    out, _ = waiting.communicate(timeout=STEP)  # released: it goes on
    assert waiting.returncode == 0, err.read_text()
    assert f"{db}: applied" in out
    assert "nothing pending" not in out


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_two_migrate_ups_at_once_apply_each_migration_once(
    databases: DatabaseFactory, engine: str, tmp_path: Path
) -> None:
    db = DB[engine]
    dsn = databases.create("twice", engine)
    env = {f"{db.upper()}_DATABASE_URL": dsn, "LOCK_WAIT": str(STEP)}
    runs = [
        command("-m", "tools.migrations.migrate", "up", db, env=env, stderr=tmp_path / f"e{i}")
        for i in (1, 2)
    ]
    outs = [run.communicate(timeout=STEP)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [p.read_text() for p in tmp_path.iterdir()]
    counts = sorted(int(out.split("applied ")[1].split(":")[0]) for out in outs)
    total = len([p for p in (ROOT / "migrations" / db).glob("*.sql") if ".rollback." not in p.name])
    assert counts == [0, total], outs  # one applied them all, the other found nothing left


SLOW = "CREATE TABLE second (id int);\nSELECT pg_sleep(60);\n"


def test_a_migration_run_killed_half_way_is_finished_by_the_next(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    dsn = databases.create("killed", "postgresql")
    source = tmp_path / "migrations"
    source.mkdir()
    (source / "0001_first.sql").write_text("CREATE TABLE first (id int);\n")
    (source / "0002_second.sql").write_text(SLOW)
    run = (
        "import sys; from pathlib import Path; from tools.migrations.migrate import up; "
        "print(up('departments', sys.argv[1], source=Path(sys.argv[2])))"
    )
    err = tmp_path / "err"
    killed = command("-c", run, dsn, str(source), env={}, stderr=err)
    try:
        with psycopg.connect(psycopg_dsn(dsn), autocommit=True) as pg:
            deadline = time.monotonic() + STEP
            while not pg.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
            ).fetchone():
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.05)
            killed.send_signal(signal.SIGKILL)  # inside 0002: its transaction never commits
            killed.wait(PROCESS_MARGIN)
            assert pg.execute("SELECT count(*) FROM yoyo_lock").fetchone() == (1,)
        # at once: the server rolls 0002 back within CLIENT_CHECK_MS, inside lock_timeout
        (source / "0002_second.sql").write_text(SLOW.replace("SELECT pg_sleep(60);\n", ""))
        began = time.monotonic()
        again = command("-c", run, dsn, str(source), env={"LOCK_WAIT": "0"}, stderr=err)
        out, _ = again.communicate(timeout=STEP)
        assert again.returncode == 0, err.read_text()
        assert out.strip() == "['0002_second']"  # 0001 stayed applied, 0002 now applied
        assert "removed the lock a killed run" in err.read_text()
        assert time.monotonic() - began < STEP
        with psycopg.connect(psycopg_dsn(dsn), autocommit=True) as pg:
            assert pg.execute("SELECT count(*) FROM yoyo_lock").fetchone() == (0,)
            assert pg.execute("SELECT to_regclass('second') IS NOT NULL").fetchone() == (True,)
    finally:
        killed.kill()
        killed.wait(PROCESS_MARGIN)


def test_seed_refuses_while_another_seed_holds_a_database(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    dsn = databases.create("seed", "postgresql")
    env = {"DEPARTMENTS_DATABASE_URL": dsn, "LOCK_WAIT": "0.5"}
    err = tmp_path / "err"
    with database_lock(dsn, "seed", wait=0):
        refused = command("-m", "tools.local.seed", "--local-dev", env=env, stderr=err)
        out, _ = refused.communicate(timeout=STEP)
    assert refused.returncode == 2
    lines = [line for line in err.read_text().splitlines() if not line.startswith("waiting")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("seed: departments: the seed lock of"), lines
    assert out == ""  # nothing written: the departments are first
    with psycopg.connect(psycopg_dsn(dsn)) as pg:
        assert pg.execute("SELECT to_regclass('departments')").fetchone() == (None,)


def test_a_file_lock_is_one_holder_at_a_time_and_dies_with_it(tmp_path: Path) -> None:
    hold = (
        "import sys, time; from pathlib import Path; from tools.local.locks import file_lock\n"
        "with file_lock('x', folder=Path(sys.argv[1])):\n"
        "    print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        busy = pytest.raises(LockBusy, match=rf"held by process {holder.pid}: another copy")
        with busy, file_lock("x", folder=tmp_path, wait=0.2):
            pass
        holder.send_signal(signal.SIGKILL)  # killed outright: the kernel lets the lock go
        holder.wait(PROCESS_MARGIN)
        with file_lock("x", folder=tmp_path, wait=PROCESS_MARGIN):
            assert (tmp_path / "x.lock").read_text() == f"{os.getpid()}\n"
    finally:
        holder.kill()
        holder.wait(PROCESS_MARGIN)
