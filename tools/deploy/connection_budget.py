"""The connections a deployment opens on each database server, against its max_connections.

    python -m tools.deploy.connection_budget [--replicas N]

A server must accept replicas x WORKERS x DB_POOL_MAX summed over the services it holds,
plus MARGIN for an operator, beside its superuser reservation; through PgBouncer
(`POOLER=pgbouncer`, ADR 0037) PostgreSQL sees `default_pool_size` per database and the
pools must fit `max_client_conn`. `make run` checks it first (docs/operations.md).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import psycopg

from lib import registry
from lib.config import ServiceSettings, load_settings
from lib.registry import Engine, Microservice
from tools.local.databases import get_database, with_database
from tools.local.dbadmin import mysql_connect, psycopg_dsn
from tools.local.pgbouncer import DEFAULT_POOL_SIZE, MAX_CLIENT_CONN

# connections kept free for an operator beside the services: a migration, the seed, a psql
MARGIN = 5


@dataclass(frozen=True, slots=True)
class Demand:
    service: str
    processes: int  # replicas x workers
    pool_max: int
    database: str = ""
    pooled: bool = False  # through PgBouncer (POOLER=pgbouncer)

    @property
    def connections(self) -> int:
        return self.processes * self.pool_max


def demands(services: tuple[Microservice, ...]) -> dict[Engine, list[Demand]]:
    """What each service's processes may open, grouped by the engine of its database."""
    found: dict[Engine, list[Demand]] = {}
    for service in services:
        settings = load_settings(ServiceSettings, service.name)
        demand = Demand(
            service.name,
            service.replicas * settings.workers,
            settings.db_pool_max,
            service.database,
            pooled=bool(settings.pooler) and service.engine == "postgresql",
        )
        found.setdefault(service.engine, []).append(demand)
    return found


@dataclass(frozen=True, slots=True)
class PoolerBudget:
    """PgBouncer's side (tools/local/pgbouncer.py): server connections per database, clients."""

    pool_size: int = DEFAULT_POOL_SIZE
    max_client_conn: int = MAX_CLIENT_CONN


def problems(
    needed: dict[Engine, list[Demand]],
    capacity: dict[Engine, int],
    pooler: PoolerBudget | None = None,
) -> list[str]:
    """One line per server whose services may open more than it accepts (and, with the
    pooled services, per PgBouncer whose clients exceed its max_client_conn)."""
    pooler = pooler or PoolerBudget()
    lines = []
    for engine, wanted in needed.items():
        direct = [d for d in wanted if not d.pooled]
        pooled = [d for d in wanted if d.pooled]
        databases = sorted({d.database for d in pooled})
        total = sum(d.connections for d in direct) + pooler.pool_size * len(databases) + MARGIN
        if total > capacity[engine]:
            parts = ", ".join(f"{d.service} {d.processes}x{d.pool_max}" for d in direct)
            if databases:
                parts += f"{', ' if parts else ''}pgbouncer {len(databases)}x{pooler.pool_size}"
            lines.append(
                f"{engine}: the services may open {total} connections ({parts}, +{MARGIN} for"
                f" tools) but the server accepts {capacity[engine]}: lower DB_POOL_MAX or"
                " WORKERS, raise max_connections, or put a pooler in front (POOLER=pgbouncer)"
            )
        clients = sum(d.connections for d in pooled)
        if clients > pooler.max_client_conn:
            lines.append(
                f"pgbouncer: the pooled services may open {clients} client connections but"
                f" PgBouncer accepts {pooler.max_client_conn}: raise max_client_conn"
            )
    return lines


def capacity_of(engine: Engine, dsn: str) -> int:
    """Connections the server accepts for clients that are not superusers."""
    if engine == "postgresql":
        admin = psycopg_dsn(with_database(dsn, "postgres"))
        with psycopg.connect(admin, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
            ).fetchone()
            assert row is not None
            return int(row[0])
    with mysql_connect(dsn, database="mysql") as my_conn, my_conn.cursor() as cur:
        cur.execute("SELECT @@max_connections")
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deploy.connection_budget", description=__doc__
    )
    parser.add_argument("--replicas", type=int, default=None, help="make run replicas=N")
    args = parser.parse_args(argv)
    services = registry.scaled(args.replicas)
    needed = demands(services)
    # one server per engine, as tools/local/local_servers.py starts them (the first service's)
    dsns = {s.engine: get_database(s.database).dsn() for s in reversed(services)}
    capacity = {engine: capacity_of(engine, dsns[engine]) for engine in needed}
    found = problems(needed, capacity)
    for line in found:
        print(f"connection budget: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
