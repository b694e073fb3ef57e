"""sqlc's plugin protocol both ways: the GenerateRequest on stdin, the GenerateResponse out.

sqlc sends protobuf by default and JSON (protojson with proto field names) when the
plugin's `process` entry says `format: json`; it does not say which, so the first byte
decides: a JSON request is an object (`{`), while protobuf starts with field 1's tag (0x0a).
Both decode to the same dict (MessageToDict keeps the proto names, as sqlc's JSON does),
and the answer goes back in the format the request came in.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from .errors import CodegenError
from .plugin import codegen_pb2

Format = Literal["json", "protobuf"]

EXPECTED = (
    "expected sqlc's plugin request: protobuf (sqlc's default, no `format:` line) or JSON "
    "(`format: json` under the plugin's `process:` entry in sqlc.yaml)"
)


def decode(data: bytes) -> tuple[dict[str, Any], Format]:
    """The request as sqlc's JSON shape, and the format it came in."""
    if data.lstrip()[:1] == b"{":
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise CodegenError(f"the request is not valid JSON ({exc}); {EXPECTED}") from None
        if not isinstance(raw, dict) or "settings" not in raw:
            raise CodegenError(f"the JSON request has no 'settings'; {EXPECTED}")
        return raw, "json"
    request = codegen_pb2.GenerateRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        message = f"the request is neither JSON nor protobuf ({exc}); {EXPECTED}"
        raise CodegenError(message) from None
    if not request.HasField("settings") or not request.settings.engine:
        raise CodegenError(f"the request carries no settings.engine; {EXPECTED}")
    raw = json_format.MessageToDict(
        request, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return raw, "protobuf"


def encode(files: dict[str, str], fmt: Format) -> bytes:
    """The GenerateResponse: every file, sorted by name, in the request's format."""
    if fmt == "json":
        answer = {
            "files": [
                {"name": name, "contents": base64.b64encode(text.encode()).decode()}
                for name, text in sorted(files.items())
            ]
        }
        return json.dumps(answer).encode()
    response = codegen_pb2.GenerateResponse(
        files=[
            codegen_pb2.File(name=name, contents=text.encode())
            for name, text in sorted(files.items())
        ]
    )
    data: bytes = response.SerializeToString()
    return data
