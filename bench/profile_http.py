"""Where the service's CPU per request goes, against the hand-written reference.

Starts services.departments (WORKERS=1, or `--workers N` with its limits in Redis, every
worker sampled) and bench/http_reference.py on one seeded
database, measures each one's CPU per request under wrk (side by side), then samples the
service with py-spy while wrk loads it and prints the share of samples per function,
inclusive (any frame of the stack) and self (the innermost frame), for lib/ and aiohttp.
With `--layers` it times instead what each of the service's layers costs: the service, the
service with only the request-id layer and the service without each other layer in turn
(bench.http_instructions' variants, each a server of its own), and the reference, paired by
round against the service: server CPU per request and the difference, where
`bench.http_instructions --layers` counts the same layers' instructions (ADR 0005).
Run: .venv/bin/python -m bench.profile_http [--seconds 8] [--top 25] [--workers 1]
     .venv/bin/python -m bench.profile_http --layers [--rounds 12] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from bench.common import wait_ready, wrk, wrk_cpu
from bench.http_frameworks import PATH, Servers, seed, service_env
from bench.http_instructions import BARE, FULL, LAYERS, REFERENCE
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

# each server's DB_POOL_MAX under --layers, the reference's alike: ten servers side by side
# then hold at most 60 of PostgreSQL's 100 connections (at 10, the service's default, all 100)
LAYERS_POOL = 6
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


def layer_costs(dsn: str, rounds: int, connections: int) -> None:
    """Each variant's server CPU per request under wrk (`connections`, 2 s a round, the
    variants in a rotated order each round), and its difference from the service's in the
    same round; every server's pool at most LAYERS_POOL connections."""
    variants = [FULL, BARE, *(f"service-without-{layer}" for layer in LAYERS), REFERENCE]
    servers = Servers()
    try:
        for variant in variants:
            port = free_port()
            servers.start(
                variant,
                [sys.executable, "-m", "bench.http_instructions", "serve", variant, str(port)],
                f"http://127.0.0.1:{port}{PATH}",
                # the settings' own port stays unused
                env={**service_env(dsn, free_port(), 1), "DB_POOL_MAX": str(LAYERS_POOL)},
            )
        for url in servers.urls.values():
            wait_ready(url)
            wrk(url, seconds=1, connections=connections)
        cpu: dict[str, list[float]] = {variant: [] for variant in variants}
        for r in range(rounds):
            for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
                url, pid = servers.urls[variant], servers.procs[variant].pid
                measured = wrk_cpu(url, pid, seconds=2, connections=connections)
                cpu[variant].append(measured.server_cpu_us)
    finally:
        servers.stop()
    print(
        f"server CPU per request, {rounds} round(s) of 2 s at -c{connections},"
        " paired by round with the service:"
    )
    for variant in variants:
        diffs = sorted(x - y for x, y in zip(cpu[variant], cpu[FULL], strict=True))
        low, high = diffs[len(diffs) // 4], diffs[(3 * len(diffs)) // 4]
        print(
            f"  {variant:40} {statistics.median(cpu[variant]):6.0f} µs"
            f"  {statistics.median(diffs):+6.1f} µs (quartiles {low:+.0f} .. {high:+.0f})"
        )


def profile_service(dsn: str, args: argparse.Namespace) -> None:
    servers = Servers()
    try:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_http")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--raw", help="keep py-spy's raw stacks in this file")
    parser.add_argument("--workers", type=int, default=1, help="the service's WORKERS")
    parser.add_argument("--layers", action="store_true", help="time each layer removed instead")
    parser.add_argument("--connections", type=int, default=16, help="wrk's, with --layers")
    args = parser.parse_args(argv)
    if args.layers and args.workers != 1:
        raise SystemExit("--layers times one process: leave --workers at 1")
    py_spy = shutil.which("py-spy") or Path(sys.executable).with_name("py-spy").exists()
    if not args.layers and not py_spy:
        raise SystemExit("py-spy is not installed: the bench extra (make install)")
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    name = f"fixup_bench_prof_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/{name}"
    try:
        migrate.up("departments", dsn)
        asyncio.run(seed(dsn))
        if args.layers:
            layer_costs(dsn, args.rounds, args.connections)
        else:
            profile_service(dsn, args)
    finally:
        drop_database(dsn)


if __name__ == "__main__":
    main()
