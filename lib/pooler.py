"""PostgreSQL through PgBouncer in transaction mode (`POOLER=pgbouncer`, ADR 0037).

PgBouncer lends a server connection for one transaction, then gives it to another client,
so what a connection carries from one transaction to the next is not there:
- **prepared statements**: asyncpg names and caches one per query; PgBouncer 1.18 (Debian
  12's) forwards them to whichever server the next transaction gets, where it does not
  exist. The pool therefore runs with `statement_cache_size=0`: asyncpg then prepares an
  unnamed statement and binds it in the same exchange (Parse/Describe/Flush, then
  Bind/Execute/Sync), which stays on one server connection. (PgBouncer >= 1.21 with
  `max_prepared_statements` would keep the cache; ADR 0037.)
- **session state** (SET, LISTEN, temporary tables, session advisory locks, WITH HOLD
  cursors): refused. A service declares it has none with `DB_POOL_RESET=false`; with the
  pooler and `DB_POOL_RESET=true` it does not start (lib/config.py). `session_state()`
  names what a query would leave behind, and a test holds every service's SQL to it
  (tests/unit/test_pooler.py): only transaction-scoped forms (pg_advisory_xact_lock,
  SET LOCAL) are used.
Tools (migrations, the seed, backups: psycopg, session advisory locks) keep the direct
`DATABASE_URL`; only the services' pools go through `PGBOUNCER_ADDR`.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

Pooler = Literal["", "pgbouncer"]

# what a statement leaves on the server connection after its transaction, by name
SESSION_STATE: dict[str, re.Pattern[str]] = {
    "a session advisory lock (pg_advisory_lock; pg_advisory_xact_lock is the pooled form)": (
        re.compile(r"\bpg_(try_)?advisory_lock(_shared)?\s*\(", re.IGNORECASE)
    ),
    "SET without LOCAL (a session setting; SET LOCAL is the pooled form)": re.compile(
        r"^\s*SET\s+(?!LOCAL\b|TRANSACTION\b)", re.IGNORECASE
    ),
    "set_config(..., false) (a session setting)": re.compile(
        r"\bset_config\s*\([^;]*,\s*false\s*\)", re.IGNORECASE
    ),
    "LISTEN": re.compile(r"^\s*LISTEN\b", re.IGNORECASE),
    "a temporary table": re.compile(r"\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\b", re.I),
    "PREPARE (a named prepared statement)": re.compile(r"^\s*PREPARE\s+\w+", re.I),
    "a cursor WITH HOLD": re.compile(r"\bWITH\s+HOLD\b", re.IGNORECASE),
}


def _statements(sql: str) -> list[str]:
    """`sql`'s statements, comments out (a line's `-- ...`)."""
    text = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [statement for statement in text.split(";") if statement.strip()]


def session_state(sql: str) -> list[str]:
    """What `sql` (one or more statements) would leave on a pooled server connection, by
    name; [] when nothing."""
    found: list[str] = []
    for statement in _statements(sql):
        found += [
            name
            for name, pattern in SESSION_STATE.items()
            if pattern.search(statement) and name not in found
        ]
    return found


def through(dsn: str, address: str) -> str:
    """`dsn` with its host:port replaced by the pooler's `address` (user, password,
    database and parameters kept: PgBouncer forwards the same database name)."""
    parts = urlsplit(dsn)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{address}" if credentials else address
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def pool_options(pooler: Pooler) -> dict[str, Any]:
    """asyncpg pool keywords for the pooler: no named, cached prepared statements."""
    return {"statement_cache_size": 0} if pooler == "pgbouncer" else {}
