"""The connections a deployment opens on each database server, against its max_connections.

    python -m tools.connection_budget [--replicas N]

Every process of a service holds one pool of up to `DB_POOL_MAX` connections per worker, so
a server must accept replicas x WORKERS x DB_POOL_MAX summed over the services it holds,
plus the connections an operator needs beside them (migrations, the seed, a psql: `MARGIN`)
and the ones the server keeps for superusers. `make run` checks it before it starts
anything; past the limit the answer is fewer or smaller pools, or a pooler in front of
PostgreSQL (docs/operations.md), never a service that meets "too many clients" under load.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import psycopg

from lib import registry
from lib.config import ServiceSettings, load_settings
from lib.registry import Engine, Microservice
from tools.databases import get_database, with_database
from tools.dbadmin import mysql_connect, psycopg_dsn

# connections kept free for an operator beside the services: a migration, the seed, a psql
MARGIN = 5


@dataclass(frozen=True, slots=True)
class Demand:
    service: str
    processes: int  # replicas x workers
    pool_max: int

    @property
    def connections(self) -> int:
        return self.processes * self.pool_max


def demands(services: tuple[Microservice, ...]) -> dict[Engine, list[Demand]]:
    """What each service's processes may open, grouped by the engine of its database."""
    found: dict[Engine, list[Demand]] = {}
    for service in services:
        settings = load_settings(ServiceSettings, service.name)
        demand = Demand(service.name, service.replicas * settings.workers, settings.db_pool_max)
        found.setdefault(service.engine, []).append(demand)
    return found


def problems(needed: dict[Engine, list[Demand]], capacity: dict[Engine, int]) -> list[str]:
    """One line per server whose services may open more than it accepts."""
    lines = []
    for engine, wanted in needed.items():
        total = sum(d.connections for d in wanted) + MARGIN
        if total > capacity[engine]:
            parts = ", ".join(f"{d.service} {d.processes}x{d.pool_max}" for d in wanted)
            lines.append(
                f"{engine}: the services may open {total} connections ({parts}, +{MARGIN} for"
                f" tools) but the server accepts {capacity[engine]}: lower DB_POOL_MAX or"
                " WORKERS, raise max_connections, or put a pooler in front"
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
    parser = argparse.ArgumentParser(prog="python -m tools.connection_budget", description=__doc__)
    parser.add_argument("--replicas", type=int, default=None, help="make run replicas=N")
    args = parser.parse_args(argv)
    services = registry.scaled(args.replicas)
    needed = demands(services)
    # one server per engine, as tools/local_servers.py starts them (the first service's)
    dsns = {s.engine: get_database(s.database).dsn() for s in reversed(services)}
    capacity = {engine: capacity_of(engine, dsns[engine]) for engine in needed}
    found = problems(needed, capacity)
    for line in found:
        print(f"connection budget: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
