"""`make migrate-lint`'s MariaDB check: statements that copy or lock a table (MariaDB has
no squawk; ADR 0018). A table created in the same migration is exempt: it is empty and
nothing reads it yet."""

from __future__ import annotations

import re

from tools.migrations.migrate_sql import (
    ALTER_TABLE,
    Finding,
    Statement,
    identifier,
    split_top_level,
)

_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\S+)", re.I)
_CREATE_INDEX = re.compile(
    r"^CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+.*?\sON\s+(\S+)", re.I
)
_ONLINE = (
    re.compile(r"\bALGORITHM\s*=?\s*(INSTANT|INPLACE|NOCOPY)\b", re.I),
    re.compile(r"\bLOCK\s*=?\s*NONE\b", re.I),
)
_ADD_COLUMN = re.compile(
    r"^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?!(?:CONSTRAINT|INDEX|KEY|UNIQUE|PRIMARY|"
    r"FOREIGN|CHECK|FULLTEXT|SPATIAL|PERIOD|SYSTEM)\b)\S+\s+(.*)$",
    re.I | re.S,
)
_ADD_CONSTRAINT = re.compile(r"^ADD\s+(?:CONSTRAINT\s+\S+\s+)?(CHECK|FOREIGN\s+KEY)\b", re.I)
_NOT_NULL = re.compile(r"\bNOT\s+NULL\b", re.I)
_FILLED = re.compile(r"\b(DEFAULT|AUTO_INCREMENT|AS)\b", re.I)
_LOCKING = re.compile(r"^(OPTIMIZE\s+TABLE|LOCK\s+TABLES?|TRUNCATE|RENAME\s+TABLE)\b", re.I)


def mysql_findings(path: str, stmts: list[Statement]) -> list[Finding]:
    created = {identifier(m.group(1)) for s in stmts if (m := _CREATE_TABLE.match(s.sql))}
    found = []

    def add(stmt: Statement, rule: str, message: str) -> None:
        found.append(Finding(path, stmt.line, rule, message))

    for stmt in stmts:
        if m := _LOCKING.match(stmt.sql):
            add(stmt, "mysql-locks-table", f"{m.group(1).upper()} blocks the table's users")
            continue
        alter, index = ALTER_TABLE.match(stmt.sql), _CREATE_INDEX.match(stmt.sql)
        target = alter or index
        if not target or identifier(target.group(1)) in created:
            continue  # a table created in this migration is empty and unused: anything goes
        table = identifier(target.group(1))
        if not all(p.search(stmt.sql) for p in _ONLINE):
            add(
                stmt,
                "mysql-alter-without-online-algorithm",
                f"name ALGORITHM=INSTANT (or INPLACE) and LOCK=NONE on this change of {table}: "
                "the server then refuses instead of silently copying the table under a lock",
            )
        for clause in split_top_level(alter.group(2)) if alter else []:
            words = clause.split()
            head = words[0].upper() if words else ""
            if head in ("MODIFY", "CHANGE") or (
                head == "ALTER" and re.search(r"\bTYPE\b", clause, re.I)
            ):
                add(
                    stmt,
                    "changing-column-type",
                    f"{head} rewrites {table} and changes what the running release reads: "
                    "add a new column, backfill, switch the code, then drop the old one",
                )
            elif head == "RENAME" and len(words) > 1 and words[1].upper() == "COLUMN":
                add(
                    stmt,
                    "renaming-column",
                    "the running release still uses the old name: add + backfill + remove",
                )
            elif c := _ADD_CONSTRAINT.match(clause):
                add(
                    stmt,
                    "mysql-constraint-scans-table",
                    f"adding a {c.group(1).upper()} checks every row of {table} under a lock "
                    "(MariaDB has no NOT VALID): enforce it in the code first, or on a new table",
                )
            elif (
                (a := _ADD_COLUMN.match(clause))
                and _NOT_NULL.search(a.group(1))
                and not _FILLED.search(a.group(1))
            ):
                add(
                    stmt,
                    "adding-required-field",
                    f"a NOT NULL column without DEFAULT on {table}: the running release's "
                    "INSERTs do not set it; give it a constant DEFAULT",
                )
    return found
