"""The pieces of tests/integration/test_constraints.py a database's own cases use too: a
service's `tests/integration/constraints_<db>.py` (written by `make new-service`) gives
its `FACTORIES` and `BAD` with these, and test_constraints.py takes them in."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg.errors as pg

Row = dict[str, Any]
Overrides = Row | Callable[[Any], Row]  # Any: test_constraints.Db
_seq = itertools.count(1)


def uid() -> str:
    return str(uuid.uuid4())


def unique(prefix: str) -> str:
    return f"{prefix} {next(_seq)}"


@dataclass(frozen=True)
class First:
    """A column of the first valid row the module inserted into `table` (known at run time)."""

    table: str
    column: str


def idempotency_key_row(db: Any) -> Row:
    return {
        "caller": uid(),
        "key": unique("key"),
        "request_hash": b"h" * 32,
        "status_code": 201,
        "response_body": b'{"data": {}}',
    }


def audit_event_row(db: Any) -> Row:
    """An audit event (ADR 0057): the table has no constraint beyond its NOT NULLs."""
    return {"action": "createX", "resource": "x", "route": "POST /v1/x", "request_id": uid()}


def erased_user_row(db: Any) -> Row:
    """An erasure a database applied (ADR 0060): the person's id, no constraint beyond it."""
    return {"user_id": uid(), "ledgered_at": datetime.now(UTC)}


def table_version_row(db: Any) -> Row:
    """A stamp of a table the triggers never bump (conditional reads, ADR 0019)."""
    return {"name": unique("table"), "version": 1}


@dataclass(frozen=True)
class Bad:
    """Inserting `table`'s valid row with `overrides` fails with `error` naming `name`.

    name: the constraint (or, for NOT NULL, the column; for a bad enum label, the type).
    error: a psycopg exception class, or a MariaDB error code.
    """

    db: str
    table: str
    name: str
    error: type[Exception] | int
    overrides: Overrides = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.db}.{self.table}:{self.name}"


@dataclass(frozen=True)
class Good:
    """Inserting `table`'s valid row with `overrides` succeeds (an edge a constraint allows)."""

    db: str
    table: str
    why: str
    overrides: Overrides = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.db}.{self.table}:{self.why}"


def idempotency_key_cases(db: str) -> list[Bad]:
    t = "idempotency_keys"
    return [
        Bad(db, t, "idempotency_keys_pkey", pg.UniqueViolation,
            {"caller": First(t, "caller"), "key": First(t, "key")}),
        Bad(db, t, "idempotency_keys_caller_chk", pg.CheckViolation, {"caller": ""}),
        Bad(db, t, "idempotency_keys_key_chk", pg.CheckViolation, {"key": ""}),
        Bad(db, t, "idempotency_keys_key_chk", pg.CheckViolation, {"key": "k" * 256}),
        Bad(db, t, "idempotency_keys_status_code_chk", pg.CheckViolation, {"status_code": 99}),
        Bad(db, t, "idempotency_keys_status_code_chk", pg.CheckViolation, {"status_code": 600}),
        Bad(db, t, "request_hash", pg.NotNullViolation, {"request_hash": None}),
        Bad(db, t, "response_body", pg.NotNullViolation, {"response_body": None}),
        Bad(db, t, "response_headers", pg.NotNullViolation, {"response_headers": None}),
    ]  # fmt: skip


def table_version_cases(db: str) -> list[Bad]:
    t = "table_versions"
    return [
        Bad(db, t, "table_versions_pkey", pg.UniqueViolation, {"name": First(t, "name")}),
        Bad(db, t, "version", pg.NotNullViolation, {"version": None}),
    ]
