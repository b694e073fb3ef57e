"""The OpenAPI linters a consumer's CI would run, on our documents: `python -m
tools.checks.api_lint`.

Spectral (spectral:oas + our rules, tools/apilint/.spectral.yaml) and Redocly
(`recommended-strict`: `recommended` with its warnings as errors, tools/apilint/redocly.yaml),
pinned in tools/apilint/package.json (`make api-lint-deps`). The bar is 0 errors and 0
warnings; a rule turned off is listed in its ruleset file with why (ADR 0024).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APILINT = ROOT / "tools" / "apilint"
BIN = APILINT / "node_modules" / ".bin"
DOCS = ROOT / "docs" / "openapi"


class MissingLinter(RuntimeError):
    pass


def commands(documents: list[Path]) -> list[list[str]]:
    files = [str(p) for p in documents]
    for tool in ("spectral", "redocly"):
        if not (BIN / tool).exists():
            raise MissingLinter(f"{BIN / tool} is not installed: run make api-lint-deps")
    spectral = [str(BIN / "spectral"), "lint", "--ruleset", str(APILINT / ".spectral.yaml")]
    redocly = [str(BIN / "redocly"), "lint", "--config", str(APILINT / "redocly.yaml")]
    return [
        [*spectral, "--fail-severity=warn", "--format=text", *files],
        [*redocly, *files],
    ]


def lint(documents: list[Path]) -> list[str]:
    """The output of each linter that found anything (an error or a warning); [] when clean."""
    failures = []
    for command in commands(documents):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
        )
        if done.returncode != 0:
            failures.append(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.checks.api_lint", description=__doc__)
    parser.add_argument("documents", nargs="*", help="default: docs/openapi/*.json")
    args = parser.parse_args(argv)
    documents = [Path(p) for p in args.documents] or sorted(DOCS.glob("*.json"))
    try:
        failures = lint(documents)
    except MissingLinter as exc:
        print(f"api-lint: {exc}", file=sys.stderr)
        return 2
    for failure in failures:
        print(failure, file=sys.stderr)
    print(
        f"api-lint: {len(documents)} documents, {'FAILED' if failures else '0 errors, 0 warnings'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
