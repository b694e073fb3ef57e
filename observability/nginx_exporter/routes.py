"""A raw request URI -> the route template used as the `path` label.

`/api/departments/v1/departments/6f1c...?limit=5` -> `/api/departments/v1/departments/{id}`.
The query string is dropped, the `/api/<svc>` prefix is kept, and the rest must match
one of that service's route templates segment by segment (a `{...}` segment matches any
one segment: UUIDs, numbers, `me`; a literal one only itself; the most literal match
wins). Everything else -> `other`, so the label's values are bounded by the route table.

The table: the paths of every OpenAPI document in docs/openapi/ (`--openapi-dir`; the
service is the file's stem, as in /docs/), plus the routes lib/http gives every service
(`COMMON`). A service without a document (not built yet) has no routes: `other`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("nginx_exporter")

OTHER = "other"
DOCS = "/docs/"
ID = "{id}"
_PARAM = re.compile(r"^\{[^/{}]+\}$")

# what lib/http adds to every service; not in its OpenAPI document
COMMON = ("/health", "/ready", "/metrics", "/v1/openapi.json")


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/")) if path.strip("/") else ()


def openapi_routes(directory: Path) -> dict[str, list[str]]:
    """service (the file's stem) -> the paths of docs/openapi/<service>.json."""
    found: dict[str, list[str]] = {}
    for document in sorted(directory.glob("*.json")):
        paths = json.loads(document.read_text()).get("paths", {})
        if isinstance(paths, dict):
            found[document.stem] = [p for p in paths if isinstance(p, str)]
    return found


class Templater:
    """Maps raw URIs to route templates; at most (known templates + 2) distinct results."""

    def __init__(self, routes: Mapping[str, Iterable[str]]) -> None:
        table: dict[str, set[str]] = {}
        for service, paths in routes.items():
            table.setdefault(service, set(COMMON)).update(paths)
        # (service, number of segments) -> [(segments, label)]
        self._index: dict[tuple[str, int], list[tuple[tuple[str, ...], str]]] = {}
        for service, paths in table.items():
            for path in sorted(paths):
                segments = tuple(ID if _PARAM.match(s) else s for s in _segments(path))
                label = f"/api/{service}/" + "/".join(segments)
                self._index.setdefault((service, len(segments)), []).append((segments, label))
        self.template = lru_cache(maxsize=8192)(self._template)

    def labels(self) -> set[str]:
        """Every value `template` can return."""
        routes = {label for entries in self._index.values() for _, label in entries}
        return routes | {DOCS, OTHER}

    def _template(self, uri: str) -> str:
        path = uri.split("?", 1)[0].split("#", 1)[0]
        if path == "/docs" or path.startswith(DOCS):
            return DOCS
        if not path.startswith("/api/"):
            return OTHER
        service, _, rest = path[len("/api/") :].partition("/")
        segments = tuple(rest.split("/")) if rest else ()
        if "" in segments:  # "//" or a trailing slash: no route has one
            return OTHER
        best, best_score = OTHER, -1
        for candidate, label in self._index.get((service, len(segments)), ()):
            score = 0
            for want, got in zip(candidate, segments, strict=True):
                if want == got:
                    score += 1
                elif want != ID:
                    break
            else:
                if score > best_score:
                    best, best_score = label, score
        return best


def with_openapi(directory: Path | None) -> Templater:
    """The templates of the documents in `directory` (none: only /docs/ and `other`)."""
    routes = openapi_routes(directory) if directory is not None and directory.is_dir() else {}
    if not routes:
        log.warning("no OpenAPI document in %s: every /api/ path is labelled other", directory)
    return Templater(routes)
