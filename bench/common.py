"""What every benchmark shares: interleaved timing with medians, wrk, ports, RSS, results.

Every comparison measures its variants side by side in one run (round-robin rounds, the
order rotated each round, medians), so a machine shared with other work shifts all
variants alike and the ratios stay meaningful when absolute times do not.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
Op = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Timing:
    wall_us: float  # median wall time per operation
    cpu_us: float  # median client CPU (this process) per operation


async def _timed(op: Op, n: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await op()
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


async def interleaved(
    variants: dict[str, Op], *, rounds: int, per_round: int, warmup: int = 20
) -> dict[str, Timing]:
    """Median wall and CPU time per operation of each variant, measured round-robin."""
    for op in variants.values():  # prepared-statement caches, pools, compiled SQL
        await _timed(op, warmup)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(await _timed(variants[name], per_round))
    return {
        name: Timing(statistics.median(s[0] for s in got), statistics.median(s[1] for s in got))
        for name, got in samples.items()
    }


def wait_ready(url: str, *, headers: dict[str, str] | None = None, timeout: float = 30) -> bytes:
    """The first 200 body from `url`; polls until the server listens (startup only)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=5) as resp:
                return bytes(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.2)


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    server_cpu_us: float = 0.0  # the server's CPU per request (process tree), when measured


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    headers: Sequence[str] = (),
    threads: int = 1,
    not_modified: bool = False,
    script: str | None = None,
) -> Load:
    """One bounded wrk run in its own process; a 4xx/5xx response fails the benchmark.
    `not_modified`: the responses must be bodyless 304s (wrk counts no 3xx as an error;
    their size tells them from a page). `script`: a wrk Lua script (-s)."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", script]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    requests = re.search(r"(\d+) requests in", out)
    assert requests is not None, out
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors under load on {url}:\n{out}")
    if not_modified:
        read = re.search(r"requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB) read", out)
        assert read is not None, out
        size = float(read[1]) * {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}[read[2]]
        if size / int(requests[1]) > 1024:
            raise RuntimeError(f"{url} answered bodies, not 304s:\n{out}")

    def pct(label: str) -> float:
        found = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        assert found is not None, out
        return float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps is not None, out
    return Load(float(rps[1]), pct("50"), pct("99"), int(requests[1]))


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    parent = psutil.Process(pid)
    total = 0.0
    for proc in [parent, *parent.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def wrk_cpu(url: str, pid: int, **kwargs: Any) -> Load:
    """wrk, plus the server's CPU per request: steadier than req/s on a shared machine (it
    does not count the time the server waited for a core)."""
    before = tree_cpu_s(pid)
    load = wrk(url, **kwargs)
    cpu_us = (tree_cpu_s(pid) - before) / max(1, load.requests) * 1e6
    return Load(load.rps, load.p50_ms, load.p99_ms, load.requests, cpu_us)


class Writes:
    """While in use, `statement` runs every `interval` seconds on a connection of its own,
    in a thread of its own (a MIXED run: the list's table written under the readers'
    load); `done` counts the writes."""

    def __init__(self, dsn: str, statement: str, interval: float = 0.1) -> None:
        self.dsn, self.statement, self.interval = dsn, statement, interval
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                await conn.execute(self.statement)
                self.done += 1
                await asyncio.sleep(self.interval)  # pacing: a write every `interval`
        finally:
            await conn.close()

    def __enter__(self) -> Writes:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def rss_mb(pid: int) -> float:
    """Resident set size of one process, MiB."""
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def tree_rss_mb(pid: int) -> list[float]:
    """RSS of a process and each of its children (a service with WORKERS > 1 forks)."""
    parent = psutil.Process(pid)
    return [rss_mb(p.pid) for p in [parent, *parent.children(recursive=True)]]


def write_figures(path: str | None, figures: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, default=str) + "\n")


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile `pct` (0..100) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def parsed_answer(body: bytes) -> Any:
    """A JSON body as values, so that answers of different encoders compare equal: times
    as aware datetimes ("Z" and "+00:00" alike), numbers with a fraction as Decimal."""

    def value(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [value(x) for x in v]
        if isinstance(v, str) and _TIMESTAMP.match(v):
            return datetime.datetime.fromisoformat(v)
        return v

    return value(json.loads(body, parse_float=Decimal))


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def with_literals(sql: str, args: Sequence[Any]) -> str:
    """`sql` with $1..$n replaced by the literals of `args` (pgbench has no NULL variable)."""
    for n in range(len(args), 0, -1):  # $12 before $1
        sql = sql.replace(f"${n}", sql_literal(args[n - 1]))
    return sql


def pgbench_binary() -> str:
    found = shutil.which("pgbench") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if found is None:
        raise SystemExit("pgbench is not installed (it comes with postgresql: tools/packages.py)")
    return found


def pgbench_tps(dsn: str, statements: Sequence[str], *, clients: int, seconds: float) -> float:
    """The database's ceiling: how many times a second PostgreSQL alone runs `statements`
    (one transaction-less script), prepared, with `clients` connections (pgbench -M prepared)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write("".join(s.strip().rstrip(";") + ";\n" for s in statements))
        script.flush()
        command = [
            pgbench_binary(),
            *("-n", "-M", "prepared", f"-c{clients}", f"-j{min(clients, 2)}"),
            *(f"-T{max(1, round(seconds))}", "-f", script.name, dsn),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0:  # say why (too many clients, a bad statement), not only "1"
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()}")
        out = done.stdout
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out}")
    return float(found[1])
