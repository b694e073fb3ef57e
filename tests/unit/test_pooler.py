"""What PgBouncer's transaction mode cannot carry (lib/pooler.py, ADR 0037): every
statement the services and lib/ send to PostgreSQL is held to it, so none leaves session
state on a server connection another client gets next."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lib import registry
from lib.pooler import pool_options, session_state, through

ROOT = Path(__file__).resolve().parents[2]
# strings of lib/ that are not PostgreSQL statements, each with why
NOT_POSTGRESQL = {
    ("lib/db/connecting.py", "SET time_zone = '+00:00', tx_isolation = 'READ-COMMITTED'"): (
        "MariaDB's init_command (never pooled)"
    ),
}
PATTERNS = ROOT / "lib" / "pooler.py"  # the names and patterns themselves


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT pg_advisory_lock(42)", "a session advisory lock"),
        ("SELECT pg_try_advisory_lock_shared(1, 2)", "a session advisory lock"),
        ("SET search_path TO app", "SET without LOCAL"),
        ("set statement_timeout = '5s'", "SET without LOCAL"),
        ("SELECT 1; SET SESSION work_mem = '64MB'", "SET without LOCAL"),
        ("SELECT set_config('app.user', $1, false)", "set_config(..., false)"),
        ("LISTEN chat", "LISTEN"),
        ("CREATE TEMP TABLE t (id int)", "a temporary table"),
        ("CREATE LOCAL TEMPORARY TABLE t (id int)", "a temporary table"),
        ("PREPARE q AS SELECT 1", "PREPARE"),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "a cursor WITH HOLD"),
    ],
)
def test_session_state_is_named(sql: str, named: str) -> None:
    found = session_state(sql)
    assert len(found) == 1, found
    assert found[0].startswith(named), found


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        "SELECT pg_advisory_xact_lock_shared(7)",
        "SET LOCAL statement_timeout = '5s'",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "UPDATE departments\nSET name = $1\nWHERE id = $2",
        "SELECT set_config('app.user', $1, true)",
        "-- SET search_path TO app (a comment)\nSELECT 1",
        "INSERT INTO t (listen, prepare) VALUES (1, 2)",
    ],
)
def test_transaction_scoped_and_plain_statements_pass(sql: str) -> None:
    assert session_state(sql) == []


def _sql_strings(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module but its docstrings: the SQL it may send."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def test_no_service_sends_session_state() -> None:
    """The PostgreSQL services' queries (sqlc's input and the generated and hand-written
    modules) and lib/: only transaction-scoped forms, so POOLER=pgbouncer is safe."""
    pg = [s for s in registry.MICROSERVICES if s.engine == "postgresql"]
    found: list[str] = []
    scanned = 0
    for service in pg:
        for path in sorted((ROOT / "sql" / service.database / "queries").glob("*.sql")):
            scanned += 1
            found += [f"{path.relative_to(ROOT)}: {n}" for n in session_state(path.read_text())]
        for path in sorted((ROOT / "services" / service.name).rglob("*.py")):
            for line, text in _sql_strings(path):
                found += [f"{path.relative_to(ROOT)}:{line}: {n}" for n in session_state(text)]
    for path in sorted(p for p in (ROOT / "lib").rglob("*.py") if p != PATTERNS):
        for line, text in _sql_strings(path):
            if (str(path.relative_to(ROOT)), text) in NOT_POSTGRESQL:
                continue
            found += [f"{path.relative_to(ROOT)}:{line}: {n}" for n in session_state(text)]
    assert found == [], "\n".join(found)
    assert scanned >= len(pg), "the services' queries were not found"


def test_the_pool_url_keeps_everything_but_the_address() -> None:
    dsn = "postgresql://app:s3cret@db.internal:5432/fixup_users?sslmode=disable"
    assert through(dsn, "127.0.0.1:6432") == (
        "postgresql://app:s3cret@127.0.0.1:6432/fixup_users?sslmode=disable"
    )
    assert through("postgresql://db:5432/x", "pgb:6432") == "postgresql://pgb:6432/x"


def test_only_the_pooler_turns_the_statement_cache_off() -> None:
    assert pool_options("pgbouncer") == {"statement_cache_size": 0}
    assert pool_options("") == {}
