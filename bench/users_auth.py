"""The users service's auth costs, side by side in one run, on loopback:

- argon2id: the cost of one password check with the production parameters (the
  UsersSettings defaults, ADR 0010), measured in this process;
- /health p99 while idle, then during a login storm (--concurrency clients logging in
  back to back): the bounded executor (ARGON2_WORKERS threads) must keep the event loop
  responsive, the ratio should stay <= 2. The probe and the storm are processes of their
  own, the storm at nice 10: on two shared cores the load generator's own work would
  otherwise be in the probe's latencies, and what is measured is the service. Side by
  side, one process per ARGON2_PRIORITY (nice: nice 10, the default; idle: SCHED_IDLE),
  their phases interleaved in --rounds rounds so both see the same background load;
- login throughput vs refresh throughput (refresh is one SHA-256 and one transaction).

The service runs as its own process (`python -m services.users`, production argon2
defaults) on a throwaway database; /health is probed every --probe-interval ms, paced
so the probe itself is no load. Every phase is bounded by --seconds.
Run: .venv/bin/python bench/users_auth.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from asyncio.subprocess import PIPE
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from lib.auth.passwords import Priority, make_hasher
from services.users.settings import UsersSettings
from tools import keys
from tools.local.databases import PG_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess
from tools.migrations import migrate

PASSWORD = "bench password 1"
PRIORITIES: tuple[Priority, ...] = ("nice", "idle")  # the default first
LOAD_NICENESS = 10  # the storm's clients; the probe and the service keep their priority


@dataclass
class Phase:
    """What one timed phase saw."""

    seconds: float = 0.0
    ok: int = 0
    busy: int = 0  # 503 from the bounded executor: by design under overload
    failed: int = 0  # anything else: the benchmark is broken
    health_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def health_p99(self) -> float:
        return percentile(self.health_ms, 99)

    def add(self, other: Phase) -> None:
        self.seconds += other.seconds
        self.ok += other.ok
        self.busy += other.busy
        self.failed += other.failed
        self.health_ms += other.health_ms


Client = Callable[[aiohttp.ClientSession, Phase], Awaitable[None]]  # one request, counted


def argon2_parameters() -> tuple[int, int, int]:
    """The production defaults, read from the settings class (not the environment)."""
    fields = UsersSettings.model_fields
    return tuple(  # type: ignore[return-value]
        int(fields[f"argon2_{name}"].default)
        for name in ("time_cost", "memory_cost", "parallelism")
    )


def hash_cost_ms(rounds: int) -> list[float]:
    hasher = make_hasher(*argon2_parameters())
    stored = hasher.hash(PASSWORD)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def seed_accounts(dsn: str, count: int) -> list[str]:
    """`count` accounts sharing one production-cost hash (hashing each would only be slow)."""
    password_hash = make_hasher(*argon2_parameters()).hash(PASSWORD)
    emails = [f"bench{n}-{uuid.uuid4().hex[:8]}@fixup.test" for n in range(count)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "users",
            records=[
                (uuid.uuid4(), email, password_hash, "Bench", f"User{n}", "+1 555 0100")
                for n, email in enumerate(emails)
            ],
            columns=["id", "email", "password_hash", "first_name", "last_name", "phone_number"],
        )
    finally:
        await conn.close()
    return emails


def users_process(dsn: str, key_dir: Path, log: Path, priority: Priority) -> ServiceProcess:
    env = {
        **os.environ,
        "USERS_DATABASE_URL": dsn,
        "USERS_PORT": str(free_port()),
        "WORKERS": "1",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "POINTS_GRPC_ADDR": "",
        "JWT_PUBLIC_KEY": "",
        "JWT_PRIVATE_KEY": "",
        "JWT_PUBLIC_KEY_FILE": str(key_dir / keys.PUBLIC_NAME),
        "JWT_PRIVATE_KEY_FILE": str(key_dir / keys.PRIVATE_NAME),
        "LOGIN_RATE": "1000000",
        "LOGIN_BURST": "1000000",
        "RATE_LIMIT_IP_RATE": "1000000",
        "RATE_LIMIT_IP_BURST": "1000000",
        "ARGON2_PRIORITY": priority,
    }
    env.pop("USERS_ARGON2_PRIORITY", None)
    for name in ("TIME_COST", "MEMORY_COST", "PARALLELISM"):
        env.pop(f"ARGON2_{name}", None)  # the production defaults, whatever the shell says
        env.pop(f"USERS_ARGON2_{name}", None)
    return ServiceProcess(env, log, name="users", inherit_environ=False)


async def probe_health(url: str, interval: float, seconds: float) -> list[float]:
    """GET /health every `interval` s for `seconds` on one keep-alive connection; the latency
    of each, in ms."""
    out: list[float] = []
    async with aiohttp.ClientSession() as http:
        ends = time.perf_counter() + seconds
        while time.perf_counter() < ends:
            started = time.perf_counter()
            async with http.get(f"{url}/health") as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"/health answered {resp.status}")
            out.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(interval)
    return out


def probe_main(url: str, interval: float, seconds: float) -> None:
    """`users_auth.py probe URL INTERVAL SECONDS`: the probe as a process of its own, at the
    priority the service has: "ready", then on "go" it probes for `seconds` and prints the
    latencies as JSON."""
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(uvloop.run(probe_health(url, interval, seconds))), flush=True)


async def run_clients(clients: list[Client], seconds: float) -> Phase:
    """`clients` back to back for `seconds`; each finishes its request in flight."""
    result, stop = Phase(), asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def loop(client: Client) -> None:
            while not stop.is_set():
                await client(http, result)

        started = time.perf_counter()
        tasks = [asyncio.create_task(loop(c)) for c in clients]
        await asyncio.wait(tasks, timeout=seconds)
        stop.set()
        await asyncio.gather(*tasks)  # a crashed client fails the run
        result.seconds = time.perf_counter() - started
    return result


def storm_main(kind: str, url: str, seconds: float, credentials: list[str]) -> None:
    """`users_auth.py storm {login,refresh} URL SECONDS CREDENTIAL...`: the load as a process
    of its own at nice LOAD_NICENESS, so it never takes a core the probe or the service
    wants (on two shared cores the clients' own work was in the probe's latencies): what
    is measured is the service. "ready", then on "go" the counts as JSON."""
    os.nice(LOAD_NICENESS)
    make = login_client if kind == "login" else refresh_client
    clients = [make(url, credential) for credential in credentials]
    print("ready", flush=True)
    sys.stdin.readline()
    result = uvloop.run(run_clients(clients, seconds))
    counts = {"ok": result.ok, "busy": result.busy, "failed": result.failed}
    print(json.dumps({**counts, "seconds": result.seconds}), flush=True)


async def helper(*argv: str) -> asyncio.subprocess.Process:
    """This script as a child process (probe or storm), once it has printed "ready"."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *argv, stdin=PIPE, stdout=PIPE
    )
    assert proc.stdout is not None
    if await proc.stdout.readline() != b"ready\n":
        raise RuntimeError(f"bench/users_auth.py {argv[0]} did not start")
    return proc


async def output(proc: asyncio.subprocess.Process) -> Any:
    """What a helper printed last, as JSON, once it exits 0."""
    assert proc.stdout is not None
    text = await proc.stdout.read()
    if await proc.wait() != 0:
        raise RuntimeError(f"a bench/users_auth.py helper failed (exit {proc.returncode})")
    return json.loads(text)


async def phase(
    url: str, seconds: float, probe_interval: float, storm: tuple[str, list[str]] | None
) -> Phase:
    """/health probed for `seconds`, while `storm` (kind, credentials) loads the service."""
    helpers = [await helper("probe", url, str(probe_interval), str(seconds))]
    if storm is not None:
        kind, credentials = storm
        helpers.append(await helper("storm", kind, url, str(seconds), *credentials))
    for proc in helpers:  # both start together
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    result = Phase(health_ms=await output(helpers[0]), seconds=seconds)
    if storm is not None:
        counts = await output(helpers[1])
        result.ok, result.busy, result.failed = counts["ok"], counts["busy"], counts["failed"]
        result.seconds = counts["seconds"]
    return result


def count(result: Phase, status: int) -> None:
    if status == 200:
        result.ok += 1
    elif status == 503:
        result.busy += 1
    else:
        result.failed += 1


def login_client(url: str, email: str) -> Client:
    body = {"email": email, "password": PASSWORD}

    async def client(http: aiohttp.ClientSession, result: Phase) -> None:
        async with http.post(f"{url}/v1/auth/login", json=body) as resp:
            await resp.read()
            count(result, resp.status)

    return client


async def login_once(http: aiohttp.ClientSession, url: str, email: str) -> str:
    body = {"email": email, "password": PASSWORD}
    async with http.post(f"{url}/v1/auth/login", json=body) as resp:
        payload = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"login answered {resp.status}: {payload}")
        return str(payload["data"]["refresh_token"])


def refresh_client(url: str, token: str) -> Client:
    """Rotates its own family: each answer's token is the next request's."""
    current = {"token": token}

    async def client(http: aiohttp.ClientSession, result: Phase) -> None:
        body = {"refresh_token": current["token"]}
        async with http.post(f"{url}/v1/auth/refresh", json=body) as resp:
            payload = await resp.json()
            count(result, resp.status)
            if resp.status == 200:
                current["token"] = payload["data"]["refresh_token"]

    return client


async def run(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    """Every figure of the benchmark, as a dict (printed by main, checked by the smoke test)."""
    hash_ms = hash_cost_ms(args.hashes)
    emails = await seed_accounts(dsn, args.concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-users-auth-") as tmp:
        key_dir = Path(tmp) / "keys"
        keys.write_keys(key_dir)
        procs = {
            p: users_process(dsn, key_dir, Path(tmp) / f"users-{p}.log", p) for p in PRIORITIES
        }
        users = procs[PRIORITIES[0]]
        interval, part = args.probe_interval / 1000, args.seconds / args.rounds
        idles = {p: Phase() for p in PRIORITIES}
        storms = {p: Phase() for p in PRIORITIES}
        try:
            async with aiohttp.ClientSession() as http:
                for proc in procs.values():
                    await proc.wait_healthy()
                    for email in emails:  # warms up every process
                        await login_once(http, proc.url, email)
                tokens = [await login_once(http, users.url, e) for e in emails]
            for _ in range(args.rounds):  # interleaved: the same background load for both
                for p, proc in procs.items():
                    idles[p].add(await phase(proc.url, part, interval, None))
                    storms[p].add(await phase(proc.url, part, interval, ("login", emails)))
            refresh = await phase(users.url, args.seconds, interval, ("refresh", tokens))
        finally:
            for proc in procs.values():
                proc.stop()
    idle, storm = idles[PRIORITIES[0]], storms[PRIORITIES[0]]
    return {
        "argon2": dict(
            zip(("time_cost", "memory_kib", "parallelism"), argon2_parameters(), strict=True)
        ),
        "hash_ms_median": statistics.median(hash_ms),
        "hash_ms_min": min(hash_ms),
        "health_idle_p99_ms": idle.health_p99,
        "health_storm_p99_ms": storm.health_p99,
        "health_ratio": storm.health_p99 / idle.health_p99,
        "health_samples": (len(idle.health_ms), len(storm.health_ms)),
        "login_per_s": storm.rate,
        "refresh_per_s": refresh.rate,
        "refresh_to_login": refresh.rate / storm.rate if storm.rate else float("nan"),
        "busy": sum(s.busy for s in storms.values()) + refresh.busy,
        "failed": sum(s.failed for s in storms.values()) + refresh.failed,
        "priority": PRIORITIES[0],
        "by_priority": {
            p: {
                "health_idle_p99_ms": idles[p].health_p99,
                "health_storm_p99_ms": storms[p].health_p99,
                "health_ratio": storms[p].health_p99 / idles[p].health_p99,
                "login_per_s": storms[p].rate,
            }
            for p in PRIORITIES
        },
    }


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    a = figures["argon2"]
    print(
        f"users auth, argon2id t={a['time_cost']} m={a['memory_kib']} KiB p={a['parallelism']}, "
        f"{args.concurrency} clients, {args.seconds:g} s a phase:"
    )
    print(
        f"  hash cost per login      {figures['hash_ms_median']:7.1f} ms median "
        f"(min {figures['hash_ms_min']:.1f}; target 30-100)"
    )
    for priority, f in figures["by_priority"].items():
        print(f"  ARGON2_PRIORITY={priority}" + (" (default)" if priority == PRIORITIES[0] else ""))
        print(f"    /health p99 idle         {f['health_idle_p99_ms']:7.2f} ms")
        print(
            f"    /health p99 login storm  {f['health_storm_p99_ms']:7.2f} ms   "
            f"ratio {f['health_ratio']:.2f} (target <= 2)"
        )
        print(f"    login                    {f['login_per_s']:7.1f} /s")
    print(
        f"  refresh                  {figures['refresh_per_s']:7.1f} /s   "
        f"ratio to login {figures['refresh_to_login']:.1f} (default priority)"
    )
    print(f"  503 busy {figures['busy']}, other failures {figures['failed']}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=8, help="clients in the storm")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved storm rounds")
    parser.add_argument("--hashes", type=int, default=20, help="argon2 checks timed in-process")
    parser.add_argument("--probe-interval", type=float, default=5.0, help="ms between probes")
    parser.add_argument("--dsn", default="", help="a migrated users database (default: a new one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.dsn:
        figures = asyncio.run(run(args, args.dsn))
    else:
        dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_auth_{os.getpid()}"
        try:
            migrate.up("users", dsn)
            figures = asyncio.run(run(args, dsn))
        finally:
            drop_database(dsn)
    report(figures, args)
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        probe_main(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1:2] == ["storm"]:
        storm_main(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5:])
    else:
        main()
