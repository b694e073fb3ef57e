"""sqlc's plugin protocol: protobuf (sqlc's default) and JSON give the same files, each
answered in its own format; anything else is an error naming both formats and the setting."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from codegen.plugin.plugin import GenerateRequest, GenerateResponse

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # one plugin run: ~1 s

REQUEST = {
    "settings": {"version": "2", "engine": "postgresql", "schema": [], "queries": []},
    "catalog": {
        "default_schema": "public",
        "schemas": [
            {
                "name": "public",
                "tables": [
                    {
                        "rel": {"name": "lamps"},
                        "columns": [
                            {"name": "id", "not_null": True, "type": {"name": "int8"}},
                            {"name": "label", "type": {"name": "text"}},
                        ],
                    }
                ],
            }
        ],
    },
    "queries": [
        {
            "name": "GetLamp",
            "cmd": ":one",
            "text": "SELECT id, label FROM lamps WHERE id = $1",
            "filename": "lamps.sql",
            "columns": [
                {
                    "name": "id",
                    "not_null": True,
                    "type": {"name": "int8"},
                    "table": {"name": "lamps"},
                },
                {"name": "label", "type": {"name": "text"}, "table": {"name": "lamps"}},
            ],
            "params": [
                {"number": 1, "column": {"name": "id", "not_null": True, "type": {"name": "int8"}}}
            ],
        }
    ],
    "sqlc_version": "v1.31.1",
    "plugin_options": base64.b64encode(b'{"driver": "asyncpg", "allow": ["sqlc_types"]}').decode(),
}


def plugin(data: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "codegen"],
        input=data,
        capture_output=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PWD": str(cwd)},
        timeout=TIMEOUT,
        check=False,
    )


def test_protobuf_and_json_requests_give_the_same_files(tmp_path: Path) -> None:
    as_json = plugin(json.dumps(REQUEST).encode(), tmp_path)
    assert as_json.returncode == 0, as_json.stderr.decode()
    files_json = {
        f["name"]: base64.b64decode(f["contents"]) for f in json.loads(as_json.stdout)["files"]
    }
    as_proto = plugin(bytes(GenerateRequest.from_dict(REQUEST)), tmp_path)
    assert as_proto.returncode == 0, as_proto.stderr.decode()
    response = GenerateResponse.parse(as_proto.stdout)
    files_proto = {f.name: f.contents for f in response.files}
    assert files_proto == files_json
    assert (
        b"async def get_lamp(conn: PgConn, *, id: int) -> models.Lamp | None:"
        in files_proto["lamps.py"]
    )


def test_a_protobuf_request_whose_settings_are_123_bytes_is_not_taken_for_json(
    tmp_path: Path,
) -> None:
    """Protobuf begins with b"\\n" and the settings' length: 123 is b"{", JSON's first byte."""
    for width in range(1, 123):
        request = GenerateRequest.from_dict(
            {**REQUEST, "settings": {**REQUEST["settings"], "schema": ["s" * width]}}
        )
        if len(bytes(request.settings)) == 123:
            break
    (tmp_path / ("s" * width)).write_text("")  # the schema file it names
    data = bytes(request)
    assert data.lstrip()[:1] == b"{"
    result = plugin(data, tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert "lamps.py" in {f.name for f in GenerateResponse.parse(result.stdout).files}


def test_an_undecodable_request_names_both_formats(tmp_path: Path) -> None:
    for data in (b"\xff\xfe not a message", b'{"settings": ', b"[1, 2]"):
        result = plugin(data, tmp_path)
        assert result.returncode == 1
        error = result.stderr.decode()
        assert "internal error" not in error
        assert "protobuf (sqlc's default" in error, error
        assert "format: json" in error, error
        assert result.stdout == b""
