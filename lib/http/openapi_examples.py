"""The request and response `examples` of the OpenAPI documents.

They are lifted from the executed pages (docs/examples.md, services/<service>/examples.md)
by `make swag-gen`
(tools/openapi_examples.py) into docs/openapi/examples/<service>.json, a file per
service keyed by "METHOD /path"; `build_spec` adds them here, so the served document and
the committed one carry the same examples. A service without such a file has none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "examples"


def load(service: str, directory: Path = EXAMPLES_DIR) -> dict[str, Any]:
    path = directory / f"{service}.json"
    if not path.exists():
        return {}
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def add_examples(paths: dict[str, dict[str, Any]], examples: dict[str, Any]) -> None:
    """Each operation's lifted examples on its JSON request body and on the responses
    they answered (by status); what the document does not declare is left out (the
    lifting tool refuses it)."""
    for path, item in paths.items():
        for method, op in item.items():
            lifted = examples.get(f"{method.upper()} {path}")
            if lifted is None:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and lifted.get("request"):
                body["examples"] = lifted["request"]
            for status, named in lifted.get("responses", {}).items():
                for media in op["responses"].get(status, {}).get("content", {}).values():
                    media["examples"] = named
