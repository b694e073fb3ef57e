"""GET /v1/users?cursor=: walking every ordering by `meta.next_cursor` gives exactly the
rows of the one big page, in its order (ties on the key, NULL ages and salaries in both
directions, a filter), and a cursor that is not one of ours, or not for this ordering, or
given with `page`, is a 400; `page` is bounded (lib/http/cursor.py, ADR 0023)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from lib.http.cursor import MAX_OFFSET
from services.users.app import create_app
from services.users.schemas import ORDERBY
from services.users.settings import UsersSettings
from tests import pg
from tests.integration.test_users_list import MODERATOR, settings

USERS = """
INSERT INTO users (email, password_hash, first_name, last_name, phone_number, role, age, salary)
SELECT 'c' || n || '@example.com', 'x', 'F' || n % 4, 'L' || n % 5, '+1 555 0100',
       (ARRAY['CUSTOMER','PROVIDER']::user_role[])[1 + n % 2],
       CASE WHEN n % 6 = 0 THEN NULL ELSE 20 + n % 3 END,
       CASE WHEN n % 7 = 0 THEN NULL ELSE 1000.50 + n % 4 END
FROM generate_series(1, 37) AS n
"""


@pytest.fixture(scope="module")
async def cursor_dsn(migrated_db: Callable[[str], str]) -> str:
    dsn = migrated_db("users")
    await pg.execute(dsn, USERS)
    return dsn


@pytest.fixture
async def client(aiohttp_client: Any, cursor_dsn: str) -> Any:
    class NoPoints:
        async def get_user_list_points(self, user_ids: list[str]) -> dict[str, int]:
            return dict.fromkeys(user_ids, 0)

        async def get_points_version(self) -> int:
            return 1  # the points never change

    async def factory(_: UsersSettings) -> AsyncIterator[Any]:
        yield NoPoints()

    return await aiohttp_client(create_app(settings(cursor_dsn, ""), points=factory))


async def get(client: Any, query: str, status: int = 200) -> Any:
    resp = await client.get(f"/v1/users?{query}", headers=MODERATOR)
    assert resp.status == status, await resp.text()
    return await resp.json()


@pytest.mark.parametrize("orderby", ORDERBY)
@pytest.mark.parametrize("sort", ["asc", "desc"])
@pytest.mark.parametrize("role", ["", "&role=PROVIDER"])
async def test_the_cursor_walks_the_whole_ordering(
    client: Any, orderby: str, sort: str, role: str
) -> None:
    base = f"orderby={orderby}&sort={sort}{role}"
    everything = await get(client, f"{base}&limit=1000")
    assert everything["meta"]["next_cursor"] is None
    expected = [u["id"] for u in everything["data"]]
    walked: list[str] = []
    body = await get(client, f"{base}&limit=4")
    assert body["meta"]["page"] == 1
    while True:
        walked += [u["id"] for u in body["data"]]
        assert body["meta"]["statistics"] == everything["meta"]["statistics"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
        body = await get(client, f"{base}&limit=4&cursor={cursor}")
        assert "page" not in body["meta"]
    assert walked == expected
    assert len(expected) == (37 if not role else 19)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=nonsense", "cursor"),
        ("cursor=", "cursor"),
        ("cursor=" + "A" * 2000, "cursor"),
        (
            "page=2&cursor=WyJsYXN0X25hbWUiLCJhc2MiLCJMMSIsIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd",
            "cursor",
        ),
        (f"limit=1000&page={MAX_OFFSET // 1000 + 2}", "page"),
    ],
)
async def test_bad_cursors_and_deep_pages_are_400(client: Any, query: str, field: str) -> None:
    body = await get(client, query, 400)
    assert [e["field"] for e in body["errors"]] == [field]


async def test_a_cursor_is_bound_to_its_ordering(client: Any) -> None:
    cursor = (await get(client, "limit=2"))["meta"]["next_cursor"]
    assert (await get(client, f"limit=2&cursor={cursor}"))["data"]
    for other in ("orderby=age", "sort=desc", "orderby=first_name"):
        body = await get(client, f"limit=2&{other}&cursor={cursor}", 400)
        assert body["errors"][0]["field"] == "cursor"
    # the same position spelled otherwise (padding) is not one we issued
    body = await get(client, f"limit=2&cursor={cursor}%3D%3D", 400)
    assert body["errors"][0]["field"] == "cursor"
    assert (await get(client, f"limit=1000&page={MAX_OFFSET // 1000 + 1}"))["data"] == []
