"""Spectral and Redocly on the documents the code builds now: 0 errors, 0 warnings, and a
document that breaks one of our rules fails (tools/checks/api_lint.py). Needs `make api-lint-deps`
(make test installs it); about 15 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import swag
from tools.checks import api_lint


def written(tmp_path: Path) -> list[Path]:
    paths = []
    for service in swag.DOCUMENTED:
        path = tmp_path / f"{service}.json"
        path.write_text(swag.render(swag.spec_of(service)))
        paths.append(path)
    return paths


def linters_installed() -> None:
    try:
        api_lint.commands([])
    except api_lint.MissingLinter as exc:
        pytest.fail(str(exc))


def test_the_built_documents_have_no_finding(tmp_path: Path) -> None:
    linters_installed()
    assert api_lint.lint(written(tmp_path)) == []


def test_a_public_operation_without_security_fails(tmp_path: Path) -> None:
    linters_installed()
    path = written(tmp_path)[0]
    spec = json.loads(path.read_text())
    public = [op for item in spec["paths"].values() for op in item.values() if op["security"] == []]
    del public[0]["security"]
    path.write_text(json.dumps(spec))
    failures = api_lint.lint([path])
    assert any("fixup-explicit-security" in failure for failure in failures), failures
