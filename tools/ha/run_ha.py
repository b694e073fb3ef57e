"""`make run ha=1`: the services of the Procfile on the HA data tier instead of single servers.

    python -m tools.ha.run_ha [--procfile Procfile] [--var var] [--free-ports]

It brings the tier up (tools/ha/ha_tier.py), creates, migrates and seeds every database of
the registry there, writes what the services read to `var/ha/run.env` and runs honcho with
it; PostgreSQL's WAL is archived into `var/backups/`, so `make backup` and `make restore`
work against the tier. Ctrl-C (or SIGTERM) stops honcho, then the tier (docs/operations.md)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

import psycopg
import pymysql

from tools.backups.backup_settings import BackupSettings
from tools.ha import ha_tier
from tools.local import seed
from tools.local.databases import DATABASES
from tools.local.local_servers import StartError
from tools.local.locks import LockBusy, file_lock
from tools.time_scale import scaled

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = "run.env"
HONCHO_STOP_TIMEOUT = scaled(30.0)  # honcho's own grace period for its children is 10 s


def database_env(tier: ha_tier.Tier) -> dict[str, str]:
    """Every database's DSN on the tier: PostgreSQL's and points' through their HAProxy
    addresses of the primary (ADR 0033, ADR 0039)."""
    assert tier.postgres is not None
    assert tier.mariadb is not None
    env = {}
    for db in DATABASES.values():
        if db.engine == "postgresql":
            env[db.env_var] = f"{tier.postgres.dsn}/fixup_{db.name}"
        else:
            env[db.env_var] = f"mysql://root@127.0.0.1:{tier.mariadb.address}/fixup_{db.name}"
    return env


def service_env(tier: ha_tier.Tier) -> dict[str, str]:
    """What the services read: their databases on the tier, Redis through the Sentinels."""
    assert tier.redis is not None
    return {**database_env(tier), "REDIS_SENTINELS": tier.redis.sentinels_setting}


def prepare(var: Path, *, free_ports: bool) -> dict[str, str]:
    """The tier up, every database migrated and seeded on it; -> the services' environment.
    Whatever fails stops the tier again and raises StartError naming it."""
    ledger = ha_tier.tier_root(var) / ha_tier.LEDGER
    if ledger.exists():  # never `down` a tier this run did not start
        raise StartError(
            f"an HA tier is recorded in {ledger}:"
            f" `python -m tools.ha.ha_tier down --var {var}` first"
        )
    try:
        archiving = BackupSettings.from_env(var.resolve())  # var/backups/: make backup's
        tier = ha_tier.up(var, free_ports=free_ports, archiving=archiving)
        env = service_env(tier)
        os.environ.update(database_env(tier))  # what tools.local.seed reads
        if seed.main(["--local-dev"]) != 0:
            raise StartError("migrating and seeding the HA tier failed (above: which database)")
    except (StartError, pymysql.MySQLError, psycopg.Error, OSError) as exc:
        ha_tier.down(var)  # pgBackRest's stanza, the MariaDB pair's replication: one line
        raise StartError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
    except BaseException:
        ha_tier.down(var)
        raise
    (ha_tier.tier_root(var) / ENV_FILE).write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return env


def serve(procfile: Path, env: dict[str, str]) -> int:
    """honcho over the Procfile until it ends or this process is told to stop."""
    honcho = Path(sys.executable).parent / "honcho"
    proc = subprocess.Popen(
        [str(honcho), "start", "-d", str(ROOT), "-f", str(procfile)],
        env={**os.environ, **env},
        cwd=ROOT,
    )

    asked: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        asked.append(signum)
        proc.send_signal(signal.SIGTERM)  # honcho stops its processes, then exits

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        code = proc.wait()
        return 0 if asked else code  # a stop asked for is a clean end, not honcho's 143
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(HONCHO_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ha.run_ha", description=__doc__)
    parser.add_argument("--procfile", type=Path, default=ROOT / "Procfile")
    parser.add_argument("--var", type=Path, default=Path("var"))
    parser.add_argument("--free-ports", action="store_true", help="the tier on free ports")
    args = parser.parse_args(argv)
    if not args.procfile.is_file():
        print(f"run ha: no Procfile at {args.procfile}", file=sys.stderr)
        return 2
    try:
        with file_lock("ha-tier", folder=args.var / "locks"):  # one tier under var/ha
            try:
                env = prepare(args.var, free_ports=args.free_ports)
            except StartError as exc:
                print(f"run ha: {exc}", file=sys.stderr)
                return 1
            except KeyboardInterrupt:  # Ctrl-C while the tier starts: prepare stopped it
                print("run ha: interrupted; nothing left running", file=sys.stderr)
                return 130
            settings = ha_tier.tier_root(args.var) / ENV_FILE
            print(f"run ha: the tier is up; the services' settings: {settings}")
            try:
                return serve(args.procfile, env)
            finally:
                stopped = ha_tier.down(args.var)
                print(f"run ha: the HA tier stopped ({stopped} process groups)", file=sys.stderr)
    except LockBusy as exc:
        print(f"run ha: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
