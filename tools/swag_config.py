"""Assemble the Swagger UI that NGINX serves at /docs/: `python -m tools.swag_config`.

The list of services has ONE source: the documents in docs/openapi/ (`make swag-gen`
writes one per REST service). `render` turns them into the committed
docs/openapi/swagger-ui/swagger-config.json (`{"urls": [{"name": "<svc>", "url":
"openapi/<svc>.json"}...]}`, sorted; written and checked with nginx/compose/ by
`python -m tools.deploy.nginx_copies`, which `make new-service` and `remove-service` run).
Both Swagger UIs load that one file by the same URL, relative to their page, and Swagger UI
resolves each document's url against the page too:

- /docs/ (NGINX): tools/swagger/swagger-initializer.js's `configUrl`, NGINX serving
  /docs/openapi/ straight from docs/openapi/;
- Compose's swagger-ui (swaggerapi/swagger-ui at /): its `CONFIG_URL`, docs/openapi/
  mounted at /openapi.

This tool writes, into the docs root (default var/docs/, not committed), the static files
of swagger-ui-dist, copied from tools/swagger/node_modules (pinned in
tools/swagger/package.json + package-lock.json; `npm ci` there installs them), and
tools/swagger/swagger-initializer.js over the package's. A regenerated document or a new
service shows up without re-running it. Each document says `servers: [{url:
/api/<svc>}]`: "Try it out" goes through NGINX.
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
URL_PREFIX = "openapi/"  # relative to the page: /docs/ (NGINX), / (Compose's swagger-ui)
CONFIG = OPENAPI_DIR / "swagger-ui" / "swagger-config.json"  # committed, in a folder of its own
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


def render(openapi_dir: Path = OPENAPI_DIR) -> str:
    """CONFIG's text: every document of `openapi_dir`."""
    return json.dumps(swagger_config(services(openapi_dir)), indent=2) + "\n"


def assemble(out: Path, dist: Path = DIST) -> list[str]:
    """Write the docs root; -> the services CONFIG lists. FileNotFoundError when a part is
    missing."""
    if not (dist / "swagger-ui-bundle.js").is_file():
        raise FileNotFoundError(NPM_HINT)
    # the package's folder as published (its README: serve it), less the source maps
    shutil.copytree(dist, out, ignore=shutil.ignore_patterns("*.map"), dirs_exist_ok=True)
    shutil.copyfile(INITIALIZER, out / INITIALIZER.name)  # ours, over the package's
    return [str(url["name"]) for url in json.loads(CONFIG.read_text())["urls"]]


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
