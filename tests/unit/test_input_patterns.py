"""Every pattern that guards an input matches the whole value: a valid value followed by a
newline is refused (`^...$` with `re.match` accepts "valid\\n"; the patterns end in `\\Z`).
If-Match is left out: it allows whitespace around the tag on purpose."""

from __future__ import annotations

import re

import pytest

from lib.grpc.interceptors import REQUEST_ID_FORMAT as GRPC_REQUEST_ID
from lib.http.idempotency import KEY
from lib.http.middleware import REQUEST_ID_FORMAT as HTTP_REQUEST_ID
from lib.storage.base import KEY_PATTERN
from services.chat.messages import CURSOR
from services.points.rules import KEY_FORMAT, UUID_FORMAT

CASES = [
    ("grpc request id", GRPC_REQUEST_ID, "req-1"),
    ("http request id", HTTP_REQUEST_ID, "req-1"),
    ("idempotency key", KEY, "create-1"),
    ("storage key", KEY_PATTERN, "abcdefghijklmnop.png"),
    ("chat cursor", CURSOR, "v1:42"),
    ("points user id", UUID_FORMAT, "00000000-0000-0000-0000-000000000000"),
    ("points key", KEY_FORMAT, "award-1"),
]


@pytest.mark.parametrize(
    ("pattern", "valid"), [(p, v) for _, p, v in CASES], ids=[c[0] for c in CASES]
)
def test_a_valid_value_passes_and_a_trailing_newline_does_not(
    pattern: re.Pattern[str], valid: str
) -> None:
    assert pattern.match(valid)
    assert pattern.match(valid + "\n") is None
    assert pattern.match(valid + "\r\n") is None
