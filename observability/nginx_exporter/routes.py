"""A raw request URI -> the route template used as the `path` label.

`/api/departments/v1/departments/6f1c...?limit=5` -> `/api/departments/v1/departments/{id}`.
The query string is dropped, the `/api/<svc>` prefix is kept, and the rest must match
one of that service's route templates segment by segment (a `{...}` segment matches any
one segment: UUIDs, numbers, `me`; a literal one only itself; the most literal match
wins). Everything else -> `other`, so the label's values are bounded by the route table.

The table: the routes of API.md below (services that do not exist yet included), plus
the paths of every OpenAPI document in docs/openapi/ (`--openapi-dir`), which are exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

OTHER = "other"
DOCS = "/docs/"
ID = "{id}"
_PARAM = re.compile(r"^\{[^/{}]+\}$")

COMMON = ("/health", "/ready", "/metrics", "/v1/openapi.json")
ROUTES: dict[str, tuple[str, ...]] = {
    "departments": ("/v1/departments", "/v1/departments/{id}"),
    "users": (
        "/v1/auth/register",
        "/v1/auth/verify",
        "/v1/auth/resend-verification",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/password-reset",
        "/v1/auth/password-reset/confirm",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/users/{id}/picture",
        "/v1/users/me/password",
        "/v1/pictures/{key}",
        "/v1/providers/{id}",
    ),
    "catalog": (
        "/v1/category-types",
        "/v1/category-types/{id}",
        "/v1/categories",
        "/v1/categories/{id}",
        "/v1/subcategories",
        "/v1/subcategories/{id}",
        "/v1/services",
        "/v1/services/{id}",
        "/v1/services/{id}/providers",
        "/v1/providers/{id}/services",
        "/v1/providers/{id}/services/{service_id}",
    ),
    "orders": (
        "/v1/orders",
        "/v1/orders/{id}",
        "/v1/orders/{id}/cancel",
        "/v1/orders/{id}/offers",
        "/v1/orders/{id}/offers/{offer_id}/withdraw",
        "/v1/orders/{id}/offers/{offer_id}/accept",
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/start",
        "/v1/jobs/{id}/complete",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/{id}/review",
        "/v1/providers/{id}/reviews",
        "/v1/currencies",
    ),
    "chat": (
        "/v1/conversations",
        "/v1/conversations/{id}",
        "/v1/conversations/{id}/messages",
        "/v1/conversations/{id}/ws",
    ),
}


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

    def __init__(self, routes: Mapping[str, Iterable[str]] | None = None) -> None:
        table: dict[str, set[str]] = {}
        for service, paths in (routes if routes is not None else ROUTES).items():
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
        return {label for entries in self._index.values() for _, label in entries} | {
            DOCS,
            OTHER,
        }

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
    routes: dict[str, list[str]] = {svc: list(paths) for svc, paths in ROUTES.items()}
    if directory is not None and directory.is_dir():
        for service, paths in openapi_routes(directory).items():
            routes.setdefault(service, []).extend(paths)
    return Templater(routes)
