"""Memory of every service: RSS idle, RSS after load, and RSS drift over a soak.

Every built service (lib/registry.py) starts as its own process (WORKERS=1) on throwaway
migrated databases; users reaches points over gRPC, so the users list loads both.
  idle     RSS once /health answers
  loaded   RSS after `--load` seconds of wrk on the service's list endpoint (points: through
           the users list)
  soak     the departments list under constant load for `--soak` seconds, RSS sampled
           every `--every` seconds; drift = last / first sample after the warm-up - 1
When the drift reaches the target (5%), or with --tracemalloc, a second soak runs on a
service with PROFILING_ENABLED (lib/http/profiling.py: tracemalloc, loopback port): a baseline
snapshot after the warm-up and the top growth sites at the end.
Targets: <= 120 MiB per process; drift < 5%.
Run: .venv/bin/python -m bench.memory [--load 3] [--soak 60] [--json F]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

from bench.common import ROOT, rss_mb, wait_ready, write_figures, wrk
from lib import registry
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, generate_keypair
from tools.check_service import list_path
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

LIST = {  # names services on purpose: the list each one is measured on
    "departments": "/v1/departments?limit=50",
    "users": "/v1/users?limit=50",
    "catalog": "/v1/services?limit=50",
    "orders": "/v1/orders?limit=50",
    "chat": "/v1/conversations?limit=50",
    "points": None,  # gRPC: loaded through the users list
}
LIMIT_MB, DRIFT = 120.0, 0.05


class Stack:
    """Every built service on its own databases; `stop()` terminates and drops them."""

    def __init__(self, suffix: str) -> None:
        self.private, self.public = generate_keypair()
        self.dsns: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        for service in registry.MICROSERVICES:
            if service.built:
                server = PG_DEFAULT if service.engine == "postgresql" else MYSQL_DEFAULT
                base = os.environ.get(
                    "BENCH_PG" if service.engine == "postgresql" else "BENCH_MYSQL", server
                )
                self.dsns[service.name] = f"{base}/fixup_bench_mem_{service.name}_{suffix}"
                self.ports[service.name] = free_port()
        self.grpc_port = free_port()
        self.env = {
            **os.environ,
            "JWT_PUBLIC_KEY": self.public,
            "JWT_PRIVATE_KEY": self.private,
            "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "RATE_LIMIT_IP_RATE": "1000000",
            "RATE_LIMIT_IP_BURST": "1000000",
            "RATE_LIMIT_USER_RATE": "1000000",
            "RATE_LIMIT_USER_BURST": "1000000",
            "LOG_FILE": "/dev/null",
            "LOG_LEVEL": "WARNING",
            "WORKERS": "1",
            "REDIS_URL": "",
            "POINTS_GRPC_PORT": str(self.grpc_port),
            "POINTS_GRPC_ADDR": f"127.0.0.1:{self.grpc_port}",
        }
        for name, port in self.ports.items():
            self.env[f"{name.upper()}_PORT"] = str(port)
            self.env[f"{name.upper()}_DATABASE_URL"] = self.dsns[name]
        for name in ("departments", "users", "catalog", "orders"):
            self.env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{self.ports[name]}"

    def token(self, role: Role) -> str:
        return TokenSigner(self.private, 3600).issue(uuid.uuid4(), role, True)[0]

    def start(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env={**self.env, **extra}
        )
        self.procs[name] = proc
        return proc

    def restart(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        """A fresh process on the same port, once the old one has exited."""
        old = self.procs.pop(name)
        old.terminate()
        old.wait(15)
        return self.start(name, **extra)

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()


def soak(url: str, pid: int, seconds: float, every: float, headers: list[str]) -> list[float]:
    """RSS samples (MiB) while wrk holds a constant load on `url` for `seconds`."""
    load = subprocess.Popen(
        [
            "wrk",
            "-t1",
            "-c8",
            f"-d{max(1, round(seconds))}s",
            *[part for h in headers for part in ("-H", h)],
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    samples = []
    next_at = time.monotonic()
    while load.poll() is None:
        samples.append(rss_mb(pid))
        next_at += every
        with contextlib.suppress(subprocess.TimeoutExpired):  # a sampling period, not a sync
            load.wait(max(0.0, next_at - time.monotonic()))
    samples.append(rss_mb(pid))
    out = load.communicate()[0]
    if load.returncode or "Non-2xx" in out:
        raise RuntimeError(f"soak load failed:\n{out}")
    return samples


def http(method: str, url: str) -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--load", type=float, default=3, help="seconds of wrk per service")
    parser.add_argument("--soak", type=float, default=60)
    parser.add_argument("--every", type=float, default=5)
    parser.add_argument("--tracemalloc", action="store_true", help="always the profiled soak")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    stack = Stack(f"{os.getpid()}_{uuid.uuid4().hex[:6]}")
    auth = {
        "users": Role.MODERATOR,
        "catalog": Role.ADMIN,
        "orders": Role.ADMIN,
        "chat": Role.CUSTOMER,
    }
    figures: dict[str, Any] = {"limit_mb": LIMIT_MB, "drift_target": DRIFT, "services": {}}
    try:
        for name, dsn in stack.dsns.items():
            migrate.up(registry.get(name).database, dsn)
        # points first (users calls it), then every other built service of the registry
        for name in sorted(stack.dsns, key=lambda n: n != "points"):
            stack.start(name)
            wait_ready(stack.url(name, "/health"))
        idle = {name: rss_mb(proc.pid) for name, proc in stack.procs.items()}
        # a service not in LIST (a new one): the first list of its document, as ADMIN
        lists = {n: list_path(n) for n in stack.dsns if n not in LIST} | LIST
        for name, path in lists.items():
            if path is None:
                continue
            role = auth.get(name, Role.ADMIN if name not in LIST else None)
            headers = [f"Authorization: Bearer {stack.token(role)}"] if role else []
            wait_ready(stack.url(name, path), headers=dict(h.split(": ", 1) for h in headers))
            wrk(stack.url(name, path), seconds=args.load, connections=8, headers=headers)
        loaded = {name: rss_mb(proc.pid) for name, proc in stack.procs.items()}
        for name in stack.procs:
            figures["services"][name] = {
                "idle_mb": round(idle[name], 1),
                "loaded_mb": round(loaded[name], 1),
            }
        # the soak: its own departments process, so the runs above do not count in it
        soak_url = stack.url("departments", LIST["departments"])
        proc = stack.restart("departments")
        wait_ready(soak_url)
        wrk(soak_url, seconds=min(5, args.soak / 4), connections=8)  # warm-up
        samples = soak(soak_url, proc.pid, args.soak, args.every, [])
        drift = samples[-1] / samples[0] - 1
        figures["soak"] = {
            "seconds": args.soak,
            "samples_mb": [round(s, 1) for s in samples],
            "drift": round(drift, 4),
        }
        if drift >= DRIFT or args.tracemalloc:
            profile_port = free_port()
            proc = stack.restart(
                "departments", PROFILING_ENABLED="true", PROFILING_PORT=str(profile_port)
            )
            wait_ready(soak_url)
            wrk(soak_url, seconds=min(5, args.soak / 4), connections=8)
            debug = f"http://127.0.0.1:{profile_port}/debug/memory"
            http("POST", f"{debug}/snapshot")
            traced = soak(soak_url, proc.pid, args.soak, args.every, [])
            top = http("GET", f"{debug}/diff?limit=8&group=lineno")
            figures["soak"]["tracemalloc"] = {
                "drift": round(traced[-1] / traced[0] - 1, 4),
                "top": top,
            }
    finally:
        stack.stop()
        for dsn in stack.dsns.values():
            drop_database(dsn)
    worst = max(max(s.values()) for s in figures["services"].values())
    figures["rows"] = [
        [
            "RSS per service idle → loaded (MiB; target ≤ 120)",
            ", ".join(
                f"{n} {s['idle_mb']:.0f} → {s['loaded_mb']:.0f}"
                for n, s in figures["services"].items()
            )
            + (" met" if worst <= LIMIT_MB else " NOT met"),
        ],
        [
            f"RSS drift over a {args.soak:g} s departments-list soak (target < 5%)",
            f"{figures['soak']['drift'] * 100:+.1f}% ({figures['soak']['samples_mb'][0]:.0f} → "
            f"{figures['soak']['samples_mb'][-1]:.0f} MiB)",
        ],
    ]
    print("RSS (MiB) idle -> after load:")
    for name, s in figures["services"].items():
        print(f"  {name:12} {s['idle_mb']:6.1f} -> {s['loaded_mb']:6.1f}")
    print(
        f"soak {args.soak:g} s: {figures['soak']['samples_mb']}"
        f" drift {drift * 100:+.2f}% (target < 5%)"
    )
    if "tracemalloc" in figures["soak"]:
        print(
            f"tracemalloc soak: drift {figures['soak']['tracemalloc']['drift'] * 100:+.2f}%;"
            " top growth:"
        )
        print(json.dumps(figures["soak"]["tracemalloc"]["top"], indent=1)[:2000])
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
