"""Every model type (dataclass, msgspec, attrs, pydantic) on every server driver: the pg
case generated for asyncpg, psycopg and psycopg-sync and the mysql case for aiomysql, with
each model type (into tmp_path, from the checked-in types locks), imported and run against
the real server: a row written and read back as the model type, and an aggregate `:one`
without GROUP BY returning its value, never None. (Both SQLite drivers:
tests/codegen/test_sqlite_variants.py.)"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import attrs
import msgspec
import psycopg
import pydantic
import pytest

from tests.codegen import test_runtime_mysql as my
from tests.codegen import test_runtime_pg as pg
from tests.codegen.conformance.live import awaited
from tests.servers import DatabaseFactory
from tools import sqlc
from tools.local.dbadmin import psycopg_dsn
from tools.sqlc_types import apply_schema

HERE = Path(__file__).parent
PLUGIN = HERE.parents[1] / "codegen" / "bin" / "sqlc-gen-fixup"
MODEL_TYPES = ("dataclass", "msgspec", "attrs", "pydantic")
VARIANTS = [(d, m) for d in ("asyncpg", "psycopg", "psycopg-sync", "aiomysql") for m in MODEL_TYPES]
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def package(driver: str, model: str) -> str:
    return f"every_{driver.replace('-', '_')}_{model}"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every variant, generated under one directory (on sys.path while imported)."""
    root = tmp_path_factory.mktemp("model_types_every_driver")
    for driver, model in VARIANTS:
        case = HERE / ("mysql" if driver == "aiomysql" else "pg")
        project = root / f"{package(driver, model)}_project"
        shutil.copytree(case / "queries", project / "queries")
        for name in ("schema.sql", "types.lock.json"):
            shutil.copy(case / name, project / name)
        engine = "mysql" if driver == "aiomysql" else "postgresql"
        (project / "sqlc.yaml").write_text(
            textwrap.dedent(f"""
            version: "2"
            plugins:
              - name: fixup
                process: {{cmd: {PLUGIN}, format: json}}
            sql:
              - engine: {engine}
                schema: [schema.sql]
                queries: queries
                codegen:
                  - out: ../{package(driver, model)}
                    plugin: fixup
                    options:
                      driver: {driver}
                      model_type: {model}
                      types_lock: types.lock.json
            """)
        )
        sqlc.run_sqlc(project)
    return root


def load(root: Path, name: str, module: str) -> ModuleType:
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"{name}.{module}")
    finally:
        sys.path.remove(str(root))


def is_model_type(value: object, model: str) -> bool:
    checks = {
        "dataclass": dataclasses.is_dataclass(value),
        "msgspec": isinstance(value, msgspec.Struct),
        "attrs": attrs.has(type(value)),
        "pydantic": isinstance(value, pydantic.BaseModel),
    }
    return checks[model]


async def connect(driver: str, dsn: str) -> Any:
    if driver == "asyncpg":
        return await asyncpg.connect(dsn)
    if driver == "psycopg":
        return await psycopg.AsyncConnection.connect(psycopg_dsn(dsn), autocommit=True)
    if driver == "psycopg-sync":
        return psycopg.connect(psycopg_dsn(dsn), autocommit=True)
    return await my.connect(dsn)


@pytest.fixture(scope="module")
def pg_dsn(databases: DatabaseFactory) -> str:
    dsn = databases.create("cg_every_pg", "postgresql")
    apply_schema(dsn, [pg.SCHEMA])
    return dsn


@pytest.fixture(scope="module")
def my_dsn(databases: DatabaseFactory) -> str:
    dsn = databases.create("cg_every_my", "mysql")
    apply_schema(dsn, [my.SCHEMA])
    return dsn


@pytest.mark.parametrize(("driver", "model"), VARIANTS)
async def test_each_model_type_runs_on_each_driver(
    generated: Path, pg_dsn: str, my_dsn: str, driver: str, model: str
) -> None:
    name = package(driver, model)
    models = load(generated, name, "models")
    conn = await connect(driver, my_dsn if driver == "aiomysql" else pg_dsn)
    try:
        if driver == "aiomysql":
            q = load(generated, name, "gadgets")
            values = {**my.FULL, "kind": models.GadgetsKind.TOY, "seen_at": T0}
            new_id = await q.create_gadget(conn, **values)
            got = await q.get_gadget(conn, id=new_id)
            assert (got.id, got.name, got.kind) == (new_id, my.FULL["name"], values["kind"])
            count = (await q.gadget_stats(conn, kind=values["kind"])).total
        else:
            q = load(generated, name, "authors")
            values = {"name": name, "mood": models.Mood.HAPPY, "tags": ["t"], "active": True}
            created = await awaited(q.create_author(conn, **values, created_at=T0, **pg.NULLS))
            got = await awaited(q.get_author(conn, id=created.id))
            assert got == created
            assert (got.name, got.mood, got.tags, got.created_at) == (
                name,
                values["mood"],
                ["t"],
                T0,
            )
            count = await awaited(q.count_authors(conn))
        assert is_model_type(got, model)
        assert isinstance(count, int)
        assert count >= 1
    finally:
        await awaited(conn.close())
