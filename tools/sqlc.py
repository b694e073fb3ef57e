"""Drive sqlc for the six databases: generate, check, types lock, vet.

Usage: python -m tools.sqlc {generate,check,types,vet} [DB ...]   (no DB: all of them)

Running sqlc lives in tools/sqlc_run.py, the server's types in tools/sqlc_types.py, the
vet in tools/sqlc_vet.py. A query the server refuses fails its db's run, named (`file:line`
and the server's message); a query file sqlc itself rejects is named (with a hint where one
is known) and left out, the rest generated; either way the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tools.local.databases import DATABASES
from tools.proto import differences
from tools.sqlc_run import (
    QueryFailures,
    SqlcError,
    config_without,
    engine_of_config,
    rejected_files,
    request_json,
    request_without_rejected,
    run_sqlc,
    sql_dir,
    temp_config,
)
from tools.sqlc_types import lock_is_current, schema_lock_problem, types
from tools.sqlc_vet import vet

__all__ = ["QueryFailures", "SqlcError", "check", "generate", "run_sqlc", "types", "vet"]


def generate(db: str) -> None:
    """Refresh the types lock when the schema or a query changed (needs the server; fails
    loudly without it), then generate; a query the server refuses fails the run, named.
    A query file sqlc itself rejects is named and left out, the others generated."""
    request, rejected = request_without_rejected(db)
    if engine_of_config(db) != "sqlite" and not lock_is_current(db, request):
        print(f"sqlc: {db}: types lock is stale, asking the server")
        types(db, request)
    with config_without(db, rejected) as name:
        run_sqlc(sql_dir(db), config=name)
    print(f"sqlc: generated {db}")
    if rejected:
        raise QueryFailures("\n".join(f"{m} (file not generated)" for m in rejected.values()))


def check(db: str) -> None:
    """Fail when the generated code or the types lock is stale (the plugin fails on either,
    and on a refused query). A lock made for another schema is said in one line naming
    the fix, without the plugin's follow-on complaints about every query typed by
    sqlc's guess instead ('any': add an override)."""
    outs: dict[str, str] = {}

    def to_temp(config: dict[str, Any], out: str) -> None:
        outs["real"] = config["sql"][0]["codegen"][0]["out"]
        config["sql"][0]["codegen"][0]["out"] = outs["fresh"] = out

    with temp_config(db, to_temp) as name:
        try:
            run_sqlc(sql_dir(db), config=name)
        except SqlcError as exc:
            if rejected := rejected_files(db, exc):
                raise SqlcError(f"{db}: " + "\n".join(rejected.values())) from exc
            # a stale lock types every query by sqlc's guess, whose follow-on complaints
            # (a column of type 'any': add an override) would send the reader astray
            if engine_of_config(db) != "sqlite" and (
                why := schema_lock_problem(db, request_json(db))
            ):
                raise SqlcError(f"{db}: {why}; run make sqlc db={db}") from exc
            raise
        stale = differences(sql_dir(db) / outs["fresh"], sql_dir(db) / outs["real"])
    if stale:
        names = ", ".join(stale)
        raise SqlcError(f"{db}: generated code is not current ({names}); run make sqlc db={db}")
    print(f"sqlc-check: {db}: generated code and types lock are current")


COMMANDS = {"generate": generate, "check": check, "types": types, "vet": vet}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sqlc", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("dbs", nargs="*", help="default: every db with a sql/<db>/sqlc.yaml")
    args = parser.parse_args(argv)
    dbs = args.dbs or [db for db in DATABASES if (sql_dir(db) / "sqlc.yaml").exists()]
    status = 0
    for db in dbs:
        try:
            sql_dir(db)  # an unknown db name fails here, naming the known ones
            COMMANDS[args.command](db)
        except QueryFailures as exc:  # the rest of this db is done: go on with the others
            print(f"{args.command}: {exc}", file=sys.stderr)
            status = 1
        except (SqlcError, ValueError) as exc:
            print(f"{args.command}: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # one line, not a traceback
            print(f"{args.command}: {db}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
