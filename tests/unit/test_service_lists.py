"""No test, tool or doc hard-codes the list of services: each derives it from lib/registry.py
(or, in docs/architecture.md, holds a table tools/deploy/servicetable.py generates), so a new
service is checked, routed and documented with no edit outside its own files (issue 40).

A Python list, tuple, set or dict literal naming every REST service, a doc line naming
them all, or a doc table whose first column does, fails here. A literal that names them
for a reason of its own (a stack wiring each service differently) says so on its line:
`# names services on purpose: <why>`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from lib import registry
from tests.conftest import for_service
from tools.deploy import servicetable

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ("lib", "codegen", "services", "tools", "observability", "tests", "bench")
SKIP = {ROOT / "lib" / "registry.py"}
# measurements of past runs and decisions as of their date name what they measured
DOCS_NOT_CHECKED = {"benchmarks.md", "reliability.md"}
ON_PURPOSE = "# names services on purpose:"
REST = frozenset(s.name for s in registry.gateway_services())
GENERATED = re.compile(r"<!-- ([\w-]+):begin.*?<!-- \1:end -->", re.S)


def python_lists(source: str) -> list[int]:
    """The lines of literals whose strings name every REST service."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items: list[ast.expr | None] = list(node.elts)
        elif isinstance(node, ast.Dict):
            items = list(node.keys)
        else:
            continue
        names = {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
        if names >= REST and ON_PURPOSE not in lines[node.lineno - 1]:
            found.append(node.lineno)
    return found


def doc_lists(text: str) -> list[str]:
    """The lines (and tables, by their first column) outside generated blocks naming every
    REST service."""
    text = GENERATED.sub("", text)
    found = [line for line in text.splitlines() if set(re.findall(r"[a-z]+", line)) >= REST]
    for table in re.findall(r"(?:^\|.*\n)+", text, re.M):
        first = {m.strip(" `*") for m in re.findall(r"^\|([^|]*)\|", table, re.M)}
        if first >= REST:
            found.append(table.splitlines()[0])
    return found


def python_files() -> list[Path]:
    files = [p for folder in PYTHON for p in (ROOT / folder).rglob("*.py")]
    return sorted(p for p in files if p not in SKIP and "pb" not in p.parts)


def doc_files() -> list[Path]:
    docs = [p for p in (ROOT / "docs").glob("*.md") if p.name not in DOCS_NOT_CHECKED]
    return sorted([*docs, ROOT / "README.md", ROOT / "nginx" / "README.md"])


def test_no_python_file_hard_codes_the_services() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in python_files()
        for line in python_lists(path.read_text())
    ]
    assert wrong == [], "derive these from lib/registry.py:\n" + "\n".join(wrong)


def test_no_doc_hard_codes_the_services() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}: {line[:120]}"
        for path in doc_files()
        for line in doc_lists(path.read_text())
    ]
    assert wrong == [], (
        "generate these (tools/deploy/servicetable.py) or say it once:\n" + "\n".join(wrong)
    )


def test_the_service_tables_are_current() -> None:
    assert servicetable.main(["servicetable", "check"]) == 0
    page = servicetable.PAGE.read_text()
    for service in registry.MICROSERVICES:
        assert f"| {service.name} | " in page


@pytest.mark.parametrize(
    "source",
    [
        f"SERVICES = {tuple(sorted(REST))!r}",
        f"PORTS = {{{', '.join(f'{n!r}: 1' for n in sorted(REST))}}}",
        f"def f() -> None:\n    for s in {sorted(REST)!r}:\n        pass",
    ],
)
def test_a_hard_coded_list_is_found(source: str) -> None:
    assert python_lists(source) != []
    assert python_lists(f"{source}  {ON_PURPOSE} a reason") == [] or "\n" in source
    assert doc_lists(f"Every service: {', '.join(sorted(REST))}.\n") != []
    table = "| svc | port |\n|---|---|\n" + "".join(f"| {n} | 1 |\n" for n in sorted(REST))
    assert doc_lists(table) != []
    assert doc_lists(f"<!-- x:begin -->\n{table}<!-- x:end -->\n") == []
    assert python_lists(f"ONE = {sorted(REST)[:1]!r}") == []


@pytest.mark.parametrize("service", registry.MICROSERVICES, ids=lambda s: s.name)
def test_make_test_svc_never_runs_the_scaffold_test(service: registry.Microservice) -> None:
    """`make test svc=X` runs X's files; the scaffold's e2e test declares none."""
    scaffold_test = ROOT / "tests" / "e2e" / "test_new_service.py"
    assert not for_service(scaffold_test, service.name)
    assert for_service(ROOT / "tests" / "integration" / "test_departments_api.py", "departments")
