"""Assemble the Swagger UI that NGINX serves at /docs/: `python -m tools.swag_config`.

The list of services has ONE source: the documents in docs/openapi/ (`make swag-gen`
writes one per service). This tool writes, into the docs root (default var/docs/,
not committed):

- the static files of swagger-ui-dist, copied from tools/swagger/node_modules (pinned in
  tools/swagger/package.json + package-lock.json; `npm ci` there installs them),
- swagger-config.json: `{"urls": [{"name": "<svc>", "url": "/docs/openapi/<svc>.json"}...]}`
  (also usable as CONFIG_URL by the swaggerapi/swagger-ui container),
- tools/swagger/swagger-initializer.js: starts Swagger UI with that config.

NGINX serves /docs/ from the docs root and /docs/openapi/ straight from docs/openapi/,
so a regenerated document shows up without re-running this tool; a NEW service needs it.
Each document says `servers: [{url: /api/<svc>}]`: "Try it out" goes through NGINX.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_DIR = ROOT / "docs" / "openapi"
DIST = ROOT / "tools" / "swagger" / "node_modules" / "swagger-ui-dist"
DOCS_ROOT = ROOT / "var" / "docs"
URL_PREFIX = "/docs/openapi/"
INITIALIZER = ROOT / "tools" / "swagger" / "swagger-initializer.js"  # checked in
NPM_HINT = "swagger-ui-dist is not installed: run `make swagger-deps` (npm ci in tools/swagger)"


def services(openapi_dir: Path = OPENAPI_DIR) -> list[str]:
    return sorted(p.stem for p in openapi_dir.glob("*.json"))


def swagger_config(names: list[str], url_prefix: str = URL_PREFIX) -> dict[str, object]:
    return {
        "urls": [{"name": name, "url": f"{url_prefix}{name}.json"} for name in names],
        "urls.primaryName": names[0] if names else "",
        "validatorUrl": None,  # never ask validator.swagger.io
        "tryItOutEnabled": False,
        "displayRequestDuration": True,
    }


def assemble(out: Path, openapi_dir: Path = OPENAPI_DIR, dist: Path = DIST) -> list[str]:
    """Write the docs root; -> the services listed. FileNotFoundError when a part is missing."""
    if not (dist / "swagger-ui-bundle.js").is_file():
        raise FileNotFoundError(NPM_HINT)
    names = services(openapi_dir)
    if not names:
        raise FileNotFoundError(f"no OpenAPI document in {openapi_dir}: run make swag-gen")
    # the package's folder as published (its README: serve it), less the source maps
    shutil.copytree(dist, out, ignore=shutil.ignore_patterns("*.map"), dirs_exist_ok=True)
    config = json.dumps(swagger_config(names), indent=2) + "\n"
    (out / "swagger-config.json").write_text(config)
    shutil.copyfile(INITIALIZER, out / INITIALIZER.name)  # ours, over the package's
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.swag_config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default=str(DOCS_ROOT), help="the docs root (var/docs)")
    args = parser.parse_args(argv)
    try:
        names = assemble(Path(args.out))
    except FileNotFoundError as exc:
        print(f"swag-config: {exc}", file=sys.stderr)
        return 2
    print(f"swag-config: {args.out}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
