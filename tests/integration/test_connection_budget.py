"""The connection budget (tools/deploy/connection_budget.py): the registry's replicas x workers x
pool sizes, summed per server, must fit the server's max_connections without a pooler; a
registry scaled past it fails naming every service and the way out."""

from __future__ import annotations

from lib import registry
from lib.registry import Engine
from tests.servers import Servers, env
from tools.deploy.connection_budget import (
    MARGIN,
    Demand,
    PoolerBudget,
    capacity_of,
    demands,
    problems,
)


def test_the_registry_fits_the_servers_it_runs_on(servers: Servers) -> None:
    capacity: dict[Engine, int] = {
        "postgresql": capacity_of("postgresql", servers.pg_dsn),
        "mysql": capacity_of("mysql", servers.mysql_dsn),
    }
    needed = demands(registry.MICROSERVICES)
    assert problems(needed, capacity) == [], (needed, capacity)


def test_a_registry_scaled_past_max_connections_fails_naming_each_service() -> None:
    needed = demands(registry.scaled(registry.MAX_REPLICAS))
    pg_services = [s.name for s in registry.MICROSERVICES if s.engine == "postgresql"]
    found = problems(needed, {"postgresql": 100, "mysql": 10_000})
    assert len(found) == 1, found
    assert found[0].startswith("postgresql: the services may open ")
    for name in pg_services:
        assert f"{name} {registry.MAX_REPLICAS}x" in found[0]
    assert "pooler" in found[0]
    assert "accepts 100" in found[0]


def test_the_margin_for_tools_counts() -> None:
    needed: dict[Engine, list[Demand]] = {"postgresql": [Demand("a", 2, 10)]}
    assert problems(needed, {"postgresql": 20 + MARGIN}) == []
    assert len(problems(needed, {"postgresql": 20 + MARGIN - 1})) == 1


def test_pooled_services_cost_the_server_only_pgbouncers_pool() -> None:
    """POOLER=pgbouncer (ADR 0037): the registry scaled past max_connections fits once its
    PostgreSQL services are PgBouncer's clients; PostgreSQL then sees pool_size per
    database, and the clients must fit PgBouncer's max_client_conn."""
    scaled = demands(registry.scaled(registry.MAX_REPLICAS))["postgresql"]
    pooled = [Demand(d.service, d.processes, d.pool_max, d.database, pooled=True) for d in scaled]
    databases = {d.database for d in pooled}
    budget = PoolerBudget(pool_size=10, max_client_conn=10_000)
    assert problems({"postgresql": scaled}, {"postgresql": 100}, budget) != []
    assert problems({"postgresql": pooled}, {"postgresql": 100}, budget) == []
    tight = 10 * len(databases) + MARGIN - 1
    found = problems({"postgresql": pooled}, {"postgresql": tight}, budget)
    assert len(found) == 1, found
    assert f"pgbouncer {len(databases)}x10" in found[0], found
    clients = sum(d.connections for d in pooled)
    few = PoolerBudget(pool_size=10, max_client_conn=clients - 1)
    found = problems({"postgresql": pooled}, {"postgresql": 100}, few)
    assert found == [
        f"pgbouncer: the pooled services may open {clients} client connections but"
        f" PgBouncer accepts {clients - 1}: raise max_client_conn"
    ]


def test_the_budget_reads_the_pooler_from_the_settings() -> None:
    with env(POOLER="pgbouncer"):
        needed = demands(registry.MICROSERVICES)
    assert all(d.pooled for d in needed["postgresql"])
    assert not any(d.pooled for d in needed["mysql"])  # PgBouncer is PostgreSQL's
    assert {d.database for d in needed["postgresql"]} == {
        s.database for s in registry.MICROSERVICES if s.engine == "postgresql"
    }
