"""`make migrate-lint`: every up-migration must be safe to run while the release serves.

PostgreSQL files go through squawk (configured in .squawk.toml: which rules and why),
MariaDB files through the equivalent checks of tools/migrations/migrate_lint_mysql.py (statements
that copy or lock a table), and both through the project's own check: a column or table that
sql/<db>/queries still reads must not be dropped. The migrations listed in
migrations/lint-baseline.txt were applied before the rule (ADR 0018 says why their findings
may stay); each is pinned by its SHA-256, so editing one is a finding too (write a new
migration instead).

Usage: python -m tools.migrations.migrate_lint [FILE ...]   (default: every db's up-migrations)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlparse

from tools.local.databases import DATABASES, get_database
from tools.migrations.migrate_lint_mysql import mysql_findings
from tools.migrations.migrate_sql import (
    ALTER_TABLE,
    Finding,
    Statement,
    identifier,
    is_transactional,
    split_top_level,
    statements,
)

ROOT = Path(__file__).resolve().parents[2]
BASELINE = "migrations/lint-baseline.txt"
SQUAWK_CONFIG = ".squawk.toml"


# --- what the code still reads ---------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUALIFIED_STAR = re.compile(r"\b(\w+)\s*\.\s*\*")
_RETURNING_STAR = re.compile(r"\bRETURNING\s+\*", re.I)
_WRITE_TARGET = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.I)
_BARE_STAR = re.compile(r"(?<![.(\w])\s*\*(?!\s*\))")  # SELECT *, not count(*) or o.*


@dataclass(frozen=True, slots=True)
class Query:
    """What one query of sql/<db>/queries names: its words, and the tables whose every
    column it reads through `*` (every table it names when `all_star`)."""

    words: frozenset[str]
    starred: frozenset[str]
    all_star: bool

    @classmethod
    def parse(cls, code: str) -> Query:
        words = frozenset(w.lower() for w in _WORD.findall(code))
        starred = set()
        for m in _QUALIFIED_STAR.finditer(code):  # o.* -> the table aliased o (or named o)
            alias = m.group(1)
            starred.add(alias.lower())
            if found := re.search(rf"\b(\w+)\s+(?:AS\s+)?{re.escape(alias)}\b", code, re.I):
                starred.add(found.group(1).lower())
        rest = _QUALIFIED_STAR.sub(" ", code)
        if _RETURNING_STAR.search(rest) and (target := _WRITE_TARGET.search(rest)):
            starred.add(target.group(1).lower())  # RETURNING *: the written table's columns
            rest = _RETURNING_STAR.sub(" ", rest)
        return cls(words, frozenset(starred), bool(_BARE_STAR.search(rest)))

    def reads(self, table: str, column: str | None) -> bool:
        """Conservative: a query naming the table and the column (or `*` of it) reads it."""
        if table not in self.words:
            return False
        return column is None or column in self.words or self.all_star or table in self.starred


def query_blocks(root: Path, db: str) -> list[Query]:
    """Every query of sql/<db>/queries (and sql/common), comments removed."""
    files = sorted((root / "sql" / db / "queries").glob("*.sql"))
    files += sorted((root / "sql" / "common").glob("*.sql"))
    return [
        Query.parse(sqlparse.format(block, strip_comments=True))
        for path in files
        for block in re.split(r"^--\s*name:", path.read_text(), flags=re.MULTILINE)
    ]


def is_read(queries: list[Query], table: str, column: str | None) -> bool:
    return any(query.reads(table, column) for query in queries)


_DROP_COLUMN = re.compile(
    r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?!(?:CONSTRAINT|INDEX|KEY|PRIMARY|FOREIGN|CHECK|"
    r"DEFAULT|PARTITION|SYSTEM)\b)(\S+)",
    re.I,
)
_DROP_TABLE = re.compile(
    r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(.*?)(?:\s+(?:CASCADE|RESTRICT))?$", re.I
)


def dropped_still_read(path: str, stmts: list[Statement], blocks: list[Query]) -> list[Finding]:
    """DROP COLUMN / DROP TABLE of what a query of sql/<db>/queries still reads."""
    found = []
    for stmt in stmts:
        if m := ALTER_TABLE.match(stmt.sql):
            table = identifier(m.group(1))
            for clause in split_top_level(m.group(2)):
                if (d := _DROP_COLUMN.match(clause)) and is_read(
                    blocks, table, identifier(d.group(1))
                ):
                    column = identifier(d.group(1))
                    found.append(
                        Finding(
                            path,
                            stmt.line,
                            "drop-column-still-read",
                            f"{table}.{column} is still read by sql/ queries: stop reading it, "
                            "release, then drop it in a later migration (expand/contract)",
                        )
                    )
        elif m := _DROP_TABLE.match(stmt.sql):
            for raw in split_top_level(m.group(1)):
                if is_read(blocks, identifier(raw), None):
                    found.append(
                        Finding(
                            path,
                            stmt.line,
                            "drop-table-still-read",
                            f"table {identifier(raw)} is still used by sql/ queries: drop it in a "
                            "migration after the release that stopped using it",
                        )
                    )
    return found


# --- PostgreSQL: squawk + re-runnable concurrent index builds ---------------------------


def squawk_binary() -> str:
    here = Path(sys.executable).parent / "squawk"
    found = str(here) if here.is_file() else shutil.which("squawk")
    if not found:
        raise RuntimeError("squawk not found: make install (squawk-cli is a dev dependency)")
    return found


def squawk_findings(path: Path, rel: str, transactional: bool, root: Path) -> list[Finding]:
    """squawk on one file; a transactional file is linted as yoyo runs it (in a transaction)."""
    mode = "--assume-in-transaction" if transactional else "--no-assume-in-transaction"
    run = subprocess.run(
        [squawk_binary(), "-c", str(root / SQUAWK_CONFIG), "--reporter", "json", mode, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:
        reported = json.loads(run.stdout or "[]")
    except json.JSONDecodeError:
        raise RuntimeError(f"squawk failed on {rel}: {run.stderr.strip() or run.stdout}") from None
    return [
        Finding(rel, int(item["line"]) + 1, item["rule_name"], item["message"]) for item in reported
    ]


_CONCURRENT_INDEX = re.compile(
    r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\S+)", re.I
)
_DROP_INDEX_FIRST = re.compile(r"^DROP\s+INDEX\s+CONCURRENTLY\s+IF\s+EXISTS\s+(\S+)", re.I)


def concurrent_index_rerun(path: str, stmts: list[Statement]) -> list[Finding]:
    """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS would
    then keep: a DROP INDEX CONCURRENTLY IF EXISTS of the same name must come first."""
    dropped: set[str] = set()
    found = []
    for stmt in stmts:
        if d := _DROP_INDEX_FIRST.match(stmt.sql):
            dropped.add(identifier(d.group(1)))
        elif (c := _CONCURRENT_INDEX.match(stmt.sql)) and identifier(c.group(1)) not in dropped:
            found.append(
                Finding(
                    path,
                    stmt.line,
                    "concurrent-index-not-rerunnable",
                    f"put `DROP INDEX CONCURRENTLY IF EXISTS {identifier(c.group(1))};` before it: "
                    "a failed build leaves an INVALID index the re-run must replace",
                )
            )
    return found


# --- the whole check --------------------------------------------------------------------


def baseline(root: Path) -> dict[str, str]:
    """path -> sha256 of the migrations whose findings predate the rule."""
    pinned: dict[str, str] = {}
    file = root / BASELINE
    for raw in file.read_text().splitlines() if file.is_file() else []:
        line = raw.split("#", 1)[0].strip()
        if line:
            digest, rel = line.split()
            pinned[rel] = digest
    return pinned


def up_migrations(folder: Path) -> list[Path]:
    """The up-migrations of every db under `folder` (a migrations/ tree)."""
    return [
        path
        for db in sorted(DATABASES)
        for path in sorted((folder / db).glob("[0-9][0-9][0-9][0-9]_*.sql"))
        if not path.name.endswith(".rollback.sql")
    ]


def lint_file(path: Path, root: Path = ROOT) -> list[Finding]:
    """Every finding of one up-migration of migrations/<db>/ (baseline not consulted)."""
    path = path.resolve()
    rel = path.relative_to(root.resolve()).as_posix()
    database = get_database(path.parent.name)
    text = path.read_text()
    stmts = statements(text)
    found = dropped_still_read(rel, stmts, query_blocks(root, database.name))
    if database.engine == "postgresql":
        found += squawk_findings(path, rel, is_transactional(text), root)
        found += concurrent_index_rerun(rel, stmts)
    else:
        found += mysql_findings(rel, stmts)
    return sorted(set(found))


def lint(paths: list[Path] | None = None, root: Path = ROOT) -> tuple[list[Finding], int]:
    """New findings (baseline files skipped while unchanged) and how many files were skipped."""
    pinned = baseline(root)
    found: list[Finding] = []
    skipped = 0
    for path in paths or up_migrations(root / "migrations"):
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        if rel in pinned:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest == pinned[rel]:
                skipped += 1
                continue
            found.append(
                Finding(
                    rel,
                    1,
                    "applied-migration-edited",
                    f"this migration is applied (pinned in {BASELINE}); never edit it: "
                    "undo the edit and write a new migration",
                )
            )
            continue
        found += lint_file(path, root)
    return found, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.migrations.migrate_lint", description=__doc__
    )
    parser.add_argument("files", nargs="*", type=Path, help="default: every up-migration")
    args = parser.parse_args(argv)
    try:
        found, skipped = lint([p.resolve() for p in args.files] or None, ROOT)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"migrate-lint: {exc}", file=sys.stderr)
        return 2
    for finding in found:
        print(finding)
    checked = len(args.files or up_migrations(ROOT / "migrations")) - skipped
    print(
        f"migrate-lint: {len(found)} finding(s) in {checked} migration(s); "
        f"{skipped} applied before the rule skipped ({BASELINE})",
        file=sys.stderr,
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
