"""sqlc's own PostgreSQL end-to-end testdata through the types step, as an outside measure.

`python -m tools.sqlc_e2e <sqlc checkout>/internal/endtoend/testdata` (`make sqlc-e2e
src=...`): for every PostgreSQL package of every case, sqlc writes its request (`gen: json`,
into a temporary directory), the schema goes onto a throwaway database and every query is
prepared as `make sqlc-types` does: alone, then with sqlc's types for the parameters the
server cannot type. Prints the counts and each refused query with the server's message.
Heavy (minutes: one database per case), so not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from codegen import types_pg, typeslock
from codegen.errors import CodegenError
from codegen.placeholders import pg_slices
from tools.local.databases import PG_DEFAULT, with_database
from tools.local.dbadmin import create_database, drop_database
from tools.sqlc_run import SQLC

TIMEOUT = 60  # one sqlc run


def packages(config: Path) -> Iterator[dict[str, Any]]:
    """The PostgreSQL entries of a v1 (`packages`) or v2 (`sql`) config."""
    text = config.read_text()
    loaded = json.loads(text) if config.suffix == ".json" else yaml.safe_load(text)
    for entry in (loaded or {}).get("packages") or (loaded or {}).get("sql") or []:
        if entry.get("engine") == "postgresql":
            yield entry


def request(case: Path, entry: dict[str, Any]) -> dict[str, Any] | None:
    """sqlc's request for one entry (None when sqlc rejects the case, as some are meant to)."""
    with tempfile.TemporaryDirectory() as out:
        config = {
            "version": "2",
            "sql": [
                {
                    **{k: entry[k] for k in ("schema", "queries")},
                    "engine": "postgresql",
                    "gen": {"json": {"out": os.path.relpath(out, case)}},
                }
            ],
        }  # sqlc joins it: relative
        name = f".fixup-e2e-{os.getpid()}.yaml"
        (case / name).write_text(yaml.safe_dump(config))
        try:
            done = subprocess.run(
                [str(SQLC), "generate", "-f", name],
                cwd=case, capture_output=True, timeout=TIMEOUT, check=False,
            )  # fmt: skip
        finally:
            (case / name).unlink()
        found = Path(out) / "codegen_request.json"
        if done.returncode or not found.exists():
            return None
        data: dict[str, Any] = json.loads(found.read_text())
        return data


async def prepare_all(dsn: str, schema: list[Path], queries: list[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    conn = await asyncpg.connect(dsn)
    try:
        try:
            for file in schema:
                await conn.execute(typeslock.up_section(file.read_text()))
        except (asyncpg.PostgresError, AttributeError):  # asyncpg fails on a tag-less script
            counts["schema refused"] += 1
            return counts
        for q in queries:
            slices = [p["number"] for p in q.get("params") or [] if p["column"]["is_sqlc_slice"]]
            try:
                _, casts = await types_pg.prepare(conn, q, pg_slices(q["text"], slices, q["name"]))
            except (asyncpg.PostgresError, CodegenError) as exc:
                counts["refused"] += 1
                print(f"refused: {q['filename']}: {q['name']}: {' '.join(str(exc).split())}")
                continue
            counts["prepared with sqlc's parameter types" if casts else "prepared alone"] += 1
    finally:
        await conn.close()
    return counts


def measure(testdata: Path, server: str) -> Counter[str]:
    total: Counter[str] = Counter()
    configs = sorted([*testdata.rglob("sqlc.json"), *testdata.rglob("sqlc.yaml")])
    for config in configs:
        for entry in packages(config):
            total["packages"] += 1
            raw = request(config.parent, entry)
            if raw is None:
                total["rejected by sqlc"] += 1
                continue
            total["queries"] += len(raw.get("queries") or [])
            names = entry["schema"] if isinstance(entry["schema"], list) else [entry["schema"]]
            dsn = with_database(server, f"fixup_e2e_{uuid.uuid4().hex[:12]}")
            create_database(dsn)
            try:
                schema = typeslock.schema_paths(names, config.parent)
                total += asyncio.run(prepare_all(dsn, schema, raw.get("queries") or []))
            finally:
                drop_database(dsn)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sqlc_e2e", description=__doc__)
    parser.add_argument("testdata", type=Path, help="sqlc's internal/endtoend/testdata")
    args = parser.parse_args(argv)
    server = os.environ.get("TEST_PG_DSN") or f"{PG_DEFAULT}/postgres"
    for key, value in sorted(measure(args.testdata, server).items()):
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
