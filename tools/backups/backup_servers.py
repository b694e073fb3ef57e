"""The run's own archived servers (`make backup-servers`): a PostgreSQL cluster whose WAL
pgBackRest archives and a MariaDB instance with its binary log on, under `var/db/`, every
database of the registry in them and migrated. `make run backups=1` points the services at
them (var/db/backups.env); `make backup` and `make restore` read their ports from
var/db/servers.json.

    python -m tools.backups.backup_servers up|down

On the HA tier (`make run ha=1`) the stanza names the three Patroni members (pg1-pg3, all
local) instead, each archiving its WAL into `var/backups/` while it is the primary; `backup`
finds the primary among them and copies from it, and a promoted standby goes on archiving
into the same stanza (same system identifier, a new timeline).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tools.backups.backup_settings import (
    STANZA,
    BackupSettings,
    mysql_databases,
    pg_databases,
    write_pgbackrest_conf,
)
from tools.backups.pgbackrest import pgbackrest
from tools.local import server_homes
from tools.local.db_servers import MariaInstance, PgCluster
from tools.local.local_servers import StartError, hand_to, run
from tools.local.ports import free_port
from tools.migrations import migrate


@dataclass(frozen=True, slots=True)
class Servers:
    pg: PgCluster
    mariadb: MariaInstance

    def dsn(self, db: str) -> str:
        engine = next(d.engine for d in (*pg_databases(), *mysql_databases()) if d.name == db)
        server = self.pg if engine == "postgresql" else self.mariadb
        return server.dsn(f"fixup_{db}")


def load(settings: BackupSettings) -> Servers:
    """The servers `up` made, or the HA tier of `make run ha=1` when it runs archived
    (`member_parameters`); a missing state says how to make them."""
    ha = server_homes.kept(settings.root, "ha", "postgres", "mysql")  # tools/ha/ha_tier.py's
    tier = ha / "tier.json"
    if tier.exists() and json.loads(tier.read_text()).get("archived"):
        return ha_servers(ha, json.loads(tier.read_text()))
    state = settings.servers / "servers.json"
    if not state.exists():
        raise StartError(f"no archived servers in {settings.servers}: run `make backup-servers`")
    ports = json.loads(state.read_text())
    return Servers(
        PgCluster(settings.servers / "pg" / "data", ports["postgresql"]),
        MariaInstance(
            settings.servers / "mariadb" / "data",
            ports["mysql"],
            settings.servers / "mariadb" / "binlog",
        ),
    )


def ha_servers(root: Path, tier: dict[str, list[int]]) -> Servers:
    """The HA tier as `make backup` and `make restore` see it: PostgreSQL through HAProxy's
    one address (the primary, wherever it is), points' MariaDB primary with its binary
    log in its data directory (tools/ha/ha_mariadb.py's `--log-bin=binlog`)."""
    maria = root / "mariadb" / "maria1" / "data"
    return Servers(
        PgCluster(root / "pg0" / "data", tier["ports"][-1]),
        MariaInstance(maria, tier["mariadb_ports"][0], maria),
    )


def member_parameters(settings: BackupSettings, data: Path | None = None) -> dict[str, str]:
    """WAL archived into the stanza: what member `data` of the HA tier adds to its Patroni
    `postgresql.parameters` (its own data directory as pg1: PostgreSQL passes a WAL path
    relative to it; tools/ha/ha_tier.py); without `data`, the archived server's."""
    config = " ".join(settings.pgbackrest_options())
    pg1 = f" --pg1-path={data}" if data else ""
    push = f"pgbackrest {config} --stanza={STANZA}{pg1} archive-push %p"
    return {
        "archive_mode": "on",
        "archive_command": push,
        "archive_timeout": str(settings.archive_timeout),
    }


def archive_settings(settings: BackupSettings) -> dict[str, str]:
    return {"wal_level": "replica", **member_parameters(settings), "max_wal_senders": "3"}


def write_keys(settings: BackupSettings) -> None:
    """The S3 repository's keys, from the environment, readable by their user only."""
    keys = settings.pgbackrest_include / "s3-keys.conf"
    key, secret = os.environ.get("BACKUP_S3_KEY", ""), os.environ.get("BACKUP_S3_KEY_SECRET", "")
    if settings.s3 is None or not key:
        keys.unlink(missing_ok=True)
        return
    keys.touch(mode=0o600)
    keys.chmod(0o600)
    hand_to("postgres", keys.parent)
    if os.geteuid() == 0:
        shutil.chown(keys, "postgres", "postgres")
    keys.write_text(f"[global]\nrepo2-s3-key={key}\nrepo2-s3-key-secret={secret}\n")


def prepare(settings: BackupSettings, data: list[Path], ports: list[int]) -> None:
    """The repository's directories (owned by the cluster's user) and the configuration of
    its members (data directory, port), before any starts: archive-push reads it from the
    first WAL on."""
    for path in ("pgbackrest", "log", "lock", "spool", "conf.d"):
        hand_to("postgres", settings.backups / path)
    write_keys(settings)  # the S3 repository's, when one is configured
    write_pgbackrest_conf(settings, list(zip(data, ports, strict=True)))


def create_stanza(settings: BackupSettings) -> None:
    """The stanza, once a primary runs (archive-push fails, and is retried, until then)."""
    run(pgbackrest(settings, "stanza-create"))


def up(settings: BackupSettings) -> Servers:
    """Make (first time) and start both servers, create and migrate every database, and
    create the stanza; idempotent."""
    state = settings.servers / "servers.json"
    if not state.exists():
        settings.servers.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"postgresql": free_port(), "mysql": free_port()}))
    servers = load(settings)
    prepare(settings, [servers.pg.data], [servers.pg.port])
    if not servers.pg.running():
        servers.pg.start(archive_settings(settings))  # made with them the first time
    with psycopg.connect(servers.pg.dsn(), autocommit=True) as conn:  # the settings of now
        for key, value in archive_settings(settings).items():
            if key != "archive_mode":  # only at start-up: set by init
                conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
        conn.execute("SELECT pg_reload_conf()")
    # before anything writes WAL worth archiving: archive-push fails until the stanza exists
    create_stanza(settings)
    if not servers.mariadb.running():
        servers.mariadb.start()
    for db in (*pg_databases(), *mysql_databases()):
        migrate.up(db.name, servers.dsn(db.name))  # creates the database first
    return servers


def down(settings: BackupSettings) -> None:
    servers = load(settings)
    servers.pg.stop()
    servers.mariadb.stop()


def env_lines(settings: BackupSettings) -> list[str]:
    servers = load(settings)
    return [f"{d.env_var}={servers.dsn(d.name)}" for d in (*pg_databases(), *mysql_databases())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.backups.backup_servers", description=__doc__
    )
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args(argv)
    settings = BackupSettings.from_env()
    try:
        if args.command == "up":
            up(settings)
            env_file = settings.root / "db" / "backups.env"  # make run backups=1 reads it here
            env_file.parent.mkdir(parents=True, exist_ok=True)
            env_file.write_text("\n".join(env_lines(settings)) + "\n")
            print(f"archived servers up; their DSNs: {env_file}")
        else:
            down(settings)
    except StartError as exc:
        print(f"backup servers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
