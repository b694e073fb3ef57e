"""Where the service's CPU per request goes, against the hand-written reference.

Starts services.departments (WORKERS=1, or `--workers N` with its limits in Redis, every
worker sampled) and bench/http_reference.py on one seeded
database, measures each one's CPU per request under wrk (side by side), then samples the
service with py-spy while wrk loads it and prints the share of samples per function,
inclusive (any frame of the stack) and self (the innermost frame), for lib/ and aiohttp.
Run: .venv/bin/python -m bench.profile_http [--seconds 8] [--top 25] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from bench.common import wait_ready, wrk, wrk_cpu
from bench.http_frameworks import PATH, Servers, seed, service_env
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def short(frame: str) -> str:
    """`func (path:line)` -> `func (module-ish path)`: lines merged, site-packages cut."""
    found = FRAME.match(frame.strip())
    if not found:
        return frame.strip()
    path = found["file"].split("site-packages/")[-1]
    return f"{found['func']} ({path})"


def profile(
    pid: int, url: str, seconds: float, out: Path, headers: list[str] | None = None
) -> None:
    """py-spy on `pid` and its children while wrk loads `url`; wrk in a thread, py-spy in the
    foreground."""
    load = threading.Thread(
        target=wrk,
        args=(url,),
        kwargs={"seconds": seconds + 2, "connections": 16, "headers": headers or []},
    )
    load.start()
    try:
        subprocess.run(
            [
                str(Path(sys.executable).with_name("py-spy")),  # the venv's, not PATH's
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                "--subprocesses",
            ],
            check=True,
            capture_output=True,
        )
    finally:
        load.join()


def report(raw: Path, top: int) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [short(f) for f in stack.split(";")]
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    print(f"{total} samples; share of samples, inclusive (a frame anywhere in the stack):")
    for frame, n in inclusive.most_common(top * 3):
        if any(
            k in frame
            for k in ("lib/", "services/", "aiohttp", "asyncpg", "prometheus", "structlog")
        ):
            print(f"  {n / total * 100:5.1f}%  {frame}")
    print("self (the innermost frame):")
    for frame, n in own.most_common(top):
        print(f"  {n / total * 100:5.1f}%  {frame}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_http")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--raw", help="keep py-spy's raw stacks in this file")
    parser.add_argument("--workers", type=int, default=1, help="the service's WORKERS")
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None and not Path(sys.executable).with_name("py-spy").exists():
        raise SystemExit("py-spy is not installed: the bench extra (make install)")
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    name = f"fixup_bench_prof_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/{name}"
    servers = Servers()
    try:
        migrate.up("departments", dsn)
        asyncio.run(seed(dsn))
        service, reference = free_port(), free_port()
        servers.start(
            "service",
            [sys.executable, "-m", "services.departments"],
            f"http://127.0.0.1:{service}{PATH}",
            env=service_env(dsn, service, args.workers),
        )
        servers.start(
            "reference",
            [sys.executable, "bench/http_reference.py", "reference", str(reference), dsn],
            f"http://127.0.0.1:{reference}{PATH}",
        )
        for url in servers.urls.values():
            wait_ready(url)
            wrk(url, seconds=1, connections=16)
        cpu: dict[str, list[float]] = {"service": [], "reference": []}
        for _ in range(args.rounds):
            for target in cpu:
                load = wrk_cpu(
                    servers.urls[target], servers.procs[target].pid, seconds=2, connections=16
                )
                cpu[target].append(load.server_cpu_us)
        med = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
        print(
            f"server CPU per request (median of {args.rounds}): service {med['service']:.0f} µs,"
            f" reference {med['reference']:.0f} µs, difference"
            f" {med['service'] - med['reference']:.0f} µs,"
            f" ratio reference/service {med['reference'] / med['service']:.2f}"
        )
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(args.raw) if args.raw else Path(tmp) / "profile.txt"
            profile(servers.procs["service"].pid, servers.urls["service"], args.seconds, raw)
            report(raw, args.top)
    finally:
        servers.stop()
        drop_database(dsn)


if __name__ == "__main__":
    main()
