"""HttpArena's async-db profile here: its aiohttp + asyncpg entry beside the service.

HttpArena (github.com/MDA2AV/HttpArena) loads each framework with `GET /async-db?min=10&
max=50&limit=N`, N rotated over 5, 10, 20, 35 and 50: a range query on a 100,000-row
`items` table (no index on price), each row reshaped (a nested `rating`), the page as JSON;
1,024 connections on 64 CPUs (scripts/lib/profiles.sh), here scaled to two cores: 32.

  aiohttp         their entry (frameworks/aiohttp/app.py at COMMIT, run as its container
                  runs it: one forked worker per core, each with its own pool) on their
                  seed (data/pgdb-seed.sql) in a database of its own; the only thing set
                  from outside is its port (a module constant, 8080 in their container)
  service         services.departments, every layer on (auth, limits through Redis,
                  metrics, access log), WORKERS=2 like theirs, its page cache off:
                  `GET /v1/departments?limit=N`, N rotated alike, on 100,000 departments
  service-cached  the same with its page cache warm (ADR 0056)

`--source clone` fetches the pinned commit into var/httparena/ (git over HTTPS from
github.com; nothing of theirs is committed) and fails naming what it needs when it cannot.
`--source spec` runs the profile as their documentation specifies it instead
(site/content/docs/test-profiles/h1/isolated/async-database): an aiohttp + asyncpg server
written here to that specification (the same query, defaults, clamp, reshaping and
encoder, forked per core) on rows generated to the documented schema; every figure is then
marked "from the documented spec". `auto` (the default, `make bench`): the clone when the
commit can be fetched, else the spec.

Interleaved rounds (each target once per round, the order rotated), wrk -t1 with a script
rotating the five limits per request, bounded; req/s, p99 and the server's CPU per request
(process tree) per round, the per-round ratios' median. Target: service >= 0.9 x aiohttp
by server CPU per request with the cache off.
Run: .venv/bin/python -m bench.httparena [--source auto|clone|spec] [--rounds 5] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench.common import ROOT, Load, wait_ready, write_figures, wrk_cpu
from bench.http_frameworks import Servers, service_env
from services.departments.db import departments as q
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import create_database, drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

REPOSITORY = "https://github.com/MDA2AV/HttpArena"
COMMIT = "01193b65cc449000ec8881d0ab1f7fb5ab98b2fb"  # frameworks/aiohttp with /async-db
CHECKOUT = ROOT / "var" / "httparena" / COMMIT[:12]
ENTRY = Path("frameworks/aiohttp/app.py")
SEED = Path("data/pgdb-seed.sql")
LIMITS = (5, 10, 20, 35, 50)
THEIR_CONNECTIONS, THEIR_CPUS, CORES = 1024, 64, 2
CONNECTIONS = THEIR_CONNECTIONS * CORES // THEIR_CPUS
ROWS = 100_000
POOL = 10  # connections per worker, each server alike (the service's DB_POOL_MAX default)
TARGET = 0.9  # service / aiohttp by server CPU per request, cache off (issue 67)
SPEC_NOTE = "from the documented spec (the repository could not be fetched here)"


class Unavailable(RuntimeError):
    """The pinned commit could not be had here; the message says what is needed."""


def run_git(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise Unavailable(
            f"cannot fetch {REPOSITORY} at {COMMIT}: {why}. Needs git and HTTPS access to "
            "github.com (port 443); or run with --source spec"
        )


def checkout() -> Path:
    """The pinned commit's tree under var/httparena/, fetched once (depth 1)."""
    if (CHECKOUT / ENTRY).is_file():
        return CHECKOUT
    if shutil.which("git") is None:
        raise Unavailable("git is not installed (apt-get install -y git); or --source spec")
    partial = CHECKOUT.with_name(CHECKOUT.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        run_git("init", "-q", cwd=partial)
        run_git("fetch", "-q", "--depth", "1", REPOSITORY, COMMIT, cwd=partial)
        run_git("checkout", "-q", "FETCH_HEAD", cwd=partial)
        for needed in (ENTRY, SEED):
            if not (partial / needed).is_file():
                raise Unavailable(f"{REPOSITORY} at {COMMIT} has no {needed}")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(CHECKOUT)
    return CHECKOUT


def load_seed(tree: Path, dsn: str) -> None:
    """Their seed (CREATE TABLE items + COPY of 100,000 rows), as their Postgres loads it."""
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql is not installed (it comes with postgresql: tools/packages.py)")
    subprocess.run(
        [psql, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(tree / SEED), dsn],
        check=True,
        capture_output=True,
        timeout=600,
    )
    subprocess.run([psql, "-q", "-c", "ANALYZE items", dsn], check=True, capture_output=True)


# --- the profile from its documented specification ---------------------------------------

SPEC_TABLE = """CREATE TABLE items (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
    price INTEGER NOT NULL, quantity INTEGER NOT NULL, active BOOLEAN NOT NULL,
    tags JSONB NOT NULL, rating_score INTEGER NOT NULL, rating_count INTEGER NOT NULL
)"""  # no index on price: a sequential scan, as documented
SPEC_QUERY = (
    "SELECT id, name, category, price, quantity, active, tags, rating_score, rating_count "
    "FROM items WHERE price BETWEEN $1 AND $2 LIMIT $3"
)
CATEGORIES = ("electronics", "tools", "clothing", "food", "books", "toys", "sports", "home")
TAGS = ("fast", "new", "sale", "popular", "heavy-duty", "wireless", "eco", "premium")
NAMES = ("Alpha Widget", "Pro Valve", "Core Relay", "Smart Sensor", "Ultra Gear", "Nano Hub")


async def seed_spec(dsn: str, count: int = ROWS) -> None:
    """Rows of the documented schema (100,000 there): prices 1-500 (about 8% in 10-50)."""
    rng = random.Random(42)
    rows = [
        (
            i,
            f"{rng.choice(NAMES)} {i}",
            rng.choice(CATEGORIES),
            rng.randint(1, 500),
            rng.randint(1, 1000),
            rng.random() < 0.5,
            json.dumps(rng.sample(TAGS, rng.randint(1, 4))),
            rng.randint(1, 50),
            rng.randint(1, 500),
        )
        for i in range(1, count + 1)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SPEC_TABLE)
        await conn.copy_records_to_table("items", records=rows)
        await conn.execute("ANALYZE items")
    finally:
        await conn.close()


def serve_spec(port: int, dsn: str, workers: int) -> None:
    """The documented entry: aiohttp on uvloop, a pool per forked worker sized from
    DATABASE_MAX_CONN, query parameters as integers (defaults 10, 50, 50; limit clamped to
    1-50), `rating` nested, web.json_response, the empty answer when the query fails."""
    import uvloop
    from aiohttp import web

    pools: dict[str, asyncpg.Pool] = {}

    def integer(request: web.Request, name: str, default: int) -> int:
        try:
            return int(request.query.get(name, default))
        except ValueError:
            return default

    async def async_db(request: web.Request) -> web.Response:
        limit = max(1, min(50, integer(request, "limit", 50)))
        low, high = integer(request, "min", 10), integer(request, "max", 50)
        try:
            rows = await pools["db"].fetch(SPEC_QUERY, low, high, limit)
        except (OSError, asyncpg.PostgresError):
            return web.json_response({"items": [], "count": 0})
        items = [
            {
                "id": r["id"],
                "name": r["name"],
                "category": r["category"],
                "price": r["price"],
                "quantity": r["quantity"],
                "active": r["active"],
                "tags": json.loads(r["tags"]),
                "rating": {"score": r["rating_score"], "count": r["rating_count"]},
            }
            for r in rows
        ]
        return web.json_response({"items": items, "count": len(items)})

    async def open_pool(_: web.Application) -> None:
        budget = int(os.environ.get("DATABASE_MAX_CONN", "256"))
        pools["db"] = await asyncpg.create_pool(
            dsn, min_size=1, max_size=max(1, (budget - 8) // workers)
        )

    def serve() -> None:
        app = web.Application()
        app.router.add_get("/async-db", async_db)
        app.on_startup.append(open_pool)
        uvloop.run(serve_forever(app))

    async def serve_forever(app: web.Application) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True, backlog=4096).start()
        await asyncio.Event().wait()

    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            serve()
            os._exit(0)
        children.append(pid)

    def stop(*_: Any) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


# --- the run --------------------------------------------------------------------------------


def rotating_script(name: str, paths: list[str], directory: Path) -> str:
    """A wrk script sending the paths in turn (their load generator rotates the limits)."""
    script = directory / f"{name}.lua"
    listed = ", ".join(json.dumps(p) for p in paths)
    script.write_text(
        f"local paths = {{{listed}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n % #paths + 1\n"
        '  return wrk.format("GET", paths[n])\n'
        "end\n"
    )
    return str(script)


async def seed_departments(dsn: str, count: int = ROWS) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await q.copy_departments(
            conn,
            [
                q.CopyDepartmentsParams(uuid.uuid4(), f"Department {n:06d}", f"{n} Main St")
                for n in range(count)
            ],
        )
        await conn.execute("ANALYZE departments")
    finally:
        await conn.close()


def arena_pages(base: str) -> list[str]:
    return [f"{base}/async-db?min=10&max=50&limit={n}" for n in LIMITS]


def service_pages(base: str) -> list[str]:
    return [f"{base}/v1/departments?limit={n}" for n in LIMITS]


def check_answers(name: str, urls: list[str]) -> int:
    """Every page holds its limit's rows (their entry answers an empty 200 when its query
    fails: a count is the only way to tell); the mean body size in bytes."""
    sizes = []
    for url, limit in zip(urls, LIMITS, strict=True):
        body = wait_ready(url, timeout=60)
        doc = json.loads(body)
        rows = doc["items"] if "items" in doc else doc["data"]
        if len(rows) != limit or ("count" in doc and doc["count"] != limit):
            raise RuntimeError(f"{name}: {url} answered {len(rows)} rows, not {limit}")
        if "items" in doc and not all("score" in r["rating"] for r in rows):
            raise RuntimeError(f"{name}: {url} answered rows without rating.score")
        sizes.append(len(body))
    if "/async-db" in urls[0]:  # their validation's empty range: no hard-coded answer
        empty = json.loads(wait_ready(urls[0].split("?")[0] + "?min=9999&max=9999&limit=50"))
        if empty != {"items": [], "count": 0}:
            raise RuntimeError(f"{name}: an empty price range answered {empty}")
    return round(statistics.mean(sizes))


def start_all(
    servers: Servers, source: str, tree: Path | None, dsns: dict[str, str], workers: int
) -> None:
    py = sys.executable
    ports = {name: free_port() for name in ("aiohttp", "service", "service-cached")}
    arena_env = {
        **os.environ,
        "DATABASE_URL": dsns["arena"],
        "DATABASE_MAX_CONN": str(8 + POOL * workers),  # their sizing: (budget - 8) / cores
    }
    if source == "clone":
        assert tree is not None
        entry = tree / ENTRY
        arena_env["DATASET_PATH"] = str(tree / "data" / "dataset.json")
        launch = (
            f"import sys; sys.path.insert(0, {str(entry.parent)!r}); import app; "
            f"app.PORT = {ports['aiohttp']}; app.{'main' if workers > 1 else 'serve'}()"
        )
        command = [py, "-c", launch]
        cwd: Path = entry.parent
    else:
        command = [py, "-m", "bench.httparena", "serve-spec", str(ports["aiohttp"]), dsns["arena"]]
        command.append(str(workers))
        cwd = ROOT
    servers.procs["aiohttp"] = subprocess.Popen(command, cwd=cwd, env=arena_env)
    servers.urls["aiohttp"] = f"http://127.0.0.1:{ports['aiohttp']}"
    for name, cache in (("service", 0), ("service-cached", 8 * 1024 * 1024)):
        env = service_env(dsns["service"], ports[name], workers, page_cache=cache)
        servers.start(
            name, [py, "-m", "services.departments"], f"http://127.0.0.1:{ports[name]}", env=env
        )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["serve-spec"]:
        serve_spec(int(args_in[1]), args_in[2], int(args_in[3]))
        return {}
    parser = argparse.ArgumentParser(prog="python -m bench.httparena")
    parser.add_argument("--source", choices=("auto", "clone", "spec"), default="auto")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--workers", type=int, default=CORES, help="processes per server")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows seeded (spec; departments)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(args_in)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (tools/packages.py)")
    source, tree, why = args.source, None, ""
    if source != "spec":
        try:
            tree = checkout()
            source = "clone"
        except Unavailable as exc:
            if source == "clone":
                raise SystemExit(f"bench.httparena: {exc}") from None
            source, why = "spec", str(exc)
            print(f"bench.httparena: {exc}; running the profile {SPEC_NOTE}", flush=True)
    stem = f"fixup_bench_arena_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    base = os.environ.get("BENCH_PG", PG_DEFAULT)
    dsns = {"arena": f"{base}/{stem}_items", "service": f"{base}/{stem}_svc"}
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="fixup-bench-arena-") as scratch:
        try:
            create_database(dsns["arena"])
            if tree is not None:
                load_seed(tree, dsns["arena"])
            else:
                asyncio.run(seed_spec(dsns["arena"], args.rows))
            migrate.up("departments", dsns["service"])
            asyncio.run(seed_departments(dsns["service"], args.rows))
            start_all(servers, source, tree, dsns, args.workers)
            pages = {
                name: (arena_pages if name == "aiohttp" else service_pages)(url)
                for name, url in servers.urls.items()
            }
            sizes = {name: check_answers(name, urls) for name, urls in pages.items()}
            scripts = {
                name: rotating_script(
                    name, [urlsplit(u).path + "?" + urlsplit(u).query for u in urls], Path(scratch)
                )
                for name, urls in pages.items()
            }
            names = list(servers.urls)

            def load(name: str, seconds: float) -> Load:
                return wrk_cpu(
                    servers.urls[name],
                    servers.procs[name].pid,
                    seconds=seconds,
                    connections=args.connections,
                    script=scripts[name],
                )

            for name in names:  # warm-up: pools, statement caches, the kept pages
                load(name, 1)
            runs: dict[str, list[Load]] = {name: [] for name in names}
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    runs[name].append(load(name, args.seconds))
            for name, urls in pages.items():  # still the full pages after the load
                check_answers(name, urls)
        finally:
            servers.stop()
            for dsn in dsns.values():
                drop_database(dsn)
    return report(args, source, why, runs, sizes)


def report(
    args: argparse.Namespace,
    source: str,
    why: str,
    runs: dict[str, list[Load]],
    sizes: dict[str, int],
) -> dict[str, Any]:
    med = {
        name: {
            "rps": statistics.median(x.rps for x in got),
            "p99_ms": statistics.median(x.p99_ms for x in got),
            "cpu_us_per_request": round(statistics.median(x.server_cpu_us for x in got), 1),
            "mean_body_bytes": sizes[name],
        }
        for name, got in runs.items()
    }
    ratios = {}
    for name in ("service", "service-cached"):
        pairs = list(zip(runs[name], runs["aiohttp"], strict=True))
        ratios[f"{name}/aiohttp"] = {
            "rps": round(statistics.median(x.rps / y.rps for x, y in pairs), 3),
            "cpu": round(statistics.median(y.server_cpu_us / x.server_cpu_us for x, y in pairs), 3),
            "p99": round(statistics.median(x.p99_ms / y.p99_ms for x, y in pairs), 3),
        }
    origin = f"their entry at {COMMIT[:12]}" if source == "clone" else f"the profile {SPEC_NOTE}"
    figures: dict[str, Any] = {
        "source": source,
        "commit": COMMIT,
        "unavailable": why or None,
        "wrk": f"-t1 -c{args.connections}, {args.rounds} rounds x {args.seconds:g} s, "
        f"limits {'/'.join(map(str, LIMITS))} rotated",
        "servers": med,
        "ratios": ratios,
        "target": TARGET,
    }
    off = ratios["service/aiohttp"]["cpu"]
    rows = [
        [
            f"HttpArena async-db ({origin}), {args.workers} worker(s) each, -c{args.connections}: "
            "req/s, p99, server CPU µs per request, mean body",
            "; ".join(
                f"{n} {m['rps']:.0f}, {m['p99_ms']:.1f} ms, {m['cpu_us_per_request']:.0f} µs, "
                f"{m['mean_body_bytes']} B"
                for n, m in med.items()
            ),
        ],
        [
            f"HttpArena async-db service/aiohttp, cache off, by server CPU per request "
            f"(target ≥ {TARGET}; {origin})",
            f"{off:.2f} {'met' if off >= TARGET else 'NOT met'}; req/s "
            f"{ratios['service/aiohttp']['rps']:.2f}; p99 {ratios['service/aiohttp']['p99']:.2f}"
            " of theirs",
        ],
        [
            "HttpArena async-db service-cached/aiohttp (cache warm) by server CPU per request",
            f"{ratios['service-cached/aiohttp']['cpu']:.2f}; req/s "
            f"{ratios['service-cached/aiohttp']['rps']:.2f}; p99 "
            f"{ratios['service-cached/aiohttp']['p99']:.2f} of theirs",
        ],
    ]
    figures["rows"] = rows
    print(f"HttpArena async-db, {origin}; wrk {figures['wrk']}")
    for name, m in med.items():
        print(
            f"  {name:15} {m['rps']:8.0f} req/s  p99 {m['p99_ms']:7.2f} ms"
            f"  CPU {m['cpu_us_per_request']:6.0f} µs/req  body {m['mean_body_bytes']} B"
        )
    for label, r in ratios.items():
        print(
            f"  {label:23} req/s {r['rps']:.2f}  by CPU/request {r['cpu']:.2f}  p99 {r['p99']:.2f}"
        )
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
