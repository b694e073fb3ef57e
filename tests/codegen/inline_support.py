"""A sqlc project written from a schema and queries given inline, generated as its users do
(the types step on the real server, then `sqlc generate`), imported and type-checked: for
the tests of the plugin's options and of its small fixes."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.codegen.conformance import support
from tests.servers import Servers

SERVER_ENV = {"postgresql": "TEST_PG_DSN", "mysql": "TEST_MYSQL_DSN"}


def generate(
    root: Path,
    servers: Servers,
    package: str,
    *,
    engine: str,
    schema: str,
    queries: str,
    options: dict[str, object],
) -> Path:
    """`package` generated under `root` from `schema` and `queries` (one file, q.sql) with
    the plugin's `options`; its directory (import it with support.import_generated)."""
    case = root / f"{package}_case"
    (case / "queries").mkdir(parents=True)
    (case / "schema.sql").write_text(schema)
    (case / "queries" / "q.sql").write_text(queries)
    config = {
        "version": "2",
        "plugins": [
            {"name": "fixup", "process": {"cmd": str(support.PLUGIN), "format": "json"}},
        ],
        "sql": [
            {
                "engine": engine,
                "schema": ["schema.sql"],
                "queries": "queries",
                "codegen": [{"out": "out", "plugin": "fixup", "options": options}],
            }
        ],
    }
    (case / "sqlc.yaml").write_text(yaml.safe_dump(config))
    dsn = {"postgresql": servers.pg_dsn, "mysql": servers.mysql_dsn}
    env = {SERVER_ENV[engine]: dsn[engine]} if engine in SERVER_ENV else {}
    into = root / f"{package}_build"
    into.mkdir()
    return support.generate(case, into, package, env)
