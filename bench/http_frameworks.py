"""GET /v1/departments?limit=50 (1000 rows) under wrk: this project vs what users would
write instead, every server its own process, side by side in one run on loopback.

  service     services.departments, WORKERS=1 (all of lib/: auth, limits, metrics, logging)
  reference   hand-written aiohttp + asyncpg, same SQL, same bytes (bench/http_reference.py)
  bare        aiohttp returning the same bytes: the framework ceiling
  bare-layers the same behind as many pass-through middlewares as lib/'s chain: what the
              chain's depth costs by itself (server CPU per request, per layer)
  p1          FastAPI + SQLAlchemy async ORM + pydantic under uvicorn (bench/http_rivals.py)
  p2          FastAPI + raw asyncpg under uvicorn
  litestar    Litestar + msgspec Structs + raw asyncpg (bench/http_peers.py)
  blacksheep  BlackSheep + raw asyncpg + orjson (bench/http_peers.py)
  service-304 the service answering If-None-Match with the list's current ETag: 304s
              (conditional reads, ADR 0019; same process as `service`)
  service-cached the service with its page cache on (ADR 0056), warm: the same 200s, each
              after the stamp read a 304 makes, from the page kept; every other variant of
              the service runs with PAGE_CACHE_BYTES=0, so its figures stay the handler's
  service-mixed the same process as service-cached while the departments table is written
              every 100 ms (MIXED_WRITE on a connection of its own): each write moves the
              stamp, so the next request of each page is a miss and renders it again
  nginx       the gateway (tools.deploy.nginx's configuration, one worker) in front of `service`
  workers2    the service with WORKERS=2 (needs Redis for the shared limits)

Interleaved rounds (every target once per round, the order rotated), wrk -t1 in its own
process, bounded; per-round ratios, then their median. RSS of every server idle and after
the load. Targets: service >= 5 x p1, >= 2 x p2, >= 0.95 x reference, nginx >= 0.85 x
service by req/s; against the peers by server CPU per request (issue 67): the cache off
>= 1.0 x litestar and blacksheep, warm >= 1.25 x, the mixed run reported beside the warm
one; workers2 / service (what a second worker adds on two cores shared by the servers,
PostgreSQL and wrk) reported only.
Run: .venv/bin/python -m bench.http_frameworks [--rounds 3] [--seconds 2] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import (
    ROOT,
    Load,
    Writes,
    parsed_answer,
    tree_rss_mb,
    wait_ready,
    write_figures,
    wrk,
    wrk_cpu,
)
from bench.http_reference import SERVICE_LAYERS
from services.departments.db import departments as q
from tools.deploy import nginx
from tools.local.databases import PG_DEFAULT, REDIS_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

PATH = "/v1/departments?limit=50"
ROWS = 1000
PEERS = ("litestar", "blacksheep")  # answer the service's body exactly, after parsing
# the mixed run's write: one row rewritten, which moves the table's stamp (its trigger)
MIXED_WRITE = (
    "UPDATE departments SET address = address"
    " WHERE id = (SELECT id FROM departments ORDER BY name, id LIMIT 1)"
)
MIXED_INTERVAL = 0.1
# label -> (a, b, target or None: reported only, judged by "rps" or server "cpu" per request)
TARGETS: dict[str, tuple[str, str, float | None, str]] = {
    "service/reference": ("service", "reference", 0.95, "rps"),
    "service/p1": ("service", "p1", 5.0, "rps"),
    "service/p2": ("service", "p2", 2.0, "rps"),
    # issue 67, by server CPU per request: every layer on against the bare peers
    "service/litestar": ("service", "litestar", 1.0, "cpu"),
    "service/blacksheep": ("service", "blacksheep", 1.0, "cpu"),
    "service-cached/litestar": ("service-cached", "litestar", 1.25, "cpu"),
    "service-cached/blacksheep": ("service-cached", "blacksheep", 1.25, "cpu"),
    "service-mixed/litestar": ("service-mixed", "litestar", None, "cpu"),
    "service-mixed/blacksheep": ("service-mixed", "blacksheep", None, "cpu"),
    "nginx/service": ("nginx", "service", 0.85, "rps"),
    "service-304/service": ("service-304", "service", 3.0, "rps"),
    "service-cached/service": ("service-cached", "service", None, "rps"),
    "reference/bare": ("reference", "bare", None, "rps"),
    "bare-layers/bare": ("bare-layers", "bare", None, "rps"),
    # replaces issue 54's share of PostgreSQL's ceiling: what a second worker adds
    "workers2/service": ("workers2", "service", None, "rps"),
}
CACHE = {
    "service": "cache off",
    "service-cached": "cache warm",
    "service-mixed": f"cache on, a write every {MIXED_INTERVAL * 1000:g} ms",
}


async def seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    await q.copy_departments(
        conn,
        [
            q.CopyDepartmentsParams(uuid.uuid4(), f"Department {n:05d}", f"{n} Main St")
            for n in range(ROWS)
        ],
    )
    await conn.execute("ANALYZE departments")
    await conn.close()


def same_page(body: bytes) -> tuple[list[tuple[str, str]], int]:
    """What every variant must answer alike: the rows (id, name) in order, and the total."""
    doc = json.loads(body)
    return [(r["id"], r["name"]) for r in doc["data"]], doc["meta"]["total"]


class Servers:
    """The processes under test; stopped (terminate, then wait) on exit."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        self.headers: dict[str, list[str]] = {}  # sent by wrk to that target

    def start(self, name: str, command: list[str], url: str, **kwargs: Any) -> None:
        self.procs[name] = subprocess.Popen(command, cwd=ROOT, **kwargs)
        self.urls[name] = url

    def stop(self) -> None:
        procs = {id(p): p for p in self.procs.values()}.values()  # service-304 is `service`...
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def service_env(dsn: str, port: int, workers: int, page_cache: int = 0) -> dict[str, str]:
    """The service's environment; its page cache off unless `page_cache` bytes (ADR 0056)."""
    return {
        **os.environ,
        "DEPARTMENTS_DATABASE_URL": dsn,
        "DEPARTMENTS_PORT": str(port),
        "RATE_LIMIT_IP_RATE": "1000000",
        "RATE_LIMIT_IP_BURST": "1000000",
        "LOG_FILE": "/dev/null",
        "LOG_LEVEL": "INFO",  # the access log made as in production; /dev/null: no disk
        "WORKERS": str(workers),
        "REDIS_URL": os.environ.get("BENCH_REDIS", REDIS_DEFAULT) if workers > 1 else "",
        "PAGE_CACHE_BYTES": str(page_cache),
    }


def start_all(servers: Servers, dsn: str, runtime: Path, with_workers2: bool) -> None:
    py = sys.executable
    port = {
        name: free_port()
        for name in (
            *("service", "service-cached", "reference", "bare", "bare-layers", "p1", "p2"),
            *PEERS,
            *("nginx", "workers2"),
        )
    }

    def url(name: str) -> str:
        return f"http://127.0.0.1:{port[name]}{PATH}"

    servers.start(
        "service",
        [py, "-m", "services.departments"],
        url("service"),
        env=service_env(dsn, port["service"], 1),
    )
    body = wait_ready(url("service"))
    with urllib.request.urlopen(url("service"), timeout=5) as resp:
        tag = resp.headers["ETag"]
    conditional = urllib.request.Request(url("service"), headers={"If-None-Match": tag})
    try:
        with urllib.request.urlopen(conditional, timeout=5) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:  # urllib raises on a 304
        status = exc.code
    if status != 304:
        raise RuntimeError(f"the service answered a current If-None-Match with {status}")
    servers.procs["service-304"] = servers.procs["service"]  # the same process, conditional
    servers.urls["service-304"] = url("service")
    servers.headers["service-304"] = [f"If-None-Match: {tag}"]
    servers.start(
        "service-cached",
        [py, "-m", "services.departments"],
        url("service-cached"),
        env=service_env(dsn, port["service-cached"], 1, page_cache=8 * 1024 * 1024),
    )
    servers.procs["service-mixed"] = servers.procs["service-cached"]  # written meanwhile
    servers.urls["service-mixed"] = url("service-cached")
    servers.start(
        "reference",
        [py, "bench/http_reference.py", "reference", str(port["reference"]), dsn],
        url("reference"),
    )
    for bare in ("bare", "bare-layers"):
        servers.start(
            bare,
            [py, "bench/http_reference.py", bare, str(port[bare]), "-"],
            url(bare),
            stdin=subprocess.PIPE,
        )
        stdin = servers.procs[bare].stdin
        assert stdin is not None
        stdin.write(body)
        stdin.close()
    servers.start(
        "p1", [py, "-m", "bench.http_rivals", "fastapi-orm", str(port["p1"]), dsn], url("p1")
    )
    servers.start(
        "p2", [py, "-m", "bench.http_rivals", "fastapi-asyncpg", str(port["p2"]), dsn], url("p2")
    )
    for peer in PEERS:
        servers.start(
            peer,
            [py, "-m", "bench.http_peers", peer, "departments", str(port[peer]), dsn],
            url(peer),
        )
    layout = nginx.Layout(
        listen=f"127.0.0.1:{port['nginx']}",
        status_listen=f"127.0.0.1:{free_port()}",
        upstreams={"departments": [f"127.0.0.1:{port['service']}"]},
        runtime=runtime,
        access_log=runtime / "access.log",
        error_log=str(runtime / "error.log"),
        worker_processes="1",
    )
    nginx.render(layout)
    servers.start(
        "nginx",
        nginx.nginx_command(layout, "-g", "daemon off;"),
        f"http://127.0.0.1:{port['nginx']}/api/departments{PATH}",
    )
    if with_workers2:
        servers.start(
            "workers2",
            [py, "-m", "services.departments"],
            url("workers2"),
            env=service_env(dsn, port["workers2"], 2),
        )
    expected = same_page(body)
    for name, address in servers.urls.items():
        try:
            got = wait_ready(address)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}") from None
        if name in ("service-304", "service-mixed"):
            continue
        assert name.startswith("bare") or same_page(got) == expected, f"{name} answers another page"
        if name in PEERS:
            assert parsed_answer(got) == parsed_answer(body), f"{name} answers another body"
    assert wait_ready(servers.urls["reference"]) == body, "the reference returns the same bytes"


def ratio_row(label: str, r: dict[str, Any]) -> list[str]:
    """One ratio's [what, figure]: judged by req/s or, against the peers, by server CPU per
    request (the figure that does not count the time a server waited for a core)."""
    a = TARGETS[label][0]
    goal = f" (target ≥ {r['target']})" if r["target"] else " (reported only)"
    if r["judged_by"] == "cpu":
        met = (
            "" if r["target"] is None else (" met" if r["cpu_ratio"] >= r["target"] else " NOT met")
        )
        what = f"HTTP {label} by server CPU per request, {CACHE[a]}{goal}"
        return [what, f"{r['cpu_ratio']:.2f}{met}; req/s {r['ratio']:.2f}"]
    met = "" if r["target"] is None else (" met" if r["ratio"] >= r["target"] else " NOT met")
    cpu = "" if r["cpu_ratio"] is None else f"; by server CPU per request {r['cpu_ratio']:.2f}"
    what = f"HTTP {label} req/s{goal}"
    if label == "workers2/service":
        what = (
            "HTTP workers2/service: WORKERS=2 against 1, every layer on (the limits through"
            " Redis), req/s (reported only)"
        )
    return [what, f"{r['ratio']:.2f}{met}{cpu}"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.http_frameworks")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-workers2", action="store_true")
    parser.add_argument("--only", help="comma-separated servers to load (all start; the smoke)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (tools/packages.py)")
    if nginx.nginx_binary() is None:
        raise SystemExit(nginx.INSTALL_HINT)
    name = f"fixup_bench_http_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/{name}"
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="fixup-bench-nginx-") as runtime:
        try:
            migrate.up("departments", dsn)
            asyncio.run(seed(dsn))
            start_all(servers, dsn, Path(runtime), not args.no_workers2)
            names = [n for n in servers.urls if not args.only or n in args.only.split(",")]
            idle = {name: tree_rss_mb(servers.procs[name].pid) for name in names}

            def options(name: str) -> dict[str, Any]:
                headers = servers.headers.get(name, [])
                if name == "service-304":  # the tag now: the mixed run's writes move it
                    with urllib.request.urlopen(servers.urls[name], timeout=5) as resp:
                        headers = [f"If-None-Match: {resp.headers['ETag']}"]
                return {
                    "connections": args.connections,
                    "headers": headers,
                    "not_modified": name == "service-304",
                }

            for name in names:  # warm-up: JITs none, but pools, caches, statement caches
                wrk(servers.urls[name], seconds=1, **options(name))
            runs: dict[str, list[Load]] = {name: [] for name in names}
            writes = 0
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    load = functools.partial(
                        wrk_cpu,
                        servers.urls[name],
                        servers.procs[name].pid,
                        seconds=args.seconds,
                        **options(name),
                    )
                    if name != "service-mixed":
                        runs[name].append(load())
                        continue
                    with Writes(dsn, MIXED_WRITE, MIXED_INTERVAL) as writer:
                        runs[name].append(load())
                    writes += writer.done
            loaded = {name: tree_rss_mb(servers.procs[name].pid) for name in names}
        finally:
            servers.stop()
            drop_database(dsn)
    med = {
        name: {
            "rps": statistics.median(x.rps for x in got),
            "p50_ms": statistics.median(x.p50_ms for x in got),
            "p99_ms": statistics.median(x.p99_ms for x in got),
            "cpu_us_per_request": round(statistics.median(x.server_cpu_us for x in got), 1),
            "rss_idle_mb": [round(m, 1) for m in idle[name]],
            "rss_loaded_mb": [round(m, 1) for m in loaded[name]],
        }
        for name, got in runs.items()
    }
    ratios: dict[str, dict[str, Any]] = {}
    for label, (a, b, target, judged) in TARGETS.items():
        if a in runs and b in runs:
            pairs = list(zip(runs[a], runs[b], strict=True))
            value = statistics.median(x.rps / y.rps for x, y in pairs)
            # the inverse ratio of server CPU per request: what the throughput ratio would be
            # with a core each (reported beside it; for nginx, only nginx's own CPU counts)
            cpu = statistics.median(y.server_cpu_us / x.server_cpu_us for x, y in pairs)
            ratios[label] = {
                "ratio": round(value, 3),
                "cpu_ratio": None if a == "nginx" else round(cpu, 3),
                "target": target,
                "judged_by": judged,
            }
    figures: dict[str, Any] = {
        "endpoint": f"GET {PATH} ({ROWS} rows)",
        "wrk": f"-t1 -c{args.connections}, {args.rounds} rounds x {args.seconds:g} s",
        "servers": med,
        "ratios": ratios,
    }
    if "service-mixed" in runs:
        seconds = sum(max(1, round(args.seconds)) for _ in runs["service-mixed"])
        figures["mixed_writes_per_s"] = round(writes / seconds, 1)
    if "bare" in runs and "bare-layers" in runs:
        # what one pass-through layer costs: server CPU per request, paired by round
        per_layer = statistics.median(
            (x.server_cpu_us - y.server_cpu_us) / SERVICE_LAYERS
            for x, y in zip(runs["bare-layers"], runs["bare"], strict=True)
        )
        figures["layer_dispatch_us"] = round(per_layer, 2)
    rows = [
        [
            f"`{PATH}` req/s, p50, p99, server CPU µs per request, RSS idle → loaded (MiB)",
            "; ".join(
                f"{n} {m['rps']:.0f}, {m['p50_ms']:.1f}, {m['p99_ms']:.1f} ms, "
                f"{m['cpu_us_per_request']:.0f} µs, "
                f"{sum(m['rss_idle_mb']):.0f} → {sum(m['rss_loaded_mb']):.0f}"
                for n, m in med.items()
            ),
        ]
    ]
    for label, r in ratios.items():
        rows.append(ratio_row(label, r))
    if "layer_dispatch_us" in figures:
        rows.append(
            [
                f"HTTP server CPU per middleware layer (pass-through, {SERVICE_LAYERS} layers)",
                f"{figures['layer_dispatch_us']:.2f} µs",
            ]
        )
    figures["rows"] = rows
    print(f"{figures['endpoint']}, wrk {figures['wrk']}")
    for name, m in med.items():
        print(
            f"  {name:14} {m['rps']:8.0f} req/s  p50 {m['p50_ms']:6.2f} ms"
            f"  p99 {m['p99_ms']:6.2f} ms  CPU {m['cpu_us_per_request']:6.0f} µs/req"
            f"  RSS {sum(m['rss_idle_mb']):5.1f} -> {sum(m['rss_loaded_mb']):5.1f} MiB"
        )
    for label, r in ratios.items():
        print(
            f"  {label:26} {r['ratio']:.2f}"
            + (f"  by CPU/request {r['cpu_ratio']:.2f}" if r["cpu_ratio"] else "")
            + (f"  (target >= {r['target']} by {r['judged_by']})" if r["target"] else "")
        )
    if "mixed_writes_per_s" in figures:
        print(f"  mixed run: {figures['mixed_writes_per_s']:g} writes/s to departments")
    if "layer_dispatch_us" in figures:
        print(f"  one middleware layer: {figures['layer_dispatch_us']:.2f} µs of server CPU")
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
