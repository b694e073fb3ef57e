"""Instructions per request of GET /v1/departments?limit=50 (1000 rows), counted by
valgrind's callgrind: the same count for the same code and input whatever else the machine
runs, so lib/'s cost shows in one run to a fraction of a percent where wrk's req/s moves by
±10% on two shared cores (bench/http_frameworks.py).

Variants, each in its own process under callgrind: the service (the whole lib/ chain, the
access log written as in production: LOG_LEVEL=INFO), the same with tracing on (every
request sampled, its spans exported to an OTLP sink process before the count stops: ADR
0012), the service with only the request-id layer (it holds the one-connection scope the
handlers need), with `--layers` the service without each other layer in turn, the service
answering 304 (the same GET with its current If-None-Match: one stamp read; ADR 0019), and the
hand-written reference (bench/http_reference.py: aiohttp + asyncpg, no middleware). The
driver serves the app and, in the same process, sends sequential keep-alive requests over
one socket; callgrind counts only from after the warm-up (`--instr-atstart=no`, then
`callgrind_control`): a part of N1 requests, a dump, then a part of N2 requests in the same
process, so per request = (I(N2) - I(N1)) / (N2 - N1): each part starts at the return of
one `callgrind_control` call and ends in the next, so what switching the counting costs
cancels out (and the interpreter starts once a variant under valgrind, not twice); the
client's per-request reading (a few µs of parsing) is in every variant.
Instructions are not time (cache misses and allocation are not counted): this is the
deterministic half of the picture, http_frameworks the timed half.
--clients K spreads the requests over K concurrent connections (as wrk -cK): requests then
wait for one of the pool's connections, as they do under load.
With `--cache` callgrind also simulates this machine's caches: L1 misses per request, the
time instructions do not show (lib/ touches more code and data per request than the
reference; ADR 0013).
Run: .venv/bin/python -m bench.http_instructions [--requests 100,300] [--clients 1] [--layers]
     [--cache]
     python -m bench.http_instructions drive VARIANT N1 N2 K  (one variant's run;
     DEPARTMENTS_DATABASE_URL)
     python -m bench.http_instructions serve VARIANT PORT  (one variant as a server, for
     bench.profile_http --layers)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import ROOT, write_figures
from bench.http_frameworks import ROWS, seed, service_env
from bench.tracing_overhead import sink_process
from lib import tracing
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

REQUEST = b"GET /v1/departments?limit=50 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
FULL, BARE, REFERENCE = "service", "service-request-id-only", "reference"
NOT_MODIFIED = "service-304"  # the same GET with its current If-None-Match (ADR 0019)
TRACED = "service-traced"  # tracing on, every request sampled, spans sent to a sink
L1_MISSES = ("I1mr", "D1mr", "D1mw")  # callgrind's simulated L1 misses (--cache)
LAYERS = (  # create_app's middlewares after the security headers, request id, database scope
    "cors",
    "observe",
    "error_middleware",
    "ip_limit",
    "auth_middleware",
    "user_limit_middleware",
    "not_modified_middleware",
)


def build_app(variant: str) -> web.Application:
    """The app of one variant: `service`, `service-traced`, `service-request-id-only`,
    `service-without-X` or `reference`."""
    dsn = os.environ["DEPARTMENTS_DATABASE_URL"]
    if variant == REFERENCE:
        from bench.http_reference import reference_app

        return reference_app(dsn, int(os.environ.get("DB_POOL_MAX", "10")))  # as the service
    from lib.config import load_settings
    from lib.logging import configure_logging
    from services.departments.app import create_app
    from services.departments.settings import DepartmentsSettings

    settings = load_settings(DepartmentsSettings, "departments")
    configure_logging(settings.service, settings.log_level, settings.log_file)
    if variant == TRACED and not tracing.configure(settings.service):
        raise SystemExit(f"{variant}: tracing did not start (OTEL_EXPORTER_OTLP_ENDPOINT?)")
    app = create_app(settings)
    drop = set(LAYERS) if variant == BARE else {variant.removeprefix("service-without-")}
    for middleware in list(app.middlewares):
        if middleware.__name__ in drop:
            app.middlewares.remove(middleware)
    return app


async def drive(variant: str, n1: int, n2: int, clients: int) -> None:
    """Serve the variant and send it `n1`, then `n2` requests over `clients` keep-alive
    connections, each sequential (after 20 a connection to warm up), a callgrind dump
    between the two parts."""
    runner = web.AppRunner(build_app(variant), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
    request, answer = REQUEST, b"HTTP/1.1 200"
    if variant == NOT_MODIFIED:  # the list's current tag, read once, sent back each time
        reader, writer = connections[0]
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
        tag = head.split(b"ETag: ")[1].split(b"\r\n")[0]
        request = REQUEST[:-2] + b"If-None-Match: " + tag + b"\r\n\r\n"
        answer = b"HTTP/1.1 304"

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for _ in range(n):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(answer):
                raise SystemExit(f"{variant}: {head[:80]!r}")
            if answer == b"HTTP/1.1 200":  # a 304 has no body
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)

    async def send_all(n: int) -> None:
        await asyncio.gather(*(send(r, w, n) for r, w in connections))

    await send_all(20)  # warm: the pool's connections, prepared statements, caches
    if tracing.ENABLED:  # the warm-up's spans are exported before the count, not in a part
        tracing.otel.provider.force_flush()
    gc.collect()
    gc.freeze()  # as lib.runner does at start-up
    control("--instr=on")  # callgrind counts from here (started with --instr-atstart=no)
    for requests, end in ((n1, "--dump"), (n2, "--instr=off")):
        await send_all(requests // clients)
        if tracing.ENABLED:  # the export of every counted request's spans is counted too
            tracing.otel.provider.force_flush()
        control(end)  # the first part to `out.1`, the second to `out` at exit
    for _, writer in connections:
        writer.close()
    await runner.cleanup()


def control(command: str) -> None:
    """Switch callgrind's counting for this process, or dump what it counted (a no-op
    outside valgrind)."""
    if os.environ.get("FIXUP_UNDER_CALLGRIND"):
        run = ["callgrind_control", command, str(os.getpid())]
        subprocess.run(run, check=True, capture_output=True)


def count(
    variant: str, n1: int, n2: int, clients: int, dsn: str, tmp: Path, sink: str, cache: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """callgrind's totals of the two parts of one driver run (`sink`: the OTLP endpoint):
    instructions (Ir) and, with `cache`, its simulated L1 misses (I1mr, D1mr, D1mw)."""
    out = tmp / f"{variant}.out"
    env = {
        # the settings need a port; the driver serves on an ephemeral one of its own
        **{k: v for k, v in service_env(dsn, free_port(), 1).items() if not k.startswith("OTEL_")},
        "PYTHONPATH": str(ROOT),
        "FIXUP_UNDER_CALLGRIND": "1",
        "PYTHONHASHSEED": "0",  # the same dict and set layouts in every run
    }  # as bench/http_frameworks runs the service (port unused)
    if variant == TRACED:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink  # batches as under load: full ones, flushed
    module = [sys.executable, "-m", "bench.http_instructions"]
    command = [*module, "drive", variant, str(n1), str(n2), str(clients)]
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    if cache:
        valgrind.append("--cache-sim=yes")  # caches modelled on this machine's
    run = subprocess.run(
        [*valgrind, f"--callgrind-out-file={out}", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:  # the driver's own message, not valgrind's banner alone
        raise RuntimeError(f"{variant} driver exited {run.returncode}: {run.stderr[-2000:]}")
    return totals(out.with_name(out.name + ".1")), totals(out)


def totals(part: Path) -> dict[str, int]:
    """The `totals:` line of one part callgrind wrote, by event (its `summary:` line is of
    the whole run only in the first part)."""
    events: list[str] = []
    found: dict[str, int] = {}
    for line in part.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("totals:"):
            found = dict(zip(events, (int(n) for n in line.split()[1:]), strict=False))
    if not found.get("Ir"):
        raise RuntimeError(f"no instruction total in {part}")
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.http_instructions")
    parser.add_argument("--requests", default="100,300", help="N1,N2 requests per run")
    parser.add_argument("--layers", action="store_true", help="also each layer removed alone")
    parser.add_argument("--clients", type=int, default=1, help="concurrent connections")
    parser.add_argument("--cache", action="store_true", help="also simulated L1 misses")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    n1, n2 = (int(n) for n in args.requests.split(","))
    without = [f"service-without-{layer}" for layer in LAYERS] if args.layers else []
    variants = [FULL, BARE, REFERENCE, TRACED, NOT_MODIFIED, *without]
    name = f"fixup_bench_instr_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/{name}"
    try:
        migrate.up("departments", dsn)
        asyncio.run(seed(dsn))
        with (
            tempfile.TemporaryDirectory(prefix="fixup-bench-callgrind-") as tmp,
            sink_process() as sink,
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
        ):
            parts = list(
                pool.map(
                    lambda v: count(
                        v, n1, n2, args.clients, dsn, Path(tmp), sink.endpoint, args.cache
                    ),
                    variants,
                )
            )
    finally:
        drop_database(dsn)
    by_variant = dict(zip(variants, parts, strict=True))

    def per_request_of(v: str, event: str) -> int:
        first, second = by_variant[v]
        return round((second[event] - first[event]) / (n2 - n1))

    per_request = {v: per_request_of(v, "Ir") for v in variants}
    full, bare, reference, traced = (per_request[v] for v in (FULL, BARE, REFERENCE, TRACED))
    not_modified = per_request[NOT_MODIFIED]
    figures: dict[str, Any] = {
        "endpoint": f"GET /v1/departments?limit=50 ({ROWS} rows)",
        "requests": [n1, n2],
        "clients": args.clients,
        "instructions_per_request": per_request,
        "reference/service": round(reference / full, 3),
        "lib_layers_share": round((full - bare) / full, 3),
        "traced/service": round(traced / full, 3),
        "304/service": round(not_modified / full, 3),
        "otlp_exports": sink.exports,
    }
    layers = ", ".join(
        f"{v.removeprefix('service-without-')} {full - per_request[v]:+,}" for v in without
    )
    figures["rows"] = [
        [
            f"instructions per request (callgrind; deterministic), {args.clients} client(s)",
            f"service {full:,}; service with only the request-id layer {bare:,}; "
            f"hand-written reference {reference:,}",
        ],
        [
            "reference/service by instructions (the req/s target is >= 0.95)",
            f"{figures['reference/service']:.3f}; the layers after request id are "
            f"{100 * figures['lib_layers_share']:.1f}% of the service's instructions"
            + (f" (each: {layers})" if layers else ""),
        ],
        [
            "tracing on, every request sampled, by instructions (issue target <= 15% more)",
            f"{traced:,} vs {full:,}: {figures['traced/service']:.3f}x (spans exported to an "
            "OTLP sink within the count)",
        ],
        [
            "a conditional GET answered 304 (its current If-None-Match), by instructions",
            f"{not_modified:,} vs the 200's {full:,}: {figures['304/service']:.3f}x "
            "(the stamp read and its connection lease are most of it: ADR 0019)",
        ],
    ]
    if args.cache:
        misses = {v: sum(per_request_of(v, e) for e in L1_MISSES) for v in variants}
        figures["l1_misses_per_request"] = misses
        figures["rows"].append(
            [
                "L1 misses per request (callgrind --cache-sim: instruction + data read + write)",
                f"service {misses[FULL]:,}; service with only the request-id layer "
                f"{misses[BARE]:,}; hand-written reference {misses[REFERENCE]:,}; "
                f"reference/service {misses[REFERENCE] / misses[FULL]:.3f} (ADR 0013)",
            ]
        )
    for what, figure in figures["rows"]:
        print(f"{what}: {figure}")
    write_figures(args.json, figures)
    return figures


def serve(variant: str, port: int) -> None:
    """One variant as a server on `port`, uvloop's loop, no aiohttp access log (as the
    service runs): bench.profile_http --layers times each under wrk."""
    import uvloop

    app = build_app(variant)
    web.run_app(
        app, host="127.0.0.1", port=port, print=None, access_log=None, loop=uvloop.new_event_loop()
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["drive"]:
        import uvloop

        uvloop.run(drive(sys.argv[2], *(int(n) for n in sys.argv[3:6])))
    elif sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
