"""`make restore db=X time=T`: one database at a point in time, into a NEW server on a free
port under `var/restore/` (never over the live one); it must open and its migrations table
must match the repository's migrations; then its DSN is printed, to inspect or promote.

    python -m tools.backups.restore run DB TIME     (TIME: ISO 8601; without a zone, UTC)
    python -m tools.backups.restore stop DIR        (stop a restored copy)

Refused, with one line naming the reason and nothing restored: a database not in the
registry, a time that does not parse, after now, or before the first backup ended, a
repository that fails verification (pgBackRest `verify`; the SHA-256 manifest of a
mariadb-backup copy), a restore already running (a lock). The tool, pgBackRest and the
servers run on one host and share its clock.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tools.backups import mariadb_backups, pgbackrest
from tools.backups.backup_servers import load
from tools.backups.backup_settings import BackupSettings
from tools.local.databases import Database, UnknownDatabaseError, get_database
from tools.local.db_servers import MariaInstance, PgCluster
from tools.local.local_servers import StartError, hand_to, pg_settings, run
from tools.local.locks import LockBusy, file_lock
from tools.local.ports import free_port
from tools.migrations import migrate


class Refused(Exception):
    """The one line saying why nothing was restored."""


@dataclass(frozen=True, slots=True)
class Restored:
    db: str
    target: datetime
    dsn: str
    home: Path
    seconds: float  # from the command's start to a queryable copy (the RTO)
    migrations: str


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise Refused(
            f"time {text!r} is not an ISO 8601 time (e.g. 2026-11-25T14:05:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def only_one(settings: BackupSettings) -> Iterator[None]:
    """var/restore/restore.lock, refused at once: two restores never run at once."""
    try:
        with file_lock("restore", wait=0, folder=settings.restores):
            yield
    except LockBusy as exc:
        raise Refused(f"another restore is running: {exc}") from None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def too_early(db: Database, target: datetime, first: datetime) -> str:
    return f"time {stamp(target)} is before the first backup of {db.name} ended ({stamp(first)})"


def earliest_pg_target(backup: pgbackrest.PgBackup) -> datetime:
    """pgBackRest records a backup's stop in whole seconds and picks, for a time target, a
    set whose stop is before the target's whole second: a time in the second the backup
    ended is refused by it ("unable to find backup set"), so it is refused here, named."""
    return backup.stopped + timedelta(seconds=1)


def pg_time(moment: datetime) -> str:
    """pgBackRest's form of a time target (it takes no ISO 8601 `T` or `Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def check_migrations(db: Database, dsn: str) -> str:
    """The migrations yoyo recorded as applied in the restored copy are the repository's
    first ones."""
    marks = migrate.status(db.name, dsn)
    known = [mid for mid, _ in marks]
    applied = [mid for mid, done in marks if done]
    if not applied or applied != known[: len(applied)]:
        raise StartError(f"restored migrations {applied} do not match the repository's {known}")
    return f"{len(applied)} of {len(known)} migrations applied (last {applied[-1]})"


def restore_pg(
    settings: BackupSettings, db: Database, target: datetime, home: Path, *, alone: bool = True
) -> str:
    """`db` at `target` in a new cluster in `home`; `alone=False`: every database of the
    cluster, at the same point (the restore drill); -> `db`'s DSN there."""
    live = load(settings).pg
    if live.answers():  # the WAL written up to now reaches the archive first
        run(pgbackrest.pgbackrest(settings, "check"))
    backups = pgbackrest.info(settings)
    if not backups:
        raise Refused(f"no backup of {db.name} yet: run `make backup`")
    if target < earliest_pg_target(backups[0]):
        raise Refused(too_early(db, target, earliest_pg_target(backups[0])))
    problems = pgbackrest.verify(settings)
    if problems:
        raise Refused(f"the backup repository fails verification: {'; '.join(problems)}")
    hand_to("postgres", home)  # pgBackRest restores into it as that user
    home.chmod(0o700)
    copy = PgCluster(home / "data", free_port())
    run(pgbackrest.pgbackrest(  # a time target picks its backup set itself
        settings, "restore", f"--pg1-path={copy.data}", "--type=time",
        f"--target={pg_time(target)}", "--target-action=promote",
        *([f"--db-include=fixup_{db.name}"] if alone else []), "--archive-mode=off",
    ), timeout=3600)  # fmt: skip
    # the copy must never push WAL into the live cluster's stanza; a copy of an HA member
    # (the HA tier's, archived) waits for no synchronous standby and reads its own pg_hba.conf
    pg_settings(
        copy.data,
        {"archive_mode": "off", "archive_command": "", "port": str(copy.port)}
        | {"synchronous_standby_names": "", "hba_file": str(copy.data / "pg_hba.conf")},
    )
    copy.start()
    return copy.dsn(f"fixup_{db.name}")


def restore_mysql(settings: BackupSettings, db: Database, target: datetime, home: Path) -> str:
    live = load(settings).mariadb
    if live.answers():  # the binary log written up to now reaches the archive first
        mariadb_backups.archive_binlogs(live, settings)
    copies = mariadb_backups.backups(settings)
    if not copies:
        raise Refused(f"no backup of {db.name} yet: run `make backup`")
    if target < copies[0].stopped:
        raise Refused(too_early(db, target, copies[0].stopped))
    chosen = [c for c in copies if c.stopped <= target][-1]
    problems = mariadb_backups.verify(chosen)
    if problems:
        raise Refused(
            f"the backup {chosen.path.name} fails verification: {'; '.join(problems[:3])}"
        )
    copy = mariadb_backups.restore(chosen, settings, target, home, free_port())
    return copy.dsn(f"fixup_{db.name}")


def restore(settings: BackupSettings, name: str, when: str) -> Restored:
    began = time.monotonic()
    try:
        db = get_database(name)
    except UnknownDatabaseError as exc:
        raise Refused(str(exc)) from None
    target = parse_time(when)
    now = datetime.now(UTC)
    if target > now:
        raise Refused(f"time {stamp(target)} is after now ({stamp(now)})")
    with only_one(settings):
        how = restore_pg if db.engine == "postgresql" else restore_mysql
        home = settings.restores / f"{db.name}-{now.strftime('%Y%m%dT%H%M%S%f')}"
        try:
            dsn = how(settings, db, target, home)
            migrations = check_migrations(db, dsn)
        except BaseException:  # nothing half-restored is left behind
            discard(home)
            raise
    return Restored(db.name, target, dsn, home, time.monotonic() - began, migrations)


def stop(home: Path) -> None:
    if (home / "data" / "postmaster.pid").exists():
        PgCluster(home / "data", 0).stop()
    else:
        MariaInstance(home / "data", 0).stop()


def discard(home: Path) -> None:
    """Stop a restored copy (if it runs) and delete it."""
    if home.exists():
        stop(home)
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.backups.restore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run")
    go.add_argument("db")
    go.add_argument("time")
    halt = sub.add_parser("stop")
    halt.add_argument("home", type=Path)
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.home)
        return 0
    try:
        done = restore(BackupSettings.from_env(), args.db, args.time)
    except Refused as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 2
    except StartError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored {done.db} to {stamp(done.target)} in {done.seconds:.1f} s; {done.migrations}")
    print(f"DSN: {done.dsn}")
    print(f"data: {done.home} (stop it: python -m tools.backups.restore stop {done.home})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
