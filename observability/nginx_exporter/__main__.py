"""`python -m observability.nginx_exporter --log FILE [--stub-status URL] [--port 9150]`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from observability.nginx_exporter.app import Options, create_app

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m observability.nginx_exporter",
        description="NGINX access log + stub_status -> Prometheus metrics",
    )
    parser.add_argument(
        "--log", required=True, help="the access log (JSON or combined + upstream time)"
    )
    parser.add_argument(
        "--stub-status",
        default="http://127.0.0.1:8088/nginx_status",
        help="stub_status URL scraped on every /metrics request; '' to disable",
    )
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    parser.add_argument("--port", type=int, default=9150)
    parser.add_argument("--poll-interval", type=float, default=0.25, help="seconds")
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="read an existing log from its beginning (default: from its end)",
    )
    parser.add_argument(
        "--openapi-dir",
        default=str(ROOT / "docs" / "openapi"),
        help="route templates are also read from these OpenAPI documents",
    )
    args = parser.parse_args(argv)
    return Options(
        log=Path(args.log),
        stub_status=args.stub_status,
        host=args.host,
        port=args.port,
        poll_interval=args.poll_interval,
        from_start=args.from_start,
        openapi_dir=Path(args.openapi_dir) if args.openapi_dir else None,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="nginx_exporter: %(levelname)s %(message)s")
    print(
        f"nginx_exporter: {options.log} -> http://{options.host}:{options.port}/metrics",
        file=sys.stderr,
        flush=True,
    )
    web.run_app(create_app(options), host=options.host, port=options.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
