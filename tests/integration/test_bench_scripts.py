"""The older benchmark scripts of `make bench` (codegen_overhead, codegen_drivers, row_class,
points_client, users_list, pgbouncer) run as `make bench` runs them, in a few seconds each,
against this run's servers, and print every figure they promise as a number: none rots
between full runs. So does `bench.profile_http --layers` (not in `make bench`: run as its
docstring says), the time each layer costs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.http_instructions import LAYERS
from bench.run import BENCHES
from tests.servers import Servers
from tools.time_scale import scaled

# what `make test svc=` selects it for (tests/selection.py):
# bench/points_client.py and bench/users_list.py
EXERCISES = ("points", "users")

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
ROW_CLASSES = (
    r"dataclass", r"dataclass\(slots\)", r"dataclass\(frozen\)", r"dataclass\(frozen, slots\)",
    r"dict",
)  # fmt: skip
# script, its shortest arguments, the lines it must print (each with its figures)
SCRIPTS = {
    "codegen_overhead": (
        ["--rounds", "1"],
        [
            rf"asyncpg  get by id .* ratio {NUMBER}",
            rf"asyncpg  list 100 rows .* ratio {NUMBER}",
            rf"aiomysql get by id .* ratio {NUMBER}",
            rf"aiomysql list 100 rows \(IN slice\) .* ratio {NUMBER}",
        ],
    ),
    "codegen_drivers": (
        ["--rounds", "1"],
        [
            rf"{op} +asyncpg +{NUMBER} µs .* psycopg +{NUMBER} µs .* psycopg\+msgspec +{NUMBER} µs"
            for op in ("get by id", "list 100 rows", "copy 1000 rows")
        ],
    ),
    "row_class": (
        [],
        [rf"^{name} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$" for name in ROW_CLASSES],
    ),
    "points_client": (
        ["--rounds", "1", "--calls", "10"],
        [
            rf"pooled +{NUMBER} µs/call",
            rf"new channel +{NUMBER} µs/call",
            rf"pooled / new channel = {NUMBER}",
            rf"upb +{NUMBER} / +{NUMBER} µs",
        ],
    ),
    "users_list": (
        ["--rounds", "1"],
        [
            rf"sequential +{NUMBER} ms",
            rf"two connections +{NUMBER} ms +ratio to sequential {NUMBER}",
            rf"one connection +{NUMBER} ms +ratio to sequential {NUMBER}",
        ],
    ),
    # ten servers side by side, each pool grown to wrk's 4 connections at most: 40 of
    # PostgreSQL's 100 (at the default -c16 and a pool of 10 each, all 100: the other
    # workers' tests were refused)
    "profile_http": (
        ["--layers", "--rounds", "1", "--connections", "4"],
        [
            rf"^  {variant} +{NUMBER} µs +[+-][0-9]+\.[0-9] µs \(quartiles"
            for variant in (
                "service",
                "service-request-id-only",
                *(f"service-without-{layer}" for layer in LAYERS),
                "reference",
            )
        ],
    ),
    "pgbouncer": (
        ["--rounds", "1", "--seconds", "0.3", "--clients", "4"],
        [
            rf"{op} +{variant} +{NUMBER} /s +p50 +{NUMBER} ms +ratio to direct {NUMBER}"
            for op in ("reads", "writes")
            for variant in ("direct", "direct, no statement cache", "through PgBouncer")
        ],
    ),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_bench_script_prints_its_figures(script: str, servers: Servers) -> None:
    argv, expected = SCRIPTS[script]
    env = {
        **os.environ,
        "BENCH_PG": servers.pg_dsn.rsplit("/", 1)[0],
        "BENCH_MYSQL": servers.mysql_dsn.rsplit("/", 1)[0],
    }
    done = subprocess.run(
        [sys.executable, *BENCHES.get(script, ["-m", f"bench.{script}"]), *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=scaled(120),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for pattern in expected:
        found = re.search(pattern, done.stdout, re.M)
        assert found, (pattern, done.stdout)
        assert all(float(value) > 0 for value in found.groups()), found.group(0)
