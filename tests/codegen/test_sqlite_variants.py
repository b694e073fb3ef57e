"""Every model type with both SQLite drivers: the schema and queries of
tests/codegen/sqlite generated (into tmp_path) for sqlite3 and aiosqlite with dataclass,
msgspec, attrs and pydantic rows, imported and run on a real SQLite file (a sorted query
keyset-paged too), and clean under mypy --strict and pyright strict; and what the plugin
refuses on SQLite, named."""

from __future__ import annotations

import asyncio
import datetime
import importlib
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import aiosqlite
import pytest
from sqlc_fixup_runtime import expand_sqlite_slices

from codegen.placeholders import sqlite_placeholders
from tests.codegen.sqlite_support import SCHEMA, project
from tools import sqlc

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MODEL_TYPES = ("dataclass", "msgspec", "attrs", "pydantic")
VARIANTS = [(d, m) for d in ("sqlite3", "aiosqlite") for m in MODEL_TYPES]
TIMEOUT = 300  # mypy over eight generated packages on a loaded machine


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sqlite_variants")
    for driver, model in VARIANTS:
        case = project(root, f"lite_{driver}_{model}", f"{{driver: {driver}, model_type: {model}}}")
        sqlc.run_sqlc(case)
    return root


def load(root: Path, package: str, module: str) -> ModuleType:
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"{package}.{module}")
    finally:
        sys.path.remove(str(root))


@pytest.mark.parametrize(("driver", "model"), VARIANTS)
def test_each_model_type_runs_on_each_driver(
    generated: Path, tmp_path: Path, driver: str, model: str
) -> None:
    q = load(generated, f"lite_{driver}_{model}", "authors")
    path = tmp_path / "t.db"
    setup = sqlite3.connect(path)
    setup.executescript(SCHEMA.read_text())
    setup.close()
    born = datetime.date(2000, 1, 31)

    async def run_async() -> None:
        async with aiosqlite.connect(path) as conn:
            await check(conn, is_async=True)

    async def check(conn: Any, *, is_async: bool) -> None:
        async def do(fn: Any, *args: Any, **kwargs: Any) -> Any:
            result = fn(conn, *args, **kwargs)
            return await result if is_async else result

        values = {"bio": None, "seen_at": None, "photo": b"x", "price": None, "profile": [1]}
        created = await do(q.create_author, name="n", born=born, rating=1.5, active=True, **values)
        assert created.born == born
        assert created.active is True
        assert created.profile == [1]
        assert await do(q.get_author, id=created.id) == created
        last = await do(q.add_author, name="m")
        found = await do(q.authors_by_ids, ids=[created.id, last], active=True)
        assert [a.name for a in found] == ["n", "m"]
        params = q.AddAuthorsParams(name="x", rating=2.0)
        await do(q.add_authors, [params])
        assert await do(q.count_authors) == 3
        walked, after = [], None  # the sorted query, keyset-paged by a REAL key, one a page
        for _ in range(4):
            page = await do(q.page_authors, orderby="rating", sort="desc", active=True,
                            skip=[0], row_limit=1, after=after)  # fmt: skip
            walked += page
            after = (page[-1].rating, page[-1].id) if page else after
        assert [a.rating for a in walked] == [2.0, 1.5, 0.0]

    if driver == "aiosqlite":
        asyncio.run(run_async())
    else:
        conn = sqlite3.connect(path)
        try:
            asyncio.run(check(conn, is_async=False))
        finally:
            conn.close()


def test_every_variant_is_clean_under_mypy_strict(generated: Path) -> None:
    packages = [f"lite_{d}_{m}" for d, m in VARIANTS]
    mypy = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-incremental",
        *(f"-p{p}" for p in packages),
    ]
    env = {"PATH": "/usr/bin:/bin", "MYPYPATH": f"{generated}:{ROOT}"}
    proc = subprocess.run(mypy, cwd=generated, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def refused(tmp_path: Path, query: str) -> str:
    queries = tmp_path / "q"
    queries.mkdir()
    (queries / "q.sql").write_text(textwrap.dedent(query).lstrip())
    case = project(tmp_path, "refused", "{driver: sqlite3}", queries)
    with pytest.raises(sqlc.SqlcError) as info:
        sqlc.run_sqlc(case)
    assert not (tmp_path / "refused").exists(), "a failed generation writes nothing"
    return str(info.value)


def test_copyfrom_is_refused_naming_the_query(tmp_path: Path) -> None:
    insert = "INSERT INTO books (author_id, title) VALUES (?, ?);"
    message = refused(tmp_path, f"-- name: AddMany :copyfrom\n{insert}\n")
    assert "q.sql: query AddMany: :copyfrom has no SQLite form" in message
    assert ":batchexec" in message


def test_a_query_sqlite_refuses_is_named_with_its_message(tmp_path: Path) -> None:
    # sqlc accepts it; SQLite knows `nope()` is no function
    message = refused(tmp_path, "-- name: Bad :one\nSELECT nope(id) FROM authors;\n")
    assert "query Bad" in message
    assert "no such function: nope" in message


def test_placeholders_are_bound_in_text_order_quotes_and_comments_kept() -> None:
    sql = "SELECT '?1', \"?\" FROM t /* ? */ WHERE a = ?2 AND b = ? AND c = ?2 -- ?\n"
    text, numbers = sqlite_placeholders(sql)
    assert text == "SELECT '?1', \"?\" FROM t /* ? */ WHERE a = ? AND b = ? AND c = ? -- ?\n"
    assert numbers == [2, 3, 2]  # a bare `?`: the largest number before it, plus one


def test_a_slice_expands_to_one_bound_placeholder_per_value() -> None:
    sql = "SELECT 1 WHERE a IN (/*SLICE:ids*/?) AND b = ?"
    assert expand_sqlite_slices(sql, ([1, 2], "x")) == (
        "SELECT 1 WHERE a IN (?, ?) AND b = ?",
        [1, 2, "x"],
    )
    assert expand_sqlite_slices(sql, ([], "x")) == ("SELECT 1 WHERE a IN (NULL) AND b = ?", ["x"])


def test_every_variant_is_clean_under_pyright_strict(generated: Path) -> None:
    config = {"typeCheckingMode": "strict", "pythonVersion": "3.11",
              "include": [f"lite_{d}_{m}" for d, m in VARIANTS],
              "extraPaths": [str(ROOT)]}  # fmt: skip
    (generated / "pyrightconfig.json").write_text(json.dumps(config))
    pyright = Path(sys.executable).with_name("pyright")
    proc = subprocess.run(
        [str(pyright), "--outputjson", "--pythonpath", sys.executable],
        cwd=generated, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    problems = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
    ]
    assert problems == []
    assert report["summary"]["filesAnalyzed"] >= len(VARIANTS) * 3
