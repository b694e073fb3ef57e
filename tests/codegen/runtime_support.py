"""What test_runtime_pg and test_runtime_mysql share: the instant they write and read back,
and the reading of an `iter_` function's rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


async def collect(it: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in it]
