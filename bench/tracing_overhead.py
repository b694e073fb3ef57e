"""What tracing costs: GET /v1/departments?limit=50 under wrk, four departments processes
side by side in one run (interleaved rounds, medians), on loopback (ADR 0012):

  before   the tree before tracing existed (`git archive` of the commit that precedes
           lib/tracing.py, or --before REV)
  off      this tree, no OTEL_* variables (target: within 3% of before)
  on       OTEL_EXPORTER_OTLP_ENDPOINT set, every request sampled (target: <= 15% overhead)
  on 1/10  the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG=0.1

The spans go over real OTLP/gRPC to a sink process (`tracing_overhead.py sink PORT`) that
accepts each Export without decoding it and reports how many it took. Besides req/s, each
round reads the server process's CPU time (all its threads: the span exporter's too) from
/proc: CPU per request is the steadier figure on a shared machine. Steadier still: each
variant serves the list in one process to an in-process client (no wrk), and the least
CPU per request (the process's: the exporter thread included) over a few repetitions is
compared (`inproc`; before and off twice, alternated).
Run: .venv/bin/python bench/tracing_overhead.py [--rounds 3] [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_list import URL_PATH, seed, wait_ready, wrk  # noqa: E402
from tools.local.databases import PG_DEFAULT  # noqa: E402
from tools.local.dbadmin import drop_database  # noqa: E402
from tools.local.ports import free_port  # noqa: E402
from tools.migrations import migrate  # noqa: E402

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
VARIANTS = ("before", "off", "on", "on 1/10")


def sink(port: int) -> None:
    """An OTLP/gRPC trace endpoint that takes every Export (undecoded): prints "ready" once
    it listens, and `exports=N bytes=M` on SIGTERM."""
    from concurrent import futures

    import grpc

    counts = {"exports": 0, "bytes": 0}
    lock = threading.Lock()

    def export(request: bytes, context: Any) -> bytes:
        with lock:
            counts["exports"] += 1
            counts["bytes"] += len(request)
        return b""  # an empty ExportTraceServiceResponse

    handler = grpc.method_handlers_generic_handler(
        EXPORT.split("/")[1],
        {EXPORT.split("/")[2]: grpc.unary_unary_rpc_method_handler(export)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()
    print(f"exports={counts['exports']} bytes={counts['bytes']}", flush=True)


@dataclass
class Sink:
    endpoint: str
    exports: int = 0  # known once the sink has stopped


@contextlib.contextmanager
def sink_process() -> Iterator[Sink]:
    """`sink` as a process of its own while the block runs; then how many Exports it took."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "sink", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    found = Sink(f"http://127.0.0.1:{port}")
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the OTLP sink did not start")
        yield found
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        found.exports = int(out.split("exports=")[1].split()[0]) if "exports=" in out else 0


INPROC = """
import asyncio, sys, time
from aiohttp.test_utils import TestClient, TestServer
try:
    from lib import tracing
    tracing.configure("departments")  # as lib/runner.py does (off without OTEL_*)
except ImportError:  # the tree before tracing
    tracing = None
from lib.logging import configure_logging
from services.departments.app import create_app
from services.departments.settings import DepartmentsSettings

async def main(dsn, reps, n):
    configure_logging("departments", "INFO", "/dev/null")
    settings = DepartmentsSettings.model_validate({
        "service": "departments", "database_url": dsn, "redis_url": "",
        "rate_limit_ip_rate": 1e9, "rate_limit_ip_burst": 10**9})
    async with TestClient(TestServer(create_app(settings))) as client:
        best = float("inf")
        for rep in range(reps + 1):  # the first is a warm-up
            start = time.process_time()
            for _ in range(n):
                resp = await client.get(sys.argv[4])
                await resp.read()
            if rep:
                best = min(best, (time.process_time() - start) / n * 1e6)
    if tracing is not None and tracing.ENABLED:
        await asyncio.to_thread(tracing.shutdown)
    print(best)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def inproc_cpu(tree: Path, dsn: str, reps: int, requests: int, extra: dict[str, str]) -> float:
    """Least CPU per request (us, client + server in one process) of `tree`'s service."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", INPROC, dsn, str(reps), str(requests), URL_PATH],
        cwd=tree, env={**clean, "PYTHONPATH": str(tree), **extra}, capture_output=True, text=True,
        check=True, timeout=300,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def before_revision() -> str:
    """The commit just before the one that added lib/tracing.py."""
    added = subprocess.run(
        ["git", "log", "-n1", "--diff-filter=A", "--format=%H", "HEAD", "--", "lib/tracing.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not added:
        raise SystemExit("lib/tracing.py is not committed: pass --before REV")
    return f"{added}^"


def export_tree(revision: str, target: Path) -> None:
    archive = target / "tree.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), revision], cwd=ROOT, check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(target / "tree", filter="data")
    archive.unlink()


TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def cpu_us(pid: int) -> float:
    """utime + stime of process `pid` (every thread), in microseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_US


def measure(proc: subprocess.Popen[bytes], port: int, seconds: int, connections: int) -> Round:
    before = cpu_us(proc.pid)
    rps, p50, p99 = wrk(port, seconds, connections)
    spent = cpu_us(proc.pid) - before
    return Round(rps, p50, p99, spent / max(1.0, rps * seconds))


@dataclass(frozen=True)
class Round:
    rps: float
    p50: float
    p99: float
    cpu_us: float  # server CPU per request (approximate: wrk's req/s x duration)


def start(tree: Path, port: int, dsn: str, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env = {
        **clean,
        "PYTHONPATH": str(tree),
        "DEPARTMENTS_DATABASE_URL": dsn,
        "DEPARTMENTS_PORT": str(port),
        "RATE_LIMIT_IP_RATE": "1000000",
        "RATE_LIMIT_IP_BURST": "1000000",
        "LOG_FILE": "/dev/null",
        "WORKERS": "1",
        "REDIS_URL": "",
        "PAGE_CACHE_BYTES": "0",  # the handler's work, not the page cache's (ADR 0056)
        **extra,
    }
    return subprocess.Popen([sys.executable, "-m", "services.departments"], env=env, cwd=tree)


def same_rows(body: bytes, before: bytes) -> str:
    """The page on the fields the `before` tree answers: a column added since (archived_at,
    ADR 0058) is not tracing's doing."""
    fields = set(json.loads(before)["data"][0])
    page = json.loads(body)
    page["data"] = [{k: v for k, v in row.items() if k in fields} for row in page["data"]]
    return json.dumps(page, sort_keys=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--before", default="", help="the revision to compare with")
    parser.add_argument("--dsn", default="", help="a migrated departments database to use")
    parser.add_argument("--inproc-requests", type=int, default=300, help="per repetition")
    parser.add_argument("--inproc-reps", type=int, default=4)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    own_db = not args.dsn
    dsn = args.dsn or f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_trace_{os.getpid()}"
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="fixup-bench-trace-"))
    stack = contextlib.ExitStack()
    sink = stack.enter_context(sink_process())
    try:
        if own_db:
            migrate.up("departments", dsn)
        asyncio.run(seed(dsn))
        revision = args.before or before_revision()
        export_tree(revision, tmp)
        endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
        setups: dict[str, tuple[Path, dict[str, str]]] = {
            "before": (tmp / "tree", {}),
            "off": (ROOT, {}),
            "on": (ROOT, endpoint),
            "on 1/10": (
                ROOT,
                {
                    **endpoint,
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": "0.1",
                },
            ),
        }
        ports = {name: free_port() for name in VARIANTS}
        servers = {}
        for name, (tree, extra) in setups.items():
            servers[name] = start(tree, ports[name], dsn, extra)
            procs.append(servers[name])
        bodies = {name: wait_ready(port) for name, port in ports.items()}
        assert len({same_rows(body, bodies["before"]) for body in bodies.values()}) == 1, (
            "every variant must answer the same JSON"
        )
        results: dict[str, list[Round]] = {name: [] for name in VARIANTS}
        for port in ports.values():  # warm-up
            wrk(port, 1, args.connections)
        for _ in range(args.rounds):
            for name, port in ports.items():
                results[name].append(measure(servers[name], port, args.seconds, args.connections))
        for proc in procs:  # the machine to the in-process runs alone
            proc.terminate()
        inproc: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for name in ("before", "off", *VARIANTS):  # before and off twice, alternated
            tree, extra = setups[name]
            inproc[name].append(
                inproc_cpu(tree, dsn, args.inproc_reps, args.inproc_requests, extra)
            )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        stack.close()  # the sink stops: its export count is known
        shutil.rmtree(tmp, ignore_errors=True)
        if own_db:
            drop_database(dsn)

    def ratio(name: str, base: str) -> float:
        """Median over rounds of the per-round req/s ratio (measured back to back)."""
        pairs = zip(results[name], results[base], strict=True)
        return float(statistics.median(a.rps / b.rps for a, b in pairs))

    def med(name: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in results[name]))

    exports = sink.exports
    figures: dict[str, Any] = {
        "rps": {name: med(name, "rps") for name in VARIANTS},
        "p99_ms": {name: med(name, "p99") for name in VARIANTS},
        "cpu_us": {name: med(name, "cpu_us") for name in VARIANTS},
        "off/before": ratio("off", "before"),
        "on/off": ratio("on", "off"),
        "on 1/10/off": ratio("on 1/10", "off"),
        "exports": exports,
        "before": revision,
        "inproc_us": {name: min(values) for name, values in inproc.items()},
    }
    least = figures["inproc_us"]
    figures["inproc off/before"] = least["off"] / least["before"]
    figures["inproc on/off"] = least["on"] / least["off"]
    figures["inproc on 1/10/off"] = least["on 1/10"] / least["off"]
    cpu = figures["cpu_us"]
    print(
        f"GET {URL_PATH}, wrk -c{args.connections}, {args.rounds}x{args.seconds}s per variant, "
        f"before = {revision}"
    )
    for name in VARIANTS:
        print(
            f"  {name:8} {med(name, 'rps'):9.0f} req/s   p50 {med(name, 'p50'):6.2f} ms   "
            f"p99 {med(name, 'p99'):6.2f} ms   server CPU {cpu[name]:6.0f} us/request"
        )
    print(
        f"  off / before  = {figures['off/before']:.3f} req/s (target >= 0.97); "
        f"CPU/request {cpu['off'] / cpu['before']:.3f}"
    )
    print(
        f"  on / off      = {figures['on/off']:.3f} req/s (all sampled; target >= 0.85); "
        f"CPU/request {cpu['on'] / cpu['off']:.3f}"
    )
    print(
        f"  on 1/10 / off = {figures['on 1/10/off']:.3f} req/s (parentbased_traceidratio 0.1); "
        f"CPU/request {cpu['on 1/10'] / cpu['off']:.3f}"
    )
    print(f"  OTLP exports received by the sink: {exports}")
    print(
        f"  in-process CPU/request (least of {args.inproc_reps}x{args.inproc_requests}): "
        + ", ".join(f"{name} {least[name]:.0f} us" for name in VARIANTS)
    )
    print(
        f"    off / before {figures['inproc off/before']:.3f} (target <= 1.03), "
        f"on / off {figures['inproc on/off']:.3f}, "
        f"on 1/10 / off {figures['inproc on 1/10/off']:.3f}"
    )
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sink":
        sink(int(sys.argv[2]))
    else:
        main()
