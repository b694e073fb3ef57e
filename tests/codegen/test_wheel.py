"""The plugin as a tool of its own: its wheel, installed into a fresh venv WITHOUT the Fixup
tree, writes each PostgreSQL and MySQL project's types lock with its own command
(`sqlc-gen-fixup types --dsn ...`, on a database this test creates), generates a small
PostgreSQL and a small MySQL project, and the generated functions run against the real
servers (tests/codegen/standalone/*_check.py run in that venv): asyncpg, psycopg (msgspec
Structs) and psycopg-sync (dataclasses) from sqlc's default protobuf request, aiomysql from
JSON, and a SQLite project for sqlite3 (sync) and aiosqlite (async) on a file. Production
needs only the runtime: a second venv holding the runtime's wheel and asyncpg alone (no
generator, ruff, pglast or sqlglot) runs the generated PostgreSQL queries.

The dependencies' wheels come from a wheelhouse outside the tree (~/.cache/fixup), filled
once from PyPI with the versions installed here; later runs are offline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib.metadata import version
from pathlib import Path

from codegen import __version__
from tests.servers import DatabaseFactory, Servers
from tools.local.databases import with_database
from tools.local.dbadmin import create_database, drop_database
from tools.sqlc_run import SQLC

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent / "standalone"
DEPENDENCIES = ["orjson", "pglast", "sqlglot", "ruff", "betterproto2", "asyncpg", "aiomysql"]
DEPENDENCIES += ["PyYAML"]
DEPENDENCIES += ["PyMySQL"]
DEPENDENCIES += ["psycopg", "psycopg-binary", "msgspec", "attrs"]
DEPENDENCIES += ["pydantic", "pydantic-core", "annotated-types", "typing-extensions"]
DEPENDENCIES += ["typing-inspection", "aiosqlite"]
WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fixup" / "wheels"
TIMEOUT = 120  # each step; the whole test takes ~25 s


def run(cmd: list[str], **kwargs: object) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs
    )  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout}\n{proc.stderr}"
    return str(proc.stdout)


def run_fails(cmd: list[str], **kwargs: object) -> str:
    """stderr of a command that must fail (exit 1)."""
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs
    )  # type: ignore[call-overload]
    assert proc.returncode == 1, f"{' '.join(map(str, cmd))}:\n{proc.stdout}\n{proc.stderr}"
    return str(proc.stderr)


def wheelhouse() -> Path:
    pins = [f"{name}=={version(name)}" for name in DEPENDENCIES]
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:"]
    run([*pip, "--no-index", "--find-links", str(WHEELHOUSE), "-d", str(WHEELHOUSE), *pins]) if (
        _complete(pins)
    ) else run([*pip, "-d", str(WHEELHOUSE), *pins])
    return WHEELHOUSE


def _complete(pins: list[str]) -> bool:
    names = {
        p.name.split("-")[0].lower() + "-" + p.name.split("-")[1] for p in WHEELHOUSE.glob("*.whl")
    }
    return all(pin.replace("==", "-").lower() in names for pin in pins)


def build_wheel(tmp: Path, runtime: bool = False) -> Path:
    """The wheel of a copy of codegen/ (the generator) or of codegen/runtime/ (the runtime
    distribution); the build leaves nothing in the tree."""
    src = tmp / ("runtime_src" if runtime else "src")
    source = ROOT / "codegen" / "runtime" if runtime else ROOT / "codegen"
    ignore = shutil.ignore_patterns("__pycache__", "bin", "*.egg-info")
    shutil.copytree(source, src, ignore=ignore)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp / "dist"), str(src)])  # fmt: skip
    name = "sqlc_gen_fixup_runtime" if runtime else "sqlc_gen_fixup"
    return next((tmp / "dist").glob(f"{name}-*.whl"))


def sqlc_project(
    root: Path, engine: str, schema: Path, queries: Path, plugin: Path, fmt: str, options: str,
    out: str,
) -> None:  # fmt: skip
    (root / "queries").mkdir(parents=True)
    shutil.copy(schema, root / "schema.sql")
    shutil.copy(queries, root / "queries" / queries.name)
    (root / "sqlc.yaml").write_text(
        textwrap.dedent(f"""\
        version: "2"
        plugins:
          - name: py
            process: {{cmd: {plugin}{fmt}}}
        sql:
          - engine: {engine}
            schema: [schema.sql]
            queries: queries
            codegen:
              - {{out: ../{out}, plugin: py, options: {options}}}
        """)
    )


def project(
    tmp: Path,
    engine: str,
    prefix: str,
    plugin: Path,
    fmt: str,
    options: str,
    out: str = "shop",
    dsn: str = "",
) -> Path:
    """A sqlc project generating package `out` (modules <prefix>_queries) with the wheel,
    its types lock written by the wheel's command on the server of `dsn` (SQLite needs
    none); `fmt` is the plugin's `format:` line, "" for sqlc's default (protobuf)."""
    root = tmp / f"{prefix}_{out}_project"
    schema, queries = HERE / f"{prefix}_schema.sql", HERE / f"{prefix}_queries.sql"
    sqlc_project(root, engine, schema, queries, plugin, fmt, options, out)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    if engine == "mysql":  # its DSN as one with a password is given: out of the command line
        types_env = {**env, "SQLC_FIXUP_DSN": dsn}
        run([str(plugin), "types", "--sqlc", str(SQLC)], cwd=root, env=types_env)
    elif engine != "sqlite":
        run([str(plugin), "types", "--dsn", dsn, "--sqlc", str(SQLC)], cwd=root, env=env)
        assert (root / "types.lock.json").exists()
    run([str(SQLC), "generate"], cwd=root, env=env)
    return root


def refused_by_the_server(tmp: Path, plugin: Path, dsn: str) -> None:
    """Without a lock `sqlc generate` fails saying so, once; a query PostgreSQL refuses
    fails the wheel's types command, named with the server's message (the DSN in no
    message), and then `sqlc generate` too."""
    root = tmp / "refused_project"
    schema, queries = tmp / "books.sql", tmp / "books_queries.sql"
    schema.write_text("CREATE TABLE books (id bigint PRIMARY KEY, title text NOT NULL);\n")
    queries.write_text(
        "-- name: Titles :many\nSELECT title FROM books;\n\n"
        "-- name: TitleCounts :many\nSELECT title, count(*) FROM books;\n"
    )
    sqlc_project(root, "postgresql", schema, queries, plugin, "", "{driver: asyncpg}", "refused")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    lockless = run_fails([str(SQLC), "generate"], cwd=root, env=env)
    assert lockless.count("the types lock types.lock.json does not exist") == 1, lockless
    assert "sqlc-gen-fixup types --dsn" in lockless
    said = run_fails([str(plugin), "types", "--dsn", dsn, "--sqlc", str(SQLC)], cwd=root, env=env)
    assert "1 queries refused by the server" in said, said
    assert "queries/books_queries.sql:4: query TitleCounts: server says: " in said, said
    assert 'column "books.title" must appear in the GROUP BY clause' in said, said
    assert "Titles:" not in said
    assert dsn not in said
    generate = run_fails([str(SQLC), "generate"], cwd=root, env=env)
    assert "query TitleCounts: server says:" in generate, generate


def test_the_wheel_generates_and_runs_without_the_fixup_tree(
    tmp_path: Path, servers: Servers, databases: DatabaseFactory
) -> None:
    wheel, runtime = build_wheel(tmp_path), build_wheel(tmp_path, runtime=True)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    extras = "postgresql,mysql,asyncpg,aiomysql,psycopg,msgspec,pydantic,attrs,aiosqlite"
    links = ["--find-links", str(wheelhouse()), "--find-links", str(runtime.parent)]
    run([str(python), "-m", "pip", "install", "-q", "--no-index", *links,
         f"{wheel}[{extras}]", f"{runtime}[json,pydantic]"])  # fmt: skip
    plugin = venv / "bin" / "sqlc-gen-fixup"
    assert plugin.exists()
    work = tmp_path / "work"
    work.mkdir()
    pg = databases.create("wheel_types", "postgresql")  # the types command's servers
    my = databases.create("wheel_types", "mysql")
    try:
        refused_by_the_server(work, plugin, pg)
        project(work, "postgresql", "pg", plugin, "", "{driver: asyncpg}", dsn=pg)  # protobuf
        project(work, "mysql", "my", plugin, ", format: json", "{driver: aiomysql}", dsn=my)
        psycopg_options = "{driver: psycopg, model_type: msgspec}"
        project(work, "postgresql", "pg", plugin, "", psycopg_options, "shop_psycopg", pg)
        sync_options = "{driver: psycopg-sync, model_type: dataclass}"
        project(work, "postgresql", "pg", plugin, "", sync_options, "shop_psycopg_sync", pg)
        pydantic_options = "{driver: asyncpg, model_type: pydantic}"
        project(work, "postgresql", "pg", plugin, "", pydantic_options, "shop_pydantic", pg)
        attrs_options = "{driver: aiomysql, model_type: attrs}"
        project(work, "mysql", "my", plugin, ", format: json", attrs_options, "shop_attrs", my)
    finally:
        databases.drop(pg)
        databases.drop(my)
    project(work, "sqlite", "lite", plugin, "", "{driver: sqlite3}", out="shop_lite")
    alite_options = "{driver: aiosqlite, model_type: msgspec}"
    project(work, "sqlite", "lite", plugin, "", alite_options, out="shop_alite")
    generated = (work / "shop" / "pg_queries.py").read_text()
    assert "from sqlc_fixup_runtime import" in generated
    assert "sqlc_gen_fixup" not in generated
    assert "from codegen" not in generated
    assert "lib." not in generated
    checks = ["pg_check.py", "psycopg_check.py", "psycopg_sync_check.py", "my_check.py"]
    checks += ["lite_check.py"]
    for name in [*checks, "pg_schema.sql", "my_schema.sql", "lite_schema.sql"]:
        shutil.copy(HERE / name, work / name)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(work)}
    label = f"fixup_wheel_{os.getpid()}"
    for dsn, script, done, *package in [
        (with_database(servers.pg_dsn, label), "pg_check.py", "pg ok"),
        (with_database(servers.mysql_dsn, label), "my_check.py", "mysql ok"),
        (with_database(servers.pg_dsn, label + "_pyd"), "pg_check.py", "pg ok", "shop_pydantic"),
        (with_database(servers.mysql_dsn, label + "_at"), "my_check.py", "mysql ok", "shop_attrs"),
        (with_database(servers.pg_dsn, label + "_psy"), "psycopg_check.py", "psycopg ok"),
        (
            with_database(servers.pg_dsn, label + "_sync"),
            "psycopg_sync_check.py",
            "psycopg sync ok",
        ),
    ]:
        create_database(dsn)
        try:
            assert done in run([str(python), "-P", script, dsn, *package], cwd=work, env=env)
        finally:
            drop_database(dsn)
    lite = run([str(python), "-P", "lite_check.py", str(work / "lite.db")], cwd=work, env=env)
    assert "sqlite ok" in lite
    production_runs_on_the_runtime_alone(tmp_path, runtime, work, databases)
    mypy = [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports"]
    # mypy runs from the Fixup venv (the wheel does not ship it) on the generated package,
    # resolving imports in the wheel's venv (sqlc_gen_fixup ships py.typed)
    packages = ["shop", "shop_psycopg", "shop_psycopg_sync", "shop_pydantic", "shop_attrs"]
    for name in [*packages, "shop_lite", "shop_alite"]:
        run([*mypy, "--python-executable", str(python), name], cwd=work, env=dict(os.environ))


def production_runs_on_the_runtime_alone(
    tmp: Path, runtime: Path, work: Path, databases: DatabaseFactory
) -> None:
    """A venv with the runtime's wheel and the driver only runs the generated queries."""
    venv = tmp / "production"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links",
         str(wheelhouse()), str(runtime), "asyncpg"])  # fmt: skip
    installed = run([str(python), "-m", "pip", "list", "--format=freeze"]).lower()
    names = sorted(line.split("==")[0] for line in installed.split())
    names = [n for n in names if n not in ("pip", "setuptools")]  # what venv puts in
    assert names == ["asyncpg", "orjson", "sqlc-gen-fixup-runtime"], names
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(work)}
    dsn = databases.create("wheel_production", "postgresql")
    try:
        assert "pg ok" in run([str(python), "-P", "pg_check.py", dsn], cwd=work, env=env)
    finally:
        databases.drop(dsn)
    generator = ["sqlc_gen_fixup", "ruff", "pglast", "sqlglot", "betterproto2", "yaml"]
    probe = f"import importlib.util as u; print([m for m in {generator} if u.find_spec(m)])"
    assert run([str(python), "-c", probe], env=env).strip() == "[]"


# what only the project the plugin comes from knows: its name, its make targets, its trees,
# its decision records; none of it may reach a wheel user
PROJECT_NAMES = re.compile(
    r"\bFixup\b|\bmake (sqlc|codegen|test)|\b(lib|services|tools|docs)/|'(lib|services)'|\bADR\b"
)


def test_the_runtime_wheel_is_small_and_names_no_project(tmp_path: Path) -> None:
    runtime = build_wheel(tmp_path, runtime=True)
    assert runtime.name.startswith(f"sqlc_gen_fixup_runtime-{__version__}-")
    with zipfile.ZipFile(runtime) as archive:
        texts = {name: archive.read(name).decode() for name in archive.namelist()}
    modules = sorted(n for n in texts if n.endswith(".py"))
    shipped = ["__init__", "aiosqlite_conn", "json_columns", "psycopg_conn", "pydantic_rows"]
    shipped += ["sqlite_conn"]
    assert modules == [f"sqlc_fixup_runtime/{m}.py" for m in shipped], modules
    metadata = texts[f"sqlc_gen_fixup_runtime-{__version__}.dist-info/METADATA"]
    requires = sorted(line for line in metadata.splitlines() if line.startswith("Requires-Dist"))
    assert requires == [
        'Requires-Dist: msgspec>=0.18; extra == "json"',
        "Requires-Dist: orjson>=3.9",
        'Requires-Dist: pydantic>=2.9; extra == "pydantic"',
    ], requires
    assert os.path.getsize(runtime) < 20_000
    found = [
        f"{name}:{n}: {line.strip()}"
        for name, text in texts.items()
        for n, line in enumerate(text.splitlines(), 1)
        if PROJECT_NAMES.search(line)
    ]
    assert found == []


def test_the_wheel_ships_its_own_readme_license_and_changelog_and_no_project_names(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    assert wheel.name.startswith(f"sqlc_gen_fixup-{__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        texts = {name: archive.read(name).decode() for name in archive.namelist()}
    info = f"sqlc_gen_fixup-{__version__}.dist-info"
    for shipped in ("README.md", "CHANGELOG.md", "LICENSE"):
        assert f"sqlc_gen_fixup/{shipped}" in texts, shipped
    assert texts[f"{info}/licenses/LICENSE"].startswith("MIT License")
    assert "License-Expression: MIT" in texts[f"{info}/METADATA"]
    assert "# sqlc-gen-fixup" in texts[f"{info}/METADATA"]  # the README is the description
    changelog = texts["sqlc_gen_fixup/CHANGELOG.md"]  # the newest release (not Unreleased)
    newest = re.search(r"^## (?!Unreleased$)(\S+)$", changelog, re.MULTILINE)
    assert newest is not None
    assert newest.group(1) == __version__
    found = [
        f"{name}:{n}: {line.strip()}"
        for name, text in texts.items()
        for n, line in enumerate(text.splitlines(), 1)
        if PROJECT_NAMES.search(line)
    ]
    assert found == []
