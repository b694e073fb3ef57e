"""The sqlc.yaml of a one-package project in a test's folder: the plugin as users run it
(`process`, JSON), one engine, its schema files, queries/, generated into out/."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[2] / "codegen" / "bin" / "sqlc-gen-fixup"


def write_sqlc_yaml(root: Path, engine: str, options: str, schema: str = "[schema.sql]") -> None:
    """`options` and `schema` as YAML flow text: `{driver: asyncpg}`, `[a.sql, b.sql]`."""
    (root / "sqlc.yaml").write_text(
        textwrap.dedent(f"""
        version: "2"
        plugins:
          - name: fixup
            process: {{cmd: {PLUGIN}, format: json}}
        sql:
          - engine: {engine}
            schema: {schema}
            queries: queries
            codegen:
              - {{out: out, plugin: fixup, options: {options}}}
        """)
    )
