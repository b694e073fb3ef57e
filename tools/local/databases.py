"""The logical databases (one per service of lib/registry.py): engine and DSN.

One place answers "which engine, which DSN" for the migration tool, the seed loader,
the codegen drivers and the test fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from lib import registry
from lib.registry import Engine
from lib.settings_sources import env_or_file

PG_DEFAULT = registry.SERVERS["postgresql"]
MYSQL_DEFAULT = registry.SERVERS["mysql"]
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, slots=True)
class Database:
    name: str
    engine: Engine

    @property
    def env_var(self) -> str:
        return f"{self.name.upper()}_DATABASE_URL"

    def dsn(self) -> str:
        """`<DB>_DATABASE_URL` (or its file), else the local default server."""
        return env_or_file(self.env_var) or f"{registry.SERVERS[self.engine]}/fixup_{self.name}"


DATABASES: dict[str, Database] = {
    service.database: Database(service.database, service.engine)
    for service in registry.MICROSERVICES
}


class UnknownDatabaseError(ValueError):
    def __init__(self, name: str) -> None:
        known = ", ".join(DATABASES)
        super().__init__(f"unknown db {name!r}; known databases: {known}")


def get_database(name: str) -> Database:
    try:
        return DATABASES[name]
    except KeyError:
        raise UnknownDatabaseError(name) from None


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def with_database(dsn: str, name: str) -> str:
    """The same server DSN pointing at database `name`."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
