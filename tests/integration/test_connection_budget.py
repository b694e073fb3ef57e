"""The connection budget (tools/connection_budget.py): the registry's replicas x workers x
pool sizes, summed per server, must fit the server's max_connections without a pooler; a
registry scaled past it fails naming every service and the way out."""

from __future__ import annotations

from lib import registry
from lib.registry import Engine
from tests.servers import Servers
from tools.connection_budget import MARGIN, Demand, capacity_of, demands, problems


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
