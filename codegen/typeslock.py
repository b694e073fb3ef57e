"""types.lock.json: the real server's types of every query's columns and params.

Written by a types step that prepares every query on a throwaway database (a query the
server refuses is kept with its message under `refused` and not generated), read offline
by the plugin. An entry whose SQL hash differs from the query's current text is stale: an
error, unless the option `allow: [sqlc_types]` accepts sqlc's types for it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Markers after which a migration file holds its down section (the formats sqlc strips).
DOWN_MARKERS = ("-- +goose Down", "-- +migrate Down", "-- migrate:down", "---- create above")


def schema_paths(names: list[str], base: Path) -> list[Path]:
    """sqlc's `schema:` entries as files: a directory gives its *.sql (not *.down.sql)."""
    files: list[Path] = []
    for name in names:
        path = base / name
        if path.is_dir():
            files += [f for f in sorted(path.glob("*.sql")) if not f.name.endswith(".down.sql")]
        else:
            files.append(path)
    return files


def up_section(text: str) -> str:
    """A migration file without its down section and psql meta-commands (`\\restrict`,
    written by current pg_dump), as sqlc reads it."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.strip().startswith(DOWN_MARKERS):
            lines = lines[:index]
            break
    return "".join(line for line in lines if not line.lstrip().startswith("\\"))


def has_statement(script: str, *, mysql: bool = False) -> bool:
    """Whether a schema script holds a statement, not only blanks, `;` and comments (a fresh
    migration from a template is comments only: it changes no schema, and asyncpg fails on
    it, MagicStack/asyncpg#1259). `--` and `/* */` comments (nested on PostgreSQL); on
    MySQL `#` too, while `/*! */` and `/*+ */` are statements the server runs."""
    i, n = 0, len(script)
    while i < n:
        char = script[i]
        if char.isspace() or char == ";":
            i += 1
        elif script.startswith("--", i) or (mysql and char == "#"):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif script.startswith("/*", i) and not (mysql and script[i + 2 : i + 3] in ("!", "+")):
            depth, i = 1, i + 2
            while i < n and depth:
                if script.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                elif not mysql and script.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                else:
                    i += 1
        else:
            return True
    return False


def sql_hash(sql: str) -> str:
    return hashlib.sha256(sql.strip().encode()).hexdigest()[:16]


def schema_hash(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class LockEntry:
    sql_sha256: str
    columns: list[str]
    params: list[str]
    # parameters the server could type only when told sqlc's type: $n -> type (pgcasts.py)
    casts: dict[int, str] = field(default_factory=dict)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}  # no lock file: nothing


def load(path: Path) -> tuple[str, dict[str, LockEntry]]:
    """(schema hash, entries); ("", {}) when there is no lock file."""
    raw = _read(path)
    return raw.get("schema_sha256", ""), {
        name: LockEntry(
            entry["sql_sha256"],
            list(entry["columns"]),
            list(entry["params"]),
            {int(n): str(t) for n, t in entry.get("casts", {}).items()},
        )
        for name, entry in raw.get("queries", {}).items()
    }


# what a types step finds: the lock's entries, and the server's message per refused query
Found = tuple[dict[str, LockEntry], dict[str, str]]
Composites = dict[str, list[tuple[str, str]]]  # composite type -> (attribute, type) in order


def load_composites(path: Path) -> Composites:
    """The composite types the queries use, with their attributes' server types."""
    raw = _read(path).get("composites", {})
    return {name: [(a, t) for a, t in attributes] for name, attributes in raw.items()}


def refusal(query: str, exc: Exception) -> str:
    """A refused query's message, as the lock keeps it (one line)."""
    return f"query {query}: server says: {' '.join(str(exc).split())}"


Refused = dict[str, tuple[str, str]]  # query -> (SQL hash, the server's message)


def load_refused(path: Path) -> Refused:
    """The queries the server refused, with its message: not generated until they change."""
    raw = _read(path).get("refused", {})
    return {name: (entry["sql_sha256"], entry["message"]) for name, entry in raw.items()}


def dump(
    schema: str,
    entries: dict[str, LockEntry],
    composites: Composites | None = None,
    refused: Refused | None = None,
    comment: str = "the server's types per query; do not edit",
) -> str:
    body: dict[str, object] = {
        "comment": comment,
        "schema_sha256": schema,
        "queries": {
            name: {
                "sql_sha256": e.sql_sha256,
                "columns": e.columns,
                "params": e.params,
                **({"casts": {str(n): t for n, t in sorted(e.casts.items())}} if e.casts else {}),
            }
            for name, e in sorted(entries.items())
        },
    }
    if composites:
        body["composites"] = {
            name: [list(a) for a in attrs] for name, attrs in sorted(composites.items())
        }
    if refused:
        body["refused"] = {
            name: {"sql_sha256": sha, "message": message}
            for name, (sha, message) in sorted(refused.items())
        }
    return json.dumps(body, indent=2) + "\n"
