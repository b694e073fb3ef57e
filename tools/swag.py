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
        stale = []
        for service in args.services or DOCUMENTED:
            text, path = render(spec_of(service)), DOCS / f"{service}.json"
            if args.command == "gen":
                DOCS.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                print(f"swag-gen: {path.relative_to(ROOT)}")
            elif not path.exists() or path.read_text() != text:
                stale.append(service)
        if stale:
            print(f"swag-check: stale: {', '.join(stale)}; run make swag-gen", file=sys.stderr)
            return 1
    except ValueError as exc:
        print(f"swag: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
