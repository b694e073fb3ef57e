"""`make check-service svc=X`: prove a REST service's route through NGINX in one command.

Migrates the service's database (`<SVC>_DATABASE_URL`, else its local one from
lib/registry.py, created when missing), makes the development keys when var/keys has none,
starts `python -m services.X` and `python -m tools.deploy.nginx run` on free loopback ports,
then calls `GET /api/X/health` and one list of its OpenAPI document (`GET /api/X/v1/...`,
with an ADMIN token signed by var/keys) through the gateway, prints both answers and stops
the two processes. Exit 0 when both answered 200.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from lib import registry
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tools import keys
from tools.local.ports import free_port
from tools.local.service_process import PROCESS_MARGIN, ROOT
from tools.migrations import migrate
from tools.time_scale import scaled

KEYS = ROOT / "var" / "keys"
# a service's start-up, NGINX's too, and one call: at load 3, times FIXUP_TIME_SCALE
START_TIMEOUT = scaled(30.0)
CALL_TIMEOUT = scaled(10.0)


class CheckError(RuntimeError):
    pass


def list_path(name: str) -> str:
    """The first GET without a path parameter in the service's OpenAPI document, its own
    before the audit list every service has (lib/http/audit.py)."""
    spec = json.loads((ROOT / "docs" / "openapi" / f"{name}.json").read_text())
    lists = [
        path
        for path, operations in spec["paths"].items()
        if "get" in operations and "{" not in path and path.startswith("/v1/")
    ]
    if not lists:
        raise CheckError(f"docs/openapi/{name}.json has no GET list under /v1/")
    own = [path for path in lists if path != "/v1/audit-events"]
    return f"{(own or lists)[0]}?limit=1"


def get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(url: str, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    """Poll `url` until it answers 200; a process that exits first fails, with its log."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for label, proc in processes.items():
            if proc.poll() is not None:
                raise CheckError(f"{label} exited: {(logs / f'{label}.log').read_text()}")
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise CheckError(f"GET {url}: no 200 within {START_TIMEOUT:.0f} s")


def dev_token() -> str:
    if not (KEYS / keys.PRIVATE_NAME).exists():
        keys.write_keys(KEYS)
    signer = TokenSigner((KEYS / keys.PRIVATE_NAME).read_text(), ttl_seconds=300)
    return signer.issue(uuid.uuid4(), Role.ADMIN, verified=True)[0]


def check(name: str) -> list[str]:
    """The answers, one line each; CheckError when one is not 200."""
    service = registry.get(name)
    if not service.behind_gateway or not service.built:
        raise CheckError(f"{name} is not a built REST service behind NGINX (lib/registry.py)")
    prefix = service.env_prefix
    dsn = os.environ.get(f"{prefix}_DATABASE_URL") or service.default_database_url
    migrate.up(service.database, dsn)
    token = dev_token()
    port, gateway, status = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        f"{prefix}_PORT": str(port),
        f"{prefix}_DATABASE_URL": dsn,
        "JWT_PUBLIC_KEY_FILE": str(KEYS / keys.PUBLIC_NAME),
    }
    with tempfile.TemporaryDirectory(prefix="check-service-") as tmp:
        logs = Path(tmp)
        nginx = ["-m", "tools.deploy.nginx", "run", "--listen", f"127.0.0.1:{gateway}"]
        nginx += ["--status-listen", f"127.0.0.1:{status}", "--workers", "1"]
        nginx += ["--runtime", str(logs / "nginx"), "--access-log", str(logs / "access.log")]
        commands = {"service": ["-m", f"services.{name}"], "nginx": nginx}
        processes = {
            label: subprocess.Popen(
                [sys.executable, *command],
                cwd=ROOT,
                env=env,
                stdout=(logs / f"{label}.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            for label, command in commands.items()
        }
        try:
            base = f"http://127.0.0.1:{gateway}/api/{name}"
            wait_for(f"{base}/health", processes, logs)
            lines = [f"GET {base}/health -> 200"]
            path = list_path(name)
            code, body = get(f"{base}{path}", token)
            lines.append(f"GET {base}{path} (ADMIN token) -> {code} {body[:200]}")
            if code != 200:
                raise CheckError("\n".join(lines))
            return lines
        finally:
            for proc in processes.values():
                proc.terminate()
            for proc in processes.values():
                try:
                    proc.wait(PROCESS_MARGIN)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(PROCESS_MARGIN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.check_service", description=__doc__)
    parser.add_argument("svc", choices=[s.name for s in registry.gateway_services()])
    args = parser.parse_args(argv)
    try:
        lines = check(args.svc)
    except (CheckError, OSError, migrate.MigrationFailedError) as exc:
        print(f"check-service: {args.svc}: FAILED\n{exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print(f"check-service: {args.svc} answers through NGINX")
    return 0


if __name__ == "__main__":
    sys.exit(main())
