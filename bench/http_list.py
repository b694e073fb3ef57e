"""GET /v1/departments?limit=50 under wrk: the service vs. a hand-written reference vs. bare
aiohttp, side by side in one run (interleaved rounds, medians), on loopback.

Each server is its own process with uvloop; wrk runs bounded (-d seconds per round).
Prints req/s, p50, p99 and the ratios: service / reference (target >= 0.85) and
reference / bare (the framework ceiling; reported only).
Run: .venv/bin/python bench/http_list.py [--rounds 3] [--seconds 8] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg

from services.departments.db import departments as q
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
URL_PATH = "/v1/departments?limit=50"
ROWS = 1000


async def seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    await q.copy_departments(
        conn,
        [
            q.CopyDepartmentsParams(uuid.uuid4(), f"Department {n:05d}", f"{n} Main St")
            for n in range(ROWS)
        ],
    )
    await conn.close()


def wait_ready(port: int) -> bytes:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{URL_PATH}") as resp:
                return bytes(resp.read())
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


def wrk(port: int, seconds: int, connections: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         f"http://127.0.0.1:{port}{URL_PATH}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx responses under load:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, pct("50"), pct("99")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_http_{os.getpid()}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate.up("departments", dsn)
        asyncio.run(seed(dsn))
        ports = {name: free_port() for name in ("service", "reference", "bare")}
        env = {
            **os.environ,
            "DEPARTMENTS_DATABASE_URL": dsn,
            "DEPARTMENTS_PORT": str(ports["service"]),
            "RATE_LIMIT_IP_RATE": "1000000",
            "RATE_LIMIT_IP_BURST": "1000000",
            "LOG_FILE": "/dev/null",
            "WORKERS": "1",
            "REDIS_URL": "",
            "PAGE_CACHE_BYTES": "0",  # the handler's work, not the page cache's (ADR 0056)
        }
        procs.append(
            subprocess.Popen([sys.executable, "-m", "services.departments"], env=env, cwd=ROOT)
        )
        body = wait_ready(ports["service"])
        procs.append(subprocess.Popen(
            [sys.executable, "bench/http_reference.py", "reference", str(ports["reference"]), dsn],
            cwd=ROOT,
        ))  # fmt: skip
        assert wait_ready(ports["reference"]) == body, "reference must return the same JSON"
        bare = subprocess.Popen(
            [sys.executable, "bench/http_reference.py", "bare", str(ports["bare"]), "-"],
            cwd=ROOT, stdin=subprocess.PIPE,
        )  # fmt: skip
        assert bare.stdin is not None
        bare.stdin.write(body)
        bare.stdin.close()
        procs.append(bare)
        wait_ready(ports["bare"])
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ports}
        for port in ports.values():  # warm-up
            wrk(port, 2, args.connections)
        for _ in range(args.rounds):
            for name, port in ports.items():
                results[name].append(wrk(port, args.seconds, args.connections))
        med = {
            name: tuple(statistics.median(r[i] for r in runs) for i in range(3))
            for name, runs in results.items()
        }
        # per-round ratios (each pair measured back to back), then their median
        service_ratio = statistics.median(
            s[0] / r[0] for s, r in zip(results["service"], results["reference"], strict=True)
        )
        ceiling_ratio = statistics.median(
            r[0] / b[0] for r, b in zip(results["reference"], results["bare"], strict=True)
        )
        print(
            f"GET {URL_PATH} ({ROWS} rows), wrk -c{args.connections}, {args.rounds}x{args.seconds}s"
        )
        for name, (rps, p50, p99) in med.items():
            print(f"  {name:10} {rps:9.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
        print(f"  service / reference = {service_ratio:.2f} (median of rounds; target >= 0.85)")
        print(f"  reference / bare    = {ceiling_ratio:.2f} (ceiling)")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        drop_database(dsn)


if __name__ == "__main__":
    main()
