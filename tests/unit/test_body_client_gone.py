"""lib/http/body.py: a connection lost while the body arrives is the client's doing, 499
CLIENT_CLOSED_REQUEST (tests/e2e/test_client_gone.py cuts a real body against a process)."""

from __future__ import annotations

from typing import Any

import pytest

from lib.errors import ClientClosedRequest
from lib.http.body import body_deadline


class Request:
    app: dict[Any, Any] = {}  # noqa: RUF012  (no settings: the default timeout)


async def test_a_lost_connection_while_reading_is_499_and_closes() -> None:
    with pytest.raises(ClientClosedRequest) as caught:
        async with body_deadline(Request()):  # type: ignore[arg-type]
            raise ConnectionResetError("Connection lost")
    assert (caught.value.status, caught.value.code) == (499, "CLIENT_CLOSED_REQUEST")
    assert caught.value.detail == "the client went away before its body arrived"
    assert caught.value.closes_connection
    assert caught.value.__cause__ is None  # one line in the log, not a chain


async def test_other_errors_pass_unchanged() -> None:
    with pytest.raises(ValueError, match="x"):
        async with body_deadline(Request()):  # type: ignore[arg-type]
            raise ValueError("x")
