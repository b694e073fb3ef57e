"""The plugin as a tool of its own: its wheel, installed into a fresh venv WITHOUT the Fixup
tree, generates a small PostgreSQL and a small MySQL project, and the generated functions
run against the real servers (tests/codegen/standalone/*_check.py run in that venv): asyncpg,
psycopg (msgspec Structs) and psycopg-sync (dataclasses) from sqlc's default protobuf request,
aiomysql from JSON, and a SQLite project for sqlite3 (sync) and aiosqlite (async) on a file.

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
from tests.servers import Servers
from tools.databases import with_database
from tools.dbadmin import create_database, drop_database
from tools.sqlc_run import SQLC

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent / "standalone"
DEPENDENCIES = ["orjson", "pglast", "sqlglot", "ruff", "betterproto2", "asyncpg", "aiomysql"]
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


def build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of codegen/ (the build leaves nothing in the tree)."""
    src = tmp / "src"
    shutil.copytree(ROOT / "codegen", src, ignore=shutil.ignore_patterns("__pycache__", "bin"))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp / "dist"), str(src)])  # fmt: skip
    return next((tmp / "dist").glob("sqlc_gen_fixup-*.whl"))


def project(
    tmp: Path, engine: str, prefix: str, plugin: Path, fmt: str, options: str, out: str = "shop"
) -> Path:
    """A sqlc project generating package `out` (modules <prefix>_queries) with the wheel;
    `fmt` is the plugin's `format:` line, "" for sqlc's default (protobuf)."""
    root = tmp / f"{prefix}_{out}_project"
    (root / "queries").mkdir(parents=True)
    shutil.copy(HERE / f"{prefix}_schema.sql", root / "schema.sql")
    shutil.copy(HERE / f"{prefix}_queries.sql", root / "queries" / f"{prefix}_queries.sql")
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
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    run([str(SQLC), "generate"], cwd=root, env=env)
    return root


def test_the_wheel_generates_and_runs_without_the_fixup_tree(
    tmp_path: Path, servers: Servers
) -> None:
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    extras = "asyncpg,aiomysql,psycopg,msgspec,pydantic,attrs,aiosqlite"
    run([str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links",
         str(wheelhouse()), f"{wheel}[{extras}]"])  # fmt: skip
    plugin = venv / "bin" / "sqlc-gen-fixup"
    assert plugin.exists()
    work = tmp_path / "work"
    work.mkdir()
    project(work, "postgresql", "pg", plugin, "", "{driver: asyncpg}")  # default: protobuf
    project(work, "mysql", "my", plugin, ", format: json", "{driver: aiomysql}")
    psycopg_options = "{driver: psycopg, model_type: msgspec}"
    project(work, "postgresql", "pg", plugin, "", psycopg_options, out="shop_psycopg")
    sync_options = "{driver: psycopg-sync, model_type: dataclass}"
    project(work, "postgresql", "pg", plugin, "", sync_options, out="shop_psycopg_sync")
    pydantic_options = "{driver: asyncpg, model_type: pydantic}"
    project(work, "postgresql", "pg", plugin, "", pydantic_options, out="shop_pydantic")
    attrs_options = "{driver: aiomysql, model_type: attrs}"
    project(work, "mysql", "my", plugin, ", format: json", attrs_options, out="shop_attrs")
    project(work, "sqlite", "lite", plugin, "", "{driver: sqlite3}", out="shop_lite")
    alite_options = "{driver: aiosqlite, model_type: msgspec}"
    project(work, "sqlite", "lite", plugin, "", alite_options, out="shop_alite")
    generated = (work / "shop" / "pg_queries.py").read_text()
    assert "from sqlc_gen_fixup.runtime import" in generated
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
    mypy = [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports"]
    # mypy runs from the Fixup venv (the wheel does not ship it) on the generated package,
    # resolving imports in the wheel's venv (sqlc_gen_fixup ships py.typed)
    packages = ["shop", "shop_psycopg", "shop_psycopg_sync", "shop_pydantic", "shop_attrs"]
    for name in [*packages, "shop_lite", "shop_alite"]:
        run([*mypy, "--python-executable", str(python), name], cwd=work, env=dict(os.environ))


# what only the project the plugin comes from knows: its name, its make targets, its trees,
# its decision records; none of it may reach a wheel user
PROJECT_NAMES = re.compile(
    r"\bFixup\b|\bmake (sqlc|codegen|test)|\b(lib|services|tools|docs)/|'(lib|services)'|\bADR\b"
)


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
    newest = re.search(r"^## (\S+)", texts["sqlc_gen_fixup/CHANGELOG.md"], re.MULTILINE)
    assert newest is not None
    assert newest.group(1) == __version__
    found = [
        f"{name}:{n}: {line.strip()}"
        for name, text in texts.items()
        for n, line in enumerate(text.splitlines(), 1)
        if PROJECT_NAMES.search(line)
    ]
    assert found == []
