"""A service started as a real process (`python -m services.<name>`): the e2e and
reliability tests' servers and the benchmarks' (bench/chat_fanout.py, bench/users_auth.py).
Start it, wait until /health answers (or the process exits, with its log in the error),
stop it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tools.time_scale import scaled

ROOT = Path(__file__).resolve().parents[2]

# a process starts or stops listening, or exits, well within this (10 s at load 3 on two
# cores, times FIXUP_TIME_SCALE); a service is healthy within HEALTHY
PROCESS_MARGIN = scaled(10.0)
HEALTHY = scaled(20.0)


class ServiceProcess:
    """`python -m services.<name>`; its HTTP port (for /health) is `<NAME>_PORT` in env,
    which the process gets on top of this one's environment, or alone with
    `inherit_environ=False` (a benchmark that removes variables the shell may set)."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        name: str = "departments",
        *,
        inherit_environ: bool = True,
        wrapper: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.port = int(env[f"{name.upper()}_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [*wrapper, sys.executable, "-m", f"services.{name}"],  # wrapper: e.g. faketime
            cwd=ROOT,
            env={**os.environ, **env} if inherit_environ else env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            # a wrapper may fork the service (faketime does): its own process group, so
            # stop() reaches the service too, not only the wrapper
            start_new_session=bool(wrapper),
        )
        self.grouped = bool(wrapper)

    async def wait_healthy(self, seconds: float = HEALTHY) -> None:
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited: {self.log.read_text()}")
                try:
                    async with http.get(f"{self.url}/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} not healthy in {seconds:.0f} s: {self.log.read_text()}")

    async def wait_not_listening(self, port: int, seconds: float) -> None:
        """Return once nothing accepts on `port` (the service has begun shutting down)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not await port_open(port):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"port {port} still listening after {seconds}s: {self.log.read_text()}"
        )

    def stop(self) -> None:
        if self.grouped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(PROCESS_MARGIN)


async def port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True
