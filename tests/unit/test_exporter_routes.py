"""The nginx exporter's route templating edges (observability/nginx_exporter/routes.py):
the query and fragment cut at their first mark, /docs exactly, a deterministic choice
between equally literal templates, the label cache's bound, documents without paths, and
the warning when there is nothing to label with."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from observability.nginx_exporter.routes import (
    DOCS,
    OTHER,
    Templater,
    _segments,
    openapi_routes,
    with_openapi,
)

ROUTES = {"orders": ["/v1/orders", "/v1/orders/{id}"]}


@pytest.mark.parametrize(
    ("uri", "template"),
    [
        ("/api/orders/v1/orders?a=1?b=2", "/api/orders/v1/orders"),
        ("/api/orders/v1/orders/7?next=/api/x?y", "/api/orders/v1/orders/{id}"),
        ("/api/orders/v1/orders#top#more", "/api/orders/v1/orders"),
        ("/api/orders/v1/orders/7#a#b", "/api/orders/v1/orders/{id}"),
        ("/api/orders/v1/orders?q=1#frag", "/api/orders/v1/orders"),
        ("/docs", DOCS),
        ("/docs/index.html", DOCS),
        ("/DOCS", OTHER),
        ("/docsx", OTHER),
        ("/api/orders", OTHER),
        ("/api/orders/", OTHER),
    ],
)
def test_templates(uri: str, template: str) -> None:
    assert Templater(ROUTES).template(uri) == template


ID1 = "6f1c2f4e-1a2b-4c3d-8e9f-0123456789ab"
ID2 = "0256fcf7-03a6-4de2-9a89-dad087ede3c9"
ROUTES_BY_SERVICE = {
    "departments": ("/v1/departments", "/v1/departments/{id}"),
    "users": ("/v1/users", "/v1/users/{id}", "/v1/users/{id}/picture", "/v1/users/me/password"),
    "orders": ("/v1/orders", "/v1/orders/{id}/offers/{offer_id}/accept"),
}


@pytest.mark.parametrize(
    ("uri", "template"),
    [
        ("/api/departments/v1/departments", "/api/departments/v1/departments"),
        ("/api/departments/v1/departments?limit=5", "/api/departments/v1/departments"),
        (f"/api/departments/v1/departments/{ID1}", "/api/departments/v1/departments/{id}"),
        ("/api/departments/health", "/api/departments/health"),
        ("/api/departments/v1/openapi.json", "/api/departments/v1/openapi.json"),
        ("/api/users/v1/users/me", "/api/users/v1/users/{id}"),
        ("/api/users/v1/users/me/password", "/api/users/v1/users/me/password"),
        (f"/api/users/v1/users/{ID1}/picture", "/api/users/v1/users/{id}/picture"),
        (
            f"/api/orders/v1/orders/{ID1}/offers/{ID2}/accept",
            "/api/orders/v1/orders/{id}/offers/{id}/accept",
        ),
        ("/api/departments/v1/departments/", OTHER),
        ("/api/departments//v1/departments", OTHER),
        ("/api/departments/v1/departments/a/b", OTHER),
        ("/api/nope/v1/x", OTHER),
        ("/wp-login.php", OTHER),
        ("", OTHER),
    ],
)
def test_service_templates(uri: str, template: str) -> None:
    """The cases of test_nginx_exporter.py::test_route_templates with fixed ids (mutmut
    names tests by id, so they must not change between collections)."""
    assert Templater(ROUTES_BY_SERVICE).template(uri) == template


def test_equally_literal_templates_resolve_to_the_first_in_order() -> None:
    # both match /v1/y/x with two literal segments; the sorted table's first wins, so the
    # label never depends on the order of the documents
    for paths in (["/v1/{id}/x", "/v1/y/{id}"], ["/v1/y/{id}", "/v1/{id}/x"]):
        templater = Templater({"s": paths})
        assert templater.template("/api/s/v1/y/x") == "/api/s/v1/y/{id}"


def test_a_root_route_labels_the_bare_service_path() -> None:
    templater = Templater({"s": ["/"]})
    assert templater.template("/api/s") == "/api/s/"
    assert templater.template("/api/s/") == "/api/s/"


def test_the_label_cache_is_bounded() -> None:
    info = Templater(ROUTES).template.cache_info()  # type: ignore[attr-defined]
    assert info.maxsize == 8192


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("", ()),
        ("/", ()),
        ("//", ()),
        ("/a", ("a",)),
        ("/a/b/", ("a", "b")),
        ("a", ("a",)),
        ("/X/", ("X",)),
        ("/Xa/bX", ("Xa", "bX")),
    ],
)
def test_segments(path: str, segments: tuple[str, ...]) -> None:
    assert _segments(path) == segments


def test_a_document_without_paths_still_names_its_service(tmp_path: Path) -> None:
    (tmp_path / "chat.json").write_text(json.dumps({"openapi": "3.1.0"}))
    (tmp_path / "odd.json").write_text(json.dumps({"paths": ["/not", "/a/mapping"]}))
    assert openapi_routes(tmp_path) == {"chat": []}
    templater = with_openapi(tmp_path)
    assert templater.template("/api/chat/health") == "/api/chat/health"
    assert templater.template("/api/odd/health") == OTHER


def test_no_directory_warns_and_labels_only_docs_and_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for directory in (None, tmp_path / "missing", tmp_path):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="nginx_exporter"):
            templater = with_openapi(directory)
        assert templater.labels() == {DOCS, OTHER}
        assert [r.getMessage() for r in caplog.records] == [
            f"no OpenAPI document in {directory}: every /api/ path is labelled other"
        ]


def test_documents_found_do_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "orders.json").write_text(json.dumps({"paths": {"/v1/orders": {}}}))
    with caplog.at_level(logging.WARNING, logger="nginx_exporter"):
        templater = with_openapi(tmp_path)
    assert caplog.records == []
    assert "/api/orders/v1/orders" in templater.labels()
