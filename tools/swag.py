"""OpenAPI documents without a server: `python -m tools.swag gen SVC` -> docs/openapi/SVC.json.

`check` fails when a committed document differs from the code (CI).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from lib import registry
from lib.http.openapi import build_spec
from tools.deploy.generated import write_or_check

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "openapi"
# the REST services that are built (lib/registry.py); gRPC ones have no OpenAPI document
DOCUMENTED = tuple(s.name for s in registry.built_services() if s.behind_gateway)


def spec_of(service: str) -> dict[str, Any]:
    if service not in DOCUMENTED:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(DOCUMENTED)}")
    module = importlib.import_module(f"services.{service}.app")
    app = module.create_app()  # settings from the environment; nothing is opened
    spec: dict[str, Any] = build_spec(app, service=service, title=module.TITLE, version="1.0.0")
    return spec


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.swag", description=__doc__)
    parser.add_argument("command", choices=["gen", "check"])
    parser.add_argument("services", nargs="*", help="default: all")
    args = parser.parse_args(argv)
    try:
        files = {DOCS / f"{s}.json": render(spec_of(s)) for s in args.services or DOCUMENTED}
    except ValueError as exc:
        print(f"swag: {exc}", file=sys.stderr)
        return 2
    return write_or_check(files, args.command == "check", "make swag-gen")


if __name__ == "__main__":
    sys.exit(main())
