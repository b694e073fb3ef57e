"""`make bench`: every benchmark, one after another, each in its own process; the figures
go to bench/results/latest.json (with the date, the core count, the load average and the
versions compared) and the benchmark tables (docs/benchmarks.md, the README's headline rows) are
regenerated from it (bench.readme).

Run: .venv/bin/python -m bench.run [--only data_access,growth] [--no-readme]
--only reruns some benchmarks and keeps the others' figures of the last run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import readme
from bench.common import ROOT

RESULTS = ROOT / "bench" / "results" / "latest.json"
# name -> command; the modules take --json, the older scripts print their figures
BENCHES: dict[str, list[str]] = {
    "data_access": ["-m", "bench.data_access"],
    "http_frameworks": ["-m", "bench.http_frameworks"],
    "http_instructions": ["-m", "bench.http_instructions", "--layers", "--cache"],
    "http_instructions_c16": [
        *("-m", "bench.http_instructions", "--clients", "16", "--requests", "64,320"),
    ],
    "http_users": ["-m", "bench.http_users"],
    # the users list through HTTP beside the peers as the table grows (issue 44: >= 5 x the
    # fastest peer at 10^6, where they scan for the statistics and the service does not)
    "http_users_100k": ["-m", "bench.http_users", "--users", "100000", "--rounds", "3"],
    "http_users_1m": [  # 5 s runs: a peer answers a few requests a second here
        *("-m", "bench.http_users", "--users", "1000000", "--rounds", "3", "--seconds", "5"),
        *("--peer-target", "5"),
    ],
    # HttpArena's async-db profile: their aiohttp + asyncpg entry beside the departments list
    # (the pinned commit when github.com answers, else their documented spec, marked)
    "httparena": ["-m", "bench.httparena"],
    "httparena_w1": ["-m", "bench.httparena", "--workers", "1"],  # one process each
    "growth": ["-m", "bench.growth"],
    "growth_lists": ["-m", "bench.growth_lists"],  # every keyset list, 10^3 -> 10^6 rows
    "memory": ["-m", "bench.memory"],
    "codegen_overhead": ["bench/codegen_overhead.py"],
    "codegen_drivers": ["-m", "bench.codegen_drivers"],
    "row_class": ["bench/row_class.py"],
    "codegen_model_types": ["bench/codegen_model_types.py"],
    "points_client": ["bench/points_client.py"],
    "users_list": ["bench/users_list.py"],
    "users_auth": ["bench/users_auth.py"],
    "chat_fanout": ["bench/chat_fanout.py"],
    "tracing_overhead": ["bench/tracing_overhead.py"],
    "orders_flow": ["bench/orders_flow.py"],
    "pgbouncer": ["bench/pgbouncer.py"],  # POOLER=pgbouncer's cost (ADR 0037)
}
JSON_OUT = {
    *("data_access", "http_frameworks", "http_instructions", "http_instructions_c16"),
    *("http_users", "http_users_100k", "http_users_1m", "growth", "growth_lists", "memory"),
    *("httparena", "httparena_w1"),
}
VERSIONS = (
    "aiohttp",
    "asyncpg",
    "aiomysql",
    "orjson",
    "uvloop",
    "pydantic",
    "SQLAlchemy",
    "aiosql",
    "fastapi",
    "starlette",
    "uvicorn",
)


def environment() -> dict[str, Any]:
    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": versions,
    }


def run_one(name: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, *BENCHES[name]]
        if name in JSON_OUT:
            command += ["--json", out.name]
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        sys.stdout.write(done.stdout)
        if done.returncode:
            sys.stderr.write(done.stderr)
            return {"error": f"exit {done.returncode}", "stderr": done.stderr[-2000:]}
        figures: dict[str, Any] = json.loads(Path(out.name).read_text()) if name in JSON_OUT else {}
    if name not in JSON_OUT:
        figures["output"] = [line for line in done.stdout.splitlines() if line.strip()]
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--only", help="comma-separated: " + ",".join(BENCHES))
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    previous = json.loads(RESULTS.read_text()) if args.only and RESULTS.exists() else {}
    results: dict[str, Any] = previous.get("benchmarks", {})
    env = environment()
    for name in names:
        print(f"== {name}", flush=True)
        results[name] = {**run_one(name), "date": env["date"]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {**env, "benchmarks": {n: results[n] for n in BENCHES if n in results}}
    RESULTS.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    if not args.no_readme:
        readme.main([])
    return 1 if any("error" in results[n] for n in names) else 0


if __name__ == "__main__":
    sys.exit(main())
