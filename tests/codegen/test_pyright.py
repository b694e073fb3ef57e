"""Every generated variant (driver x model type: the golden cases asyncpg+dataclass,
psycopg+msgspec, psycopg-sync+dataclass, asyncpg+pydantic, aiomysql+dataclass,
aiomysql+attrs, sqlite3+dataclass, aiosqlite+msgspec) is clean under pyright in strict
mode, as it is under mypy --strict.

aiomysql ships no type information: pyright's reportMissingTypeStubs about the library
itself is turned off (mypy's ignore_missing_imports does the same); nothing else is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
CASES = ["pg", "psycopg", "psycopg_sync", "pydantic", "mysql", "attrs", "sqlite", "aiosqlite"]
PYRIGHT = Path(sys.executable).with_name("pyright")
TIMEOUT = 300  # pyright starts node and reads the stubs of every import: ~60 s here


def test_every_generated_variant_is_clean_under_pyright_strict(tmp_path: Path) -> None:
    for case in CASES:  # under golden/: a case named psycopg would shadow the library
        shutil.copytree(GOLDEN / case, tmp_path / "golden" / case)
    (tmp_path / "codegen").symlink_to(ROOT / "codegen")  # the runtime the code imports
    config = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "include": ["golden"],
        "reportMissingTypeStubs": False,
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [str(PYRIGHT), "--outputjson", "--pythonpath", sys.executable],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    problems = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
    ]
    assert problems == []
    assert report["summary"]["filesAnalyzed"] >= len(CASES) * 2
