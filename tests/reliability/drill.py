"""The release drill (ADR 0022): every built HTTP service of lib/registry.py on two
replicas behind a real NGINX whose upstreams hold one spare slot each; points (gRPC) once.
Peers reach each other through the gateway, as clients do. `roll` replaces one replica:
a new process in the free slot, in service, then SIGTERM to the old one (its slot is the
next free one); `rollout` rolls every replica of a service, one at a time. Used by
tests/reliability/test_release_drill.py (`make release-drill`) and the rotation drill.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lib import registry
from lib.auth.jwks import JWKS_PATH
from tests.e2e.gateway_stack import Gateway, wait_until
from tests.reliability.awards import POINTS_PER_JOB, start_points
from tests.reliability.stack import common_env, start, users_env
from tools.deploy.nginx import FAIL_TIMEOUT
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

REPLICAS = 2
SHUTDOWN_TIMEOUT = 5.0  # each replica's drain bound


@dataclass
class Slots:
    """One service's ports (its replicas + the spare) and what runs in them."""

    name: str
    env: dict[str, str]
    ports: list[int]
    running: dict[int, ServiceProcess] = field(default_factory=dict)
    started: int = 0

    def free(self) -> int:
        return next(p for p in self.ports if p not in self.running)


@dataclass
class Drill:
    tmp: Path
    gateway: Gateway
    points: ServiceProcess
    slots: dict[str, Slots]
    exits: list[tuple[str, int | None, float]] = field(default_factory=list)
    points_env: dict[str, str] = field(default_factory=dict)  # to start points again

    def api(self, service: str) -> str:
        return f"{self.gateway.url}/api/{service}"

    async def launch(self, slots: Slots) -> ServiceProcess:
        port = slots.free()
        slots.started += 1
        env = {**slots.env, f"{slots.name.upper()}_PORT": str(port)}
        log = self.tmp / f"{slots.name}-{slots.started}.log"
        process = slots.running[port] = await start(slots.name, env, log)
        return process

    async def roll(self, service: str, old_port: int) -> None:
        """Replace the replica on `old_port`: the new one up and routed first."""
        slots = self.slots[service]
        new = await self.launch(slots)

        async def routed() -> bool:  # a slot that failed is tried again FAIL_TIMEOUT later
            return '"path":"/v1/' in new.log.read_text()

        await wait_until(routed, f"the gateway routes to {new.url}", FAIL_TIMEOUT + PROCESS_MARGIN)
        old = slots.running.pop(old_port)
        began = time.monotonic()
        old.proc.send_signal(signal.SIGTERM)
        code = await wait_exit(old, SHUTDOWN_TIMEOUT + PROCESS_MARGIN)
        self.exits.append((service, code, time.monotonic() - began))

    async def rollout(self, service: str) -> None:
        """Every replica of `service` replaced, one at a time (`kubectl rollout restart`)."""
        for port in list(self.slots[service].running):
            await self.roll(service, port)

    def stop(self) -> None:
        self.gateway.stop()
        for slots in self.slots.values():
            for process in slots.running.values():
                process.stop()
        self.points.stop()


async def wait_exit(process: ServiceProcess, seconds: float) -> int | None:
    async def gone() -> bool:
        return process.proc.poll() is not None

    await wait_until(gone, f"{process.name} exits after SIGTERM", seconds)
    return process.proc.returncode


def services() -> list[str]:
    return [s.name for s in registry.gateway_services() if s.built]


async def start_drill(
    tmp: Path,
    dsn: Callable[[str], str],
    shared: dict[str, str] | None = None,
    keys: Path | None = None,
    users: dict[str, str] | None = None,
) -> Drill:
    """Every built HTTP service on REPLICAS processes behind the gateway, points once;
    `shared`: environment every HTTP service gets too (a REDIS_URL); `keys`: users signs
    from that key directory and every other service verifies through the gateway's
    JWK Set (ADR 0032), instead of the fixed test pair; `users`: users' own extra
    environment (its keyring files, ADR 0036)."""
    names = services()
    ports = {name: [free_port() for _ in range(REPLICAS + 1)] for name in names}
    docs = tmp / "docs"
    docs.mkdir(exist_ok=True)
    gateway = Gateway(tmp, {name: [f"127.0.0.1:{p}" for p in ports[name]] for name in names}, docs)
    points, points_env = await start_points(dsn("points"), tmp / "points.log")
    grpc = f"127.0.0.1:{points_env['POINTS_GRPC_PORT']}"
    peers = {f"{name.upper()}_URL": f"{gateway.url}/api/{name}" for name in names}
    # users' durable revocation record: what a verifier asks while Redis cannot tell it
    # (unreachable, or emptied: ADR 0028)
    peers["REVOCATION_RECORD_URL"] = f"{gateway.url}/api/users"
    # the object storage every service shares: users' pictures, the erasure ledger
    peers["STORAGE_DIR"] = str(tmp / "storage")
    wiring = {  # names services on purpose: each is wired to its own dependencies
        "users": {**(users or {})},
        "orders": {
            "POINTS_GRPC_ADDR": grpc,
            "ORDERS_POINTS_PER_JOB": str(POINTS_PER_JOB),
            "ORDERS_OUTBOX_INTERVAL": "0.1",
            "ORDERS_OUTBOX_RETRY_MAX": "0.5",
        },
    }
    if keys is not None:
        peers["JWKS_URL"] = f"{gateway.url}{JWKS_PATH}"
        wiring.setdefault("users", {})["JWT_KEYS_DIR"] = str(keys)
    slots: dict[str, Slots] = {}
    drill = Drill(tmp, gateway, points, slots, points_env=points_env)
    try:
        for name in names:
            extra = {**peers, **wiring.get(name, {}), "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)}
            extra |= shared or {}
            if name == "users":
                env = users_env(dsn(name), grpc, **extra)
            else:
                env = common_env(name, dsn(name), **extra)
            slots[name] = Slots(name, env, ports[name])
            for _ in range(REPLICAS):
                await drill.launch(slots[name])
        await gateway.start()
    except BaseException:
        drill.stop()
        raise
    return drill
