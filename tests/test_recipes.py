"""docs/recipes.md followed on a copy of the tree: the recipe's commands (`make ...`) run
in the copy, its SQL blocks are the SQL written there, and the copy's own tests then
prove the result against the real PostgreSQL. The recipes that are lists of files
(endpoint, dependency, service) have every file and make target they name checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from lib.clients import http
from services.orders.settings import OrdersSettings
from tests.recipes_support import RECIPES, run_in, section
from tools.checks.closed_checkout import copy_tree as copy_checkout
from tools.examples_page import fenced
from tools.local.service_process import ROOT
from tools.time_scale import scaled

# a make command on a loaded machine: the server's types, sqlc, or a pytest run in the copy
COMMAND_TIMEOUT = scaled(180.0)


def copy_tree(tmp: Path) -> Path:
    """The working tree's files git knows of; `.venv` links to this one's (the Makefile and
    the sqlc plugin find Python there). `make` runs with `-o` on the install stamp, so
    nothing is ever installed from the copy."""
    tree = tmp / "tree"
    copy_checkout(tree)
    (tree / ".venv").symlink_to(ROOT / ".venv")
    return tree


def make(tree: Path, *args: str) -> str:
    command = ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", *args]
    return run_in(tree, command, COMMAND_TIMEOUT)


def pytest_in(tree: Path, *tests: str) -> str:
    pytest = str(tree / ".venv" / "bin" / "pytest")
    return run_in(tree, [pytest, "-q", "-p", "no:cacheprovider", *tests], COMMAND_TIMEOUT)


def replace_query(sql_file: Path, name: str, query: str) -> None:
    """Swap the query `-- name: <name>` of a query file for `query`."""
    text = sql_file.read_text()
    found = re.search(rf"^-- name: {name} .*?(?=^-- name: |\Z)", text, re.M | re.S)
    assert found, f"{name} not in {sql_file}"
    sql_file.write_text(text[: found.start()] + query.rstrip() + "\n\n" + text[found.end() :])


def insert_after(path: Path, anchor: str, text: str) -> None:
    source = path.read_text()
    assert source.count(anchor) == 1, f"{anchor!r} in {path}"
    path.write_text(source.replace(anchor, anchor + text))


WARRANTY_TEST = '''"""docs/recipes.md, "Add a column", step 9: written by tests/test_recipes.py."""

from typing import Any

from tests.integration.catalog_support import ADMIN, chain, post
# the fixtures, as the recipe imports them


async def patch(client: Any, service: dict[str, Any], version: int, body: Any) -> Any:
    headers = {**ADMIN, "If-Match": f'"{version}"'}
    return await client.patch(f"/v1/services/{service['id']}", json=body, headers=headers)


async def test_warranty_round_trips_absent_keeps_null_clears(client: Any) -> None:
    made = await chain(client)
    service = made["service"]
    assert service["warranty_months"] is None
    resp = await patch(client, service, 1, {"warranty_months": 24})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"]["warranty_months"] == 24
    resp = await patch(client, service, 2, {"name": "Fix a big leak"})  # absent: kept
    assert (await resp.json())["data"]["warranty_months"] == 24
    resp = await patch(client, service, 3, {"warranty_months": None})  # null: cleared
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"]["warranty_months"] is None
    for bad in ({"warranty_months": 0}, {"warranty_months": "12"}, {"name": None}):
        resp = await patch(client, service, 4, bad)
        assert resp.status == 400, await resp.text()
        assert [e["field"] for e in (await resp.json())["errors"]] == list(bad)
    got = await client.get(f"/v1/services/{service['id']}")
    assert (await got.json())["data"]["version"] == 4  # the refused ones changed nothing
    sub = made["subcategory"]["id"]
    created = await post(client, "/v1/services", {"subcategory_id": sub, "name": "Reseal a sink",
                                                  "base_price": "40", "warranty_months": 12})
    assert created["warranty_months"] == 12
'''

CHEAPEST_TEST = '''"""docs/recipes.md, "Add a query" and "Add an endpoint" (test_recipes.py)."""

import uuid
from typing import Any

import asyncpg

from services.catalog.db import services as sq
from tests.integration.catalog_support import chain, post
# the fixtures, as the recipe imports them


async def test_cheapest_service_of_a_subcategory(client: Any, catalog_dsn: str) -> None:
    made = await chain(client)  # "Fix a leak", 80.50
    sub = made["subcategory"]["id"]
    cheap = await post(client, "/v1/services",
                       {"subcategory_id": sub, "name": "Look at a leak", "base_price": "9.99"})
    conn = await asyncpg.connect(catalog_dsn)
    try:
        row = await sq.cheapest_service_of_subcategory(conn, subcategory_id=uuid.UUID(sub))
        assert row is not None
        assert (str(row.id), row.name) == (cheap["id"], "Look at a leak")
        assert await sq.cheapest_service_of_subcategory(conn, subcategory_id=uuid.uuid4()) is None
    finally:
        await conn.close()
    # the endpoint of "Add an endpoint", through the app
    resp = await client.get(f"/v1/subcategories/{sub}/cheapest-service")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"]["id"] == cheap["id"]
    assert resp.headers["ETag"] == '"1"'
    resp = await client.get(f"/v1/subcategories/{uuid.uuid4()}/cheapest-service")
    assert (resp.status, (await resp.json())["code"]) == (404, "NOT_FOUND")
    resp = await client.get("/v1/subcategories/not-a-uuid/cheapest-service")
    assert resp.status == 400
'''


def with_the_recipes_fixtures(test: str) -> str:
    """A test file as "Add a column", step 9 writes one: `catalog_dsn` is not imported (it
    is tests/integration/conftest.py's, which pytest applies to the file by itself), only
    `client` from the catalog's tests."""
    (imports,) = [b for b in fenced(section("Add a column"), "python") if "import client" in b]
    assert "catalog_dsn" not in imports
    marker = "# the fixtures, as the recipe imports them\n"
    assert test.count(marker) == 1
    return test.replace(marker, imports)


def test_add_a_column_and_a_nullable_patch_field(tmp_path: Path) -> None:
    recipe = section("Add a column")
    patch_recipe = section("A nullable PATCH field: absent keeps, null clears")
    up_sql, down_sql, create_query = fenced(recipe, "sql")
    (update_query,) = fenced(patch_recipe, "sql")
    tree = copy_tree(tmp_path)

    # 1. the migration pair, listed in sqlc.yaml
    assert "make migrate-new db=catalog name=services_warranty_months" in recipe
    make(tree, "migrate-new", "db=catalog", "name=services_warranty_months")
    (up,) = (tree / "migrations" / "catalog").glob("*_services_warranty_months.sql")
    config = yaml.safe_load((tree / "sql" / "catalog" / "sqlc.yaml").read_text())
    assert config["sql"][0]["schema"][-1] == f"../../migrations/catalog/{up.name}"
    up.write_text(up_sql.replace("NNNN_services_warranty_months", up.stem))
    up.with_suffix(".rollback.sql").write_text(down_sql)
    assert "make migrate-lint" in recipe
    make(tree, "migrate-lint")

    # 2. the queries; 3. the input models, as the recipe shows them
    queries = tree / "sql" / "catalog" / "queries" / "services.sql"
    replace_query(queries, "CreateService", create_query)
    replace_query(queries, "UpdateService", update_query)
    months = "WarrantyMonths = Annotated[int, Field(ge=1, le=120)]"
    field = "    warranty_months: WarrantyMonths | None = None"
    assert months in recipe
    assert field in recipe
    schemas = tree / "services" / "catalog" / "schemas.py"
    insert_after(schemas, 'Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", '
                          'description="ISO 4217 code.")]\n', months + "\n")  # fmt: skip
    insert_after(schemas, '    currency: Currency = "USD"\n', field + "\n")
    insert_after(schemas, "    currency: Currency | Keep = None\n", field + "\n")

    # 4. make sqlc asks the server (the schema changed); the row class has the column
    assert "make sqlc db=catalog" in recipe
    output = make(tree, "sqlc", "db=catalog")
    assert "types lock is stale, asking the server" in output, output
    models = (tree / "services" / "catalog" / "db" / "models.py").read_text()
    assert "warranty_months: int | None" in models
    generated = (tree / "services" / "catalog" / "db" / "services.py").read_text()
    assert "set_warranty_months: bool" in generated
    make(tree, "sqlc-check", "db=catalog")

    # 6. the OpenAPI document
    assert "make swag-gen svc=catalog" in recipe
    make(tree, "swag-gen", "svc=catalog")
    document = json.loads((tree / "docs" / "openapi" / "catalog.json").read_text())
    update = document["components"]["schemas"]["ServiceUpdate"]["properties"]
    assert "warranty_months" in update

    # 9. the recipe's test and the catalog's own, on the copy's code and migrations
    warranty = tree / "tests" / "integration" / "test_catalog_warranty.py"
    warranty.write_text(with_the_recipes_fixtures(WARRANTY_TEST))
    pytest_in(tree, "tests/integration/test_catalog_warranty.py",
              "tests/integration/test_catalog_api.py")  # fmt: skip


def test_add_a_query_and_an_endpoint_using_it(tmp_path: Path) -> None:
    recipe = section("Add a query")
    (query,) = fenced(recipe, "sql")
    tree = copy_tree(tmp_path)
    queries = tree / "sql" / "catalog" / "queries" / "services.sql"
    queries.write_text(queries.read_text().rstrip() + "\n\n" + query)
    assert "make sqlc db=catalog" in recipe
    output = make(tree, "sqlc", "db=catalog")
    assert "types lock is stale, asking the server" in output, output
    generated = (tree / "services" / "catalog" / "db" / "services.py").read_text()
    (signature,) = [b for b in fenced(recipe, "python") if "async def" in b]
    assert signature in generated, generated[-2000:]  # what the recipe says it generates
    make(tree, "sqlc-check", "db=catalog")

    endpoint = section("Add an endpoint")
    (handler,) = [b for b in fenced(endpoint, "python") if "@routes.get" in b]
    handlers = tree / "services" / "catalog" / "handlers.py"
    handlers.write_text(handlers.read_text() + "\n\n" + handler)
    assert "make swag-gen svc=catalog" in endpoint
    make(tree, "swag-gen", "svc=catalog")
    document = json.loads((tree / "docs" / "openapi" / "catalog.json").read_text())
    assert "/v1/subcategories/{id}/cheapest-service" in document["paths"]

    cheapest = tree / "tests" / "integration" / "test_catalog_cheapest.py"
    cheapest.write_text(with_the_recipes_fixtures(CHEAPEST_TEST))
    pytest_in(tree, "tests/integration/test_catalog_cheapest.py")


MAKE_TARGET = re.compile(r"`make ([a-z][a-z-]*)")
REPO_PATH = re.compile(r"`((?:lib|services|sql|migrations|tools|tests|nginx|deploy|docs)/[^`\s]*)`")


def exists(path: str) -> bool:
    """A file, or `file::test` (that test function in it)."""
    file, _, test = path.partition("::")
    if not (ROOT / file).exists():
        return False
    return not test or f"def {test}(" in (ROOT / file).read_text()


def test_the_recipes_name_what_exists() -> None:
    """Every `make` target and every path the page names exists (an example's own files,
    named after `invoices` or `warranty`, excepted), and so do the names of the dependency
    recipe."""
    page = RECIPES.read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(MAKE_TARGET.findall(page))
    assert named, "no make command found"
    assert named <= targets, f"not in the Makefile: {sorted(named - targets)}"
    paths = {p.rstrip(".,:;)") for p in REPO_PATH.findall(page)}
    own = ("invoices", "NNNN", "warranty", "<")
    missing = [p for p in sorted(paths) if not any(o in p for o in own) and not exists(p)]
    assert not missing, f"docs/recipes.md names what does not exist: {missing}"
    assert len(paths) > 25
    dependency = section("Call another service through a circuit breaker")
    assert "dependency_client" in dependency
    assert hasattr(http, "dependency_client")
    for name in ("catalog_url", "catalog_timeout", "catalog_breaker_threshold",
                 "catalog_breaker_reset"):  # fmt: skip
        assert name in dependency
        assert name in OrdersSettings.model_fields


@pytest.mark.parametrize("page", ["README.md", "docs/architecture.md"])
def test_recipes_are_linked(page: str) -> None:
    assert "recipes.md" in (ROOT / page).read_text()
