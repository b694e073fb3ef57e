"""The API refuses the same blank strings as the database CHECKs (test_constraints.py).

Text is stripped with Python's str.strip (every Unicode whitespace character) before it is
checked, and the CHECKs of migrations/ trim exactly that set: a string that is blank for
one is blank for the other.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from lib.auth.principal import Role
from tests.integration.auth_support import Bearer
from tests.integration.points_support import Points, new_id
from tests.integration.test_constraints import BLANKS, PYTHON_WHITESPACE

ADMIN = Bearer(Role.ADMIN)


@pytest.mark.parametrize("blank", BLANKS + PYTHON_WHITESPACE, ids=ascii)
@pytest.mark.parametrize("field", ["name", "address"])
async def test_departments_refuse_blank_text(client: Any, field: str, blank: str) -> None:
    body = {"name": f"Blank check {field} {ord(blank[0])}", "address": "1 Main St"}
    resp = await client.post("/v1/departments", json=body | {field: blank}, headers=ADMIN)
    assert resp.status == 400, await resp.text()
    problem = await resp.json()
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_departments_store_text_stripped_of_unicode_spaces(client: Any) -> None:
    resp = await client.post(
        "/v1/departments",
        json={"name": "\u3000Spaced out\u00a0\t", "address": "\u20281 Main St\u0085"},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()
    data = (await resp.json())["data"]
    assert (data["name"], data["address"]) == ("Spaced out", "1 Main St")


@pytest.mark.parametrize("blank", BLANKS, ids=ascii)
async def test_points_refuse_a_blank_reason(points: Points, blank: str) -> None:
    user = new_id()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await points.add(user, 5, blank, f"blank-{user}")
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("reason")
    assert await points.balance(user) is None
