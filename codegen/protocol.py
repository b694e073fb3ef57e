"""sqlc's plugin protocol both ways: the GenerateRequest on stdin, the GenerateResponse out.

sqlc sends protobuf by default and JSON (protojson with proto field names) when the
plugin's `process` entry says `format: json`; it does not say which, so the first byte
decides: a JSON request is an object (`{`), while protobuf starts with field 1's tag (0x0a).
Both decode to the same dict (betterproto2's `to_dict` with snake_case names and default
values is sqlc's JSON shape), and the answer goes back in the format the request came in.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

import betterproto2

from .errors import CodegenError
from .plugin.plugin import File, GenerateRequest, GenerateResponse

Format = Literal["json", "protobuf"]

EXPECTED = (
    "expected sqlc's plugin request: protobuf (sqlc's default, no `format:` line) or JSON "
    "(`format: json` under the plugin's `process:` entry in sqlc.yaml)"
)


def decode(data: bytes) -> tuple[dict[str, Any], Format]:
    """The request as sqlc's JSON shape, and the format it came in."""
    # protobuf begins with field 1's tag, b"\n", and its length: 123 is b"{" (not JSON then)
    if data.lstrip()[:1] == b"{":
        try:
            raw = json.loads(data)
        except ValueError as exc:
            if data[:1] != b"\n":
                raise CodegenError(f"the request is not valid JSON ({exc}); {EXPECTED}") from None
        else:
            if not isinstance(raw, dict) or "settings" not in raw:
                raise CodegenError(f"the JSON request has no 'settings'; {EXPECTED}")
            return raw, "json"
    try:
        request = GenerateRequest.parse(data)
    except Exception as exc:  # betterproto2 raises what the bytes lead it to (KeyError, ...)
        message = f"the request is neither JSON nor protobuf ({type(exc).__name__}); {EXPECTED}"
        raise CodegenError(message) from None
    if request.settings is None or not request.settings.engine:
        raise CodegenError(f"the request carries no settings.engine; {EXPECTED}")
    raw = request.to_dict(casing=betterproto2.Casing.SNAKE, include_default_values=True)
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
    response = GenerateResponse(
        files=[File(name=name, contents=text.encode()) for name, text in sorted(files.items())]
    )
    return bytes(response)
