"""sqlc's own PostgreSQL end-to-end testdata through the types step, as an outside measure.

`python -m tools.sqlc_e2e <sqlc checkout>/internal/endtoend/testdata` (`make sqlc-e2e
src=...`): for every PostgreSQL package of every case, sqlc writes its request (`gen: json`,
into a temporary directory) and the types step of `make sqlc-types` runs on it
(`types_command.server_types`: a throwaway database, the schema, every query prepared
alone, then with sqlc's types for the parameters the server cannot type). Prints the
counts and each refused query with the server's message.
Heavy (minutes: one database per case), so not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from codegen import types_command
from codegen.errors import CodegenError
from tools.local.databases import PG_DEFAULT
from tools.sqlc_run import SQLC

SCHEMA_REFUSED = "the schema does not apply"  # types_command's message when the server refuses it


def packages(config: Path) -> Iterator[dict[str, Any]]:
    """The PostgreSQL entries of a v1 (`packages`) or v2 (`sql`) config."""
    text = config.read_text()
    loaded = json.loads(text) if config.suffix == ".json" else yaml.safe_load(text)
    for entry in (loaded or {}).get("packages") or (loaded or {}).get("sql") or []:
        if entry.get("engine") == "postgresql":
            yield entry


def request(case: Path, entry: dict[str, Any]) -> dict[str, Any] | None:
    """sqlc's request for one entry, as the types step reads it (`types_command.requests`);
    None when sqlc rejects the case, as some are meant to."""
    config = case / f".fixup-e2e-{os.getpid()}.yaml"
    sql = {**{k: entry[k] for k in ("schema", "queries")}, "engine": "postgresql"}
    config.write_text(yaml.safe_dump({"version": "2", "sql": [sql]}))
    try:
        return types_command.requests(config, str(SQLC))[0]
    except CodegenError:  # sqlc refused it
        return None
    finally:
        config.unlink()


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
            try:
                entries, refused = types_command.server_types(raw, server, config.parent, {})
            except (CodegenError, AttributeError) as exc:  # asyncpg: a tag-less script
                if isinstance(exc, CodegenError) and not str(exc).startswith(SCHEMA_REFUSED):
                    raise  # the server itself: nothing is measured
                total["schema refused"] += 1
                continue
            for message in refused.values():
                print(f"refused: {' '.join(message.split())}")
            total["refused"] += len(refused)
            for lock in entries.values():
                casts = "prepared with sqlc's parameter types"
                total[casts if lock.casts else "prepared alone"] += 1
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sqlc_e2e", description=__doc__)
    parser.add_argument("testdata", type=Path, help="sqlc's internal/endtoend/testdata")
    args = parser.parse_args(argv)
    server = os.environ.get("TEST_PG_DSN") or f"{PG_DEFAULT}/postgres"
    try:
        counts = measure(args.testdata, server)
    except CodegenError as exc:
        print(f"sqlc-e2e: {exc}", file=sys.stderr)
        return 1
    for key, value in sorted(counts.items()):
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
