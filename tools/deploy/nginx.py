"""The gateway as a local process: `python -m tools.deploy.nginx {render,test,run}`
(nginx/README.md).

nginx/ holds templates in which `${NAME}` marks what differs between a local run, the
tests and Docker Compose (listen addresses, each upstream's `server` lines, file paths);
nginx's own `$variables` are never touched. `render` fills them into a runtime directory
(default var/nginx/), `test` runs `nginx -t` on it, `run` execs nginx in the foreground.
Every REST service's `upstream` and `location /api/<name>/` blocks are written in the
templates (`make new-service` adds a new one's); the committed renderings are
tools/deploy/nginx_copies.py's.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from lib import registry
from lib.redact import nginx_pattern, secret_params
from tools.deploy.prometheus import missing
from tools.packages import sbin

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "nginx"
RUNTIME = ROOT / "var" / "nginx"
LOG_DIR = ROOT / "var" / "log" / "nginx"
DOCS_ROOT = ROOT / "var" / "docs"
PAGES_DIR = TEMPLATES / "pages"  # the account pages (/verify-email, /reset-password)
PAGES_SERVER = TEMPLATES / "pages-server.conf"  # those pages on their own (Kubernetes)
INCLUDE = re.compile(r"^\s*include\s+([^;\s]+);", re.MULTILINE)
OPENAPI_DIR = ROOT / "docs" / "openapi"
# a replica that failed once (refused, reset, timed out) gets nothing for this long; a new
# one started where one failed takes traffic only after it (a release waits for that)
FAIL_TIMEOUT = 5.0
# service -> the ports of its replicas (lib/registry.py); a gRPC service's: its side port
HTTP_SERVICES: dict[str, tuple[int, ...]] = {
    service.name: service.http_ports for service in registry.routed_services()
}
# how long a client may take to send a request's head (the whole head) and the pause it may
# take between two reads of its body (nginx's own meaning), seconds: nginx, in front of every
# service, closes the connection past either (nginx/README.md); the Kubernetes Gateway
# bounds a whole request by their sum (deploy/k8s/base/gateway.yaml)
CLIENT_HEADER_TIMEOUT = 10.0
CLIENT_BODY_TIMEOUT = 15.0
LISTEN = "127.0.0.1:8080"
STATUS_LISTEN = "127.0.0.1:8088"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
INSTALL_HINT = (
    "nginx is not installed: `apt-get install -y nginx` (Debian/Ubuntu, as root; `make run` "
    "does it when run as root), or `brew install nginx`; the services still answer on their "
    "own ports"
)


class RenderError(ValueError):
    pass


@dataclass
class Layout:
    """Everything a rendering needs; the defaults are a local run from the repository."""

    listen: str = LISTEN
    status_listen: str = STATUS_LISTEN
    upstreams: dict[str, list[str]] = field(default_factory=dict)
    runtime: Path = RUNTIME
    access_log: Path = LOG_DIR / "access.log"
    error_log: str = "stderr"
    docs_root: Path = DOCS_ROOT
    # HOST:PORT of a Swagger UI server that /docs/ proxies to instead (Compose's swagger-ui)
    docs_upstream: str | None = None
    openapi_dir: Path = OPENAPI_DIR
    pages_dir: Path = PAGES_DIR
    worker_processes: str = "2"
    user: str | None = None  # None: the current user when root, else no directive
    pid_file: str | None = None
    temp_dir: str | None = None
    status_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    # LOG_REDACT_PARAMS for the access log; None: the environment, else `.env`
    redact_params: str | None = None
    client_header_timeout: float = CLIENT_HEADER_TIMEOUT
    client_body_timeout: float = CLIENT_BODY_TIMEOUT
    # every HTTP service at this many replicas (`make run replicas=N`); None: the registry's
    replicas: int | None = None

    @property
    def conf_dir(self) -> Path:
        return self.runtime / "conf"

    @property
    def conf_file(self) -> Path:
        return self.conf_dir / "nginx.conf"

    def values(self) -> dict[str, str]:
        user = self.user
        if user is None and os.geteuid() == 0:
            user = pwd.getpwuid(os.geteuid()).pw_name  # else nginx drops workers to nobody
        values = {
            "USER_DIRECTIVE": f"user {user};" if user else "# user: the one who runs nginx",
            "WORKER_PROCESSES": self.worker_processes,
            "PID_FILE": self.pid_file or str(self.runtime / "nginx.pid"),
            "ERROR_LOG": self.error_log,
            "TEMP_DIR": self.temp_dir or str(self.runtime / "tmp"),
            "ACCESS_LOG": str(self.access_log),
            "LISTEN": self.listen,
            "STATUS_LISTEN": self.status_listen,
            "STATUS_ALLOW": "\n".join(f"        allow {net};" for net in self.status_allow),
            "DOCS_SOURCE": (
                f"proxy_pass http://{self.docs_upstream}/;"
                if self.docs_upstream
                else f"alias {str(self.docs_root).rstrip('/')}/;\n        index index.html;"
            ),
            "OPENAPI_DIR": str(self.openapi_dir).rstrip("/"),
            "PAGES_DIR": str(self.pages_dir).rstrip("/"),
            # the access log's redaction (10-logging.conf): the services' list, lib/redact.py
            "SECRET_PARAMS": secret_pattern(self.redact_params),
            "CLIENT_HEADER_TIMEOUT": nginx_time(self.client_header_timeout),
            "CLIENT_BODY_TIMEOUT": nginx_time(self.client_body_timeout),
        }
        fail = nginx_time(FAIL_TIMEOUT)
        for name in HTTP_SERVICES:  # 20-upstreams.conf's `server` lines
            servers = self.upstreams.get(name) or default_servers(name, os.environ, self.replicas)
            values[f"{name.upper()}_SERVERS"] = "\n".join(
                f"    server {address} max_fails=1 fail_timeout={fail};" for address in servers
            )
        return values


def parse_upstreams(items: Sequence[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for item in items:
        name, sep, addresses = item.partition("=")
        if not sep or name not in HTTP_SERVICES or not addresses:
            raise RenderError(
                f"--upstream {item!r}: expected SVC=HOST:PORT[,HOST:PORT...] with SVC one of "
                + ", ".join(HTTP_SERVICES)
            )
        result[name] = [a.strip() for a in addresses.split(",") if a.strip()]
    return result


def default_servers(service: str, env: Mapping[str, str], replicas: int | None = None) -> list[str]:
    """The registry's replicas (`replicas`: that many of them, as `make run replicas=N`
    starts); `<SVC>_PORT` moves the first one (as it does in the Procfile)."""
    scaled = {s.name: s for s in registry.scaled(replicas)}
    ports = [str(p) for p in scaled[service].http_ports]
    port = env.get(f"{service.upper()}_PORT")
    if port:
        ports[0] = port
    return [f"127.0.0.1:{p}" for p in ports]


def nginx_time(seconds: float) -> str:
    """Seconds as nginx writes a time: `10s`, or `500ms` (it takes no fraction)."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"a timeout of {seconds} s: it must be at least 1 ms")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def secret_pattern(value: str | None = None) -> str:
    """lib/redact.py's names + LOG_REDACT_PARAMS (`value`, else as the services read it: the
    environment, else `.env`), as the alternation 10-logging.conf's maps match."""
    if value is None:
        value = os.environ.get("LOG_REDACT_PARAMS")
    if value is None:
        value = dotenv_values(ROOT / ".env").get("LOG_REDACT_PARAMS") or ""
    try:
        return nginx_pattern(secret_params(value.split(",")))
    except ValueError as exc:
        raise RenderError(f"LOG_REDACT_PARAMS: {exc}") from None


def templates() -> list[Path]:
    found = [TEMPLATES / "nginx.conf"]
    for sub in ("conf.d", "snippets"):
        found += sorted((TEMPLATES / sub).glob("*.conf"))
    return found


def fill(text: str, values: Mapping[str, str], name: str) -> str:
    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise RenderError(f"{name}: unknown placeholder ${{{key}}}")
        return values[key]

    return PLACEHOLDER.sub(one, text)


def render_files(layout: Layout) -> dict[str, str]:
    """Relative path -> rendered text of every template."""
    values = layout.values()
    out: dict[str, str] = {}
    for path in templates():
        rel = path.relative_to(TEMPLATES).as_posix()
        out[rel] = fill(path.read_text(), values, rel)
    return out


def render_pages_server(layout: Layout) -> dict[str, str]:
    """The account pages' own server (pages-server.conf) and every template it includes,
    rendered: relative path (as the includes name it; the main file `nginx.conf`) -> text."""
    values = layout.values()
    out = {"nginx.conf": fill(PAGES_SERVER.read_text(), values, PAGES_SERVER.name)}
    pending = INCLUDE.findall(out["nginx.conf"])
    while pending:
        rel = pending.pop(0)
        if rel in out:
            continue
        source = TEMPLATES / rel
        if not source.is_file() or "*" in rel:
            raise RenderError(f"{PAGES_SERVER.name}: include {rel}: not a template of nginx/")
        out[rel] = fill(source.read_text(), values, rel)
        pending += INCLUDE.findall(out[rel])
    return out


def render(layout: Layout) -> Path:
    """Write the configuration and create every directory nginx needs; -> nginx.conf."""
    if layout.conf_dir.exists():
        shutil.rmtree(layout.conf_dir)  # a template removed from nginx/ must disappear here
    for rel, text in render_files(layout).items():
        target = layout.conf_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    Path(layout.values()["TEMP_DIR"]).mkdir(parents=True, exist_ok=True)
    layout.access_log.parent.mkdir(parents=True, exist_ok=True)
    if layout.error_log != "stderr":
        Path(layout.error_log).parent.mkdir(parents=True, exist_ok=True)
    return layout.conf_file


def nginx_binary() -> str | None:
    return sbin("nginx")


def nginx_command(layout: Layout, *extra: str) -> list[str]:
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError(INSTALL_HINT)
    # -p: relative paths resolve in the runtime dir; -e: the error log before the config
    # is read (nginx >= 1.19.5), so nothing is ever written to /var/log/nginx
    return [
        binary,
        "-p",
        str(layout.runtime),
        "-e",
        layout.error_log,
        "-c",
        str(layout.conf_file),
        *extra,
    ]


def check_config(layout: Layout) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        nginx_command(layout, "-t", "-q"), capture_output=True, text=True, check=False
    )


def _layout_from(args: argparse.Namespace) -> Layout:
    return Layout(
        listen=args.listen,
        status_listen=args.status_listen,
        upstreams=parse_upstreams(args.upstream),
        runtime=Path(args.runtime).resolve(),
        access_log=Path(args.access_log).resolve(),
        error_log=args.error_log
        if args.error_log == "stderr"
        else str(Path(args.error_log).resolve()),
        docs_root=Path(args.docs_root).resolve(),
        worker_processes=args.workers,
        client_header_timeout=args.client_header_timeout,
        client_body_timeout=args.client_body_timeout,
        replicas=args.replicas,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deploy.nginx",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["render", "test", "run"])
    parser.add_argument("--listen", default=os.environ.get("NGINX_LISTEN", LISTEN))
    parser.add_argument("--status-listen", default=STATUS_LISTEN)
    parser.add_argument("--upstream", action="append", default=[], metavar="SVC=ADDR[,ADDR]")
    parser.add_argument("--runtime", default=str(RUNTIME))
    parser.add_argument("--access-log", default=str(LOG_DIR / "access.log"))
    parser.add_argument("--error-log", default="stderr")
    parser.add_argument("--docs-root", default=str(DOCS_ROOT))
    parser.add_argument("--workers", default="2", help="worker_processes (a number or auto)")
    replicas = "every HTTP service's upstream over N replicas (lib/registry.py's ports)"
    parser.add_argument("--replicas", type=int, default=None, metavar="N", help=replicas)
    for name, default, what in (
        ("header", CLIENT_HEADER_TIMEOUT, "the whole request head must arrive within this"),
        ("body", CLIENT_BODY_TIMEOUT, "the longest pause between two reads of a body"),
    ):
        option = f"--client-{name}-timeout"
        parser.add_argument(option, type=float, default=default, metavar="S", help=what)
    parser.add_argument(
        "--optional",
        action="store_true",
        help="run: when nginx is missing, print how to install it and idle (for honcho)",
    )
    args = parser.parse_args(argv)
    try:
        layout = _layout_from(args)
        conf = render(layout)
        if args.command == "render":
            print(f"nginx: rendered {conf}")
            return 0
        if nginx_binary() is None:
            return missing("nginx", INSTALL_HINT, args.command == "run" and args.optional)
        result = check_config(layout)
        if result.returncode != 0:
            print(f"nginx -t failed:\n{result.stderr}", file=sys.stderr)
            return 1
        if args.command == "test":
            print(f"nginx: {conf} is valid")
            return 0
        command = nginx_command(layout, "-g", "daemon off;")
        print(
            f"nginx: listening on {layout.listen} (stub_status {layout.status_listen})",
            file=sys.stderr,
            flush=True,
        )
        os.execv(command[0], command)
    except ValueError as exc:  # a RenderError, or a bad timeout (nginx_time)
        print(f"nginx: {exc}", file=sys.stderr)
        return 2
    return 0  # unreachable after execv


if __name__ == "__main__":
    sys.exit(main())
