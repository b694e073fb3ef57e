"""services/users/handlers.py to the exact value, on real PostgreSQL, the points service's
own handler over its MariaDB (called in-process: the mutation runner forks a process per
mutant, and gRPC does not survive a fork; test_users_list.py goes through gRPC) and the
real departments app: the moderators' list (each filter, the
order and page, the statistics, the points and the degraded mark, picture URLs), one user
(points, ETag, picture), PATCH (who may set role and verified, the departments check and
the token it forwards, a missing If-Match, a stale version naming the current ETag), the
anonymising DELETE (rows, provider details, refresh families, the revocation, the picture,
what the deleted account's token gets after) and the provider card. The access matrix and
the outage cases are in test_users_profiles.py and test_users_list.py."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from lib.auth.passwords import verify_password
from lib.auth.principal import Principal, Role
from lib.auth.tokens import generate_keypair
from lib.db.connecting import connect
from lib.db.pool import Database
from lib.http.keys import REVOCATIONS, SETTINGS
from lib.pb.point import PointsVersionRequest, UserListRequest
from services.departments.app import create_app as departments_app
from services.points.db import points as points_q
from services.points.service import PointService
from services.users.app import create_app
from tests import pg
from tests.integration.auth_support import Bearer, settings_for
from tests.integration.users_support import PASSWORD, auth, make_user, users_settings

MODERATOR = Bearer(Role.MODERATOR)
ADMIN = Bearer(Role.ADMIN)
PICTURE = "P" * 32 + ".png"


class Points:
    """The points service's handler over its database, as the users app's PointsLookup."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.service = PointService(db)
        self.calls: list[list[str]] = []

    async def get_user_list_points(self, user_ids: list[str]) -> dict[str, int]:
        self.calls.append(list(user_ids))
        request = UserListRequest(user_ids=user_ids)
        # in a context of its own, as in its own process: not the users request's (which
        # holds the users connection, and lib.db.pool allows a request only one)
        answer = self.service.get_user_list_points(request)
        reply = await asyncio.create_task(answer, context=contextvars.Context())
        return dict(reply.user_points)

    async def get_points_version(self) -> int:
        answer = self.service.get_points_version(PointsVersionRequest())
        reply = await asyncio.create_task(answer, context=contextvars.Context())
        return reply.version

    async def seed(self, balances: dict[str, int]) -> None:
        params = [points_q.SetUserPointsParams(user_id=u, points=p) for u, p in balances.items()]
        async with self.db.transaction() as conn:
            await points_q.set_user_points(conn, params)


@pytest.fixture(scope="module")
async def points_db(points_dsn: str) -> AsyncIterator[Database]:
    db = await connect(points_dsn, min_size=1, max_size=4)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def points(points_db: Database) -> Points:
    return Points(points_db)


@pytest.fixture
async def client(
    aiohttp_client: Any, aiohttp_server: Any, users_dsn: str, departments_dsn: str,
    points: Points, tmp_path: Path,
) -> Any:  # fmt: skip
    departments = await aiohttp_server(departments_app(settings_for(departments_dsn)))
    settings = users_settings(
        users_dsn, departments_url=f"http://127.0.0.1:{departments.port}", storage_dir=str(tmp_path)
    )

    async def lookup(_: Any) -> AsyncIterator[Points]:
        yield points

    return await aiohttp_client(create_app(settings, points=lookup))


@pytest.fixture
async def pointless(aiohttp_client: Any, users_dsn: str, tmp_path: Path) -> Any:
    """The users app without a points service (POINTS_GRPC_ADDR empty)."""
    return await aiohttp_client(create_app(users_settings(users_dsn, storage_dir=str(tmp_path))))


async def person(dsn: str, dept: uuid.UUID | None, **fields: Any) -> uuid.UUID:
    """A user of `dept` with these column values."""
    user_id = await make_user(dsn, fields.pop("role", Role.CUSTOMER))
    fields["department_id"] = dept
    names = list(fields)
    sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    await pg.execute(dsn, f"UPDATE users SET {sets} WHERE id = $1", user_id, *fields.values())
    return user_id


async def listing(client: Any, query: str, headers: dict[str, str] = MODERATOR) -> Any:
    resp = await client.get(f"/v1/users?{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def ids(body: Any) -> list[str]:
    return [user["id"] for user in body["data"]]


@pytest.fixture
async def team(users_dsn: str, points: Points) -> dict[str, Any]:
    """Four users of a department of their own (so its filter isolates them), points for
    three, a picture for one."""
    dept = uuid.uuid4()
    tag = uuid.uuid4().hex[:10]
    a = await person(users_dsn, dept, last_name=f"A{tag}", age=20, salary=Decimal("100.00"))
    b = await person(
        users_dsn, dept, last_name=f"B{tag}", age=30, salary=Decimal("200.50"),
        role=Role.PROVIDER, picture_key=PICTURE,
    )  # fmt: skip
    c = await person(users_dsn, dept, last_name=f"C{tag}", age=40, salary=None, verified=False)
    d = await person(
        users_dsn, dept, last_name=f"D{tag}", first_name=f"Zed{tag}", age=None,
        salary=Decimal("300.00"),
    )  # fmt: skip
    await points.seed({str(a): 7, str(b): 11, str(c): 0})
    return {"dept": dept, "tag": tag, "ids": [str(a), str(b), str(c), str(d)]}


async def test_the_list_of_a_department_with_statistics_points_and_pictures(
    client: Any, team: dict[str, Any], points: Points
) -> None:
    body = await listing(client, f"department_id={team['dept']}")
    a, b, c, d = team["ids"]
    assert ids(body) == [a, b, c, d]  # by last name, the default
    assert points.calls == [[a, b, c, d]]  # one batched call for the page
    assert body["meta"] == {
        "total": 4,
        "limit": 100,
        "page": 1,
        "next_cursor": None,
        "statistics": {
            "count": 4,
            "age": {"min": 20, "max": 40, "avg": "30.00"},
            "salary": {"min": "100.00", "max": "300.00", "avg": "200.17"},
        },
    }  # no "degraded": the points service answered
    assert [user["points"] for user in body["data"]] == [7, 11, 0, 0]  # d: unknown, 0
    by_id = {user["id"]: user for user in body["data"]}
    assert by_id[a]["picture_url"] is None
    assert by_id[b]["picture_url"].startswith(f"/v1/pictures/{PICTURE}?expires=")
    assert (by_id[b]["role"], by_id[c]["verified"], by_id[d]["age"]) == ("PROVIDER", False, None)
    assert by_id[a]["salary"] == "100.00"
    assert by_id[a]["department_id"] == str(team["dept"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role=PROVIDER", [1]),
        ("role=CUSTOMER", [0, 2, 3]),
        ("verified=false", [2]),
        ("verified=true", [0, 1, 3]),
        ("search=zed", [3]),  # part of the first name, any case
        ("orderby=age&sort=desc", [3, 2, 1, 0]),  # nulls first when descending
        ("orderby=age&sort=asc", [0, 1, 2, 3]),
        ("orderby=salary&sort=desc&limit=2&page=2", [1, 0]),
        ("limit=3&page=2", [3]),
        ("limit=2", [0, 1]),
    ],
    ids=["role", "role-customer", "unverified", "verified", "search", "age-desc", "age-asc",
         "salary-page-2", "page-2", "limit"],
)  # fmt: skip
async def test_each_filter_order_and_page(
    client: Any, team: dict[str, Any], query: str, expected: list[int]
) -> None:
    body = await listing(client, f"department_id={team['dept']}&{query}")
    assert ids(body) == [team["ids"][i] for i in expected]
    assert body["meta"]["total"] == body["meta"]["statistics"]["count"]


async def test_the_statistics_follow_the_filters(client: Any, team: dict[str, Any]) -> None:
    body = await listing(client, f"department_id={team['dept']}&role=PROVIDER&search={team['tag']}")
    assert body["meta"]["total"] == 1
    assert body["meta"]["statistics"] == {
        "count": 1,
        "age": {"min": 30, "max": 30, "avg": "30.00"},
        "salary": {"min": "200.50", "max": "200.50", "avg": "200.50"},
    }
    empty = await listing(client, f"department_id={uuid.uuid4()}")
    assert empty["data"] == []
    assert empty["meta"]["statistics"] == {
        "count": 0,
        "age": {"min": None, "max": None, "avg": None},
        "salary": {"min": None, "max": None, "avg": None},
    }
    assert "degraded" not in empty["meta"]
    # a search matching nobody: the statistics scanned, not summarised, and as empty
    nobody = await listing(client, f"department_id={team['dept']}&search=nobody-has-this")
    assert nobody["data"] == []
    assert nobody["meta"]["statistics"] == empty["meta"]["statistics"]


async def test_without_points_the_list_is_degraded_but_not_when_empty(
    pointless: Any, team: dict[str, Any]
) -> None:
    body = await listing(pointless, f"department_id={team['dept']}")
    assert body["meta"]["degraded"] == ["points"]
    assert [user["points"] for user in body["data"]] == [None] * 4
    empty = await listing(pointless, f"department_id={uuid.uuid4()}")
    assert "degraded" not in empty["meta"]


async def test_one_user_with_points_picture_and_etag(
    client: Any, users_dsn: str, points: Points
) -> None:
    user_id = await person(users_dsn, None, picture_key=PICTURE, version=3)
    await points.seed({str(user_id): 42})
    resp = await client.get(f"/v1/users/{user_id}", headers=MODERATOR)
    assert resp.status == 200
    assert points.calls == [[str(user_id)]]
    assert resp.headers["ETag"] == '"3"'
    got = (await resp.json())["data"]
    assert (got["id"], got["points"], got["version"]) == (str(user_id), 42, 3)
    assert got["picture_url"].startswith(f"/v1/pictures/{PICTURE}?expires=")
    me = await client.get("/v1/users/me", headers=auth(user_id))
    mine = (await me.json())["data"]
    # a picture URL's expiry counts from the second it is signed: two answers may straddle one
    assert {**mine, "picture_url": None} == {**got, "picture_url": None}
    assert mine["picture_url"].startswith(f"/v1/pictures/{PICTURE}?expires=")


async def test_one_user_without_points(pointless: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    resp = await pointless.get("/v1/users/me", headers=auth(user_id))
    assert (await resp.json())["data"]["points"] is None


async def test_get_refuses_whom_it_must(client: Any, users_dsn: str) -> None:
    assert (await client.get("/v1/users/me")).status == 401
    assert (await client.get("/v1/users/not-a-uuid", headers=ADMIN)).status == 400
    user_id = await make_user(users_dsn)
    other = auth(await make_user(users_dsn))
    resp = await client.get(f"/v1/users/{user_id}", headers=other)
    assert (resp.status, (await resp.json())["detail"]) == (404, "no such user")
    resp = await client.get(f"/v1/users/{uuid.uuid4()}", headers=ADMIN)
    assert (resp.status, (await resp.json())["detail"]) == (404, "no such user")
    await pg.execute(
        users_dsn, "UPDATE users SET deleted_at = now(), disabled_at = now() WHERE id = $1", user_id
    )
    resp = await client.get("/v1/users/me", headers=auth(user_id))
    assert resp.status == 401
    assert (await resp.json())["detail"] == "the account of this token no longer exists"


async def patch(
    client: Any, target: Any, body: dict[str, Any], headers: dict[str, str], version: int = 1
) -> Any:
    return await client.patch(
        f"/v1/users/{target}", json=body, headers={**headers, "If-Match": f'"{version}"'}
    )


async def test_patch_sets_fields_and_answers_the_new_row(
    client: Any, users_dsn: str, department: uuid.UUID, points: Points
) -> None:
    user_id = await person(users_dsn, None, picture_key=PICTURE)
    await points.seed({str(user_id): 5})
    body = {"first_name": "Grace", "department_id": str(department), "salary": "10.00"}
    resp = await patch(client, "me", body, auth(user_id))
    assert resp.status == 200, await resp.text()
    assert resp.headers["ETag"] == '"2"'
    got = (await resp.json())["data"]
    assert (got["first_name"], got["department_id"], got["salary"]) == (
        "Grace", str(department), "10.00",
    )  # fmt: skip
    assert (got["points"], got["version"]) == (5, 2)
    assert got["picture_url"].startswith(f"/v1/pictures/{PICTURE}?expires=")
    row = await pg.fetchrow(
        users_dsn, "SELECT first_name, department_id, version FROM users WHERE id=$1", user_id
    )
    assert tuple(row) == ("Grace", department, 2)


async def test_only_an_admin_sets_role_and_verified(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    me = auth(user_id)
    for body in ({"role": "ADMIN"}, {"verified": False}):
        resp = await patch(client, "me", body, me)
        assert resp.status == 403, body
        assert (await resp.json())["code"] == "FORBIDDEN"
    resp = await patch(client, user_id, {"role": "PROVIDER", "verified": False}, ADMIN)
    assert resp.status == 200, await resp.text()
    got = (await resp.json())["data"]
    assert (got["role"], got["verified"]) == ("PROVIDER", False)
    read_only: list[dict[str, Any]] = [{"version": 9}, {"email": "x@"}, {"points": 1}]
    for body in read_only:
        resp = await patch(client, user_id, body, ADMIN, version=2)
        assert resp.status == 403, body  # read-only, even to an ADMIN
    row = await pg.fetchrow(
        users_dsn, "SELECT role, verified, version FROM users WHERE id=$1", user_id
    )
    assert tuple(row) == ("PROVIDER", False, 2)


async def test_patch_an_unknown_department_is_404_naming_it(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    unknown = uuid.uuid4()
    resp = await patch(client, "me", {"department_id": str(unknown)}, auth(user_id))
    assert resp.status == 404
    problem = await resp.json()
    assert problem["detail"] == f"no department {unknown}"
    assert problem["errors"] == [
        {"field": "department_id", "message": f"unknown department {unknown}"}
    ]
    row = await pg.fetchrow(users_dsn, "SELECT version FROM users WHERE id=$1", user_id)
    assert row["version"] == 1  # nothing written
    resp = await patch(client, "me", {"department_id": None, "age": 50}, auth(user_id))
    assert resp.status == 200, await resp.text()  # null: nothing to check, cleared
    assert (await resp.json())["data"]["age"] == 50


async def test_patch_stale_missing_and_deleted(client: Any, users_dsn: str) -> None:
    user_id = await make_user(users_dsn)
    resp = await client.patch("/v1/users/me", json={"age": 1}, headers=auth(user_id))
    assert resp.status == 428  # no If-Match at all
    resp = await patch(client, "me", {"age": 1}, auth(user_id), version=4)
    assert resp.status == 412
    assert (await resp.json())["detail"] == (
        'the resource changed (current ETag "1"); fetch it and retry'
    )
    row = await pg.fetchrow(users_dsn, "SELECT age, version FROM users WHERE id=$1", user_id)
    assert tuple(row) == (36, 1)  # neither changed anything
    resp = await patch(client, uuid.uuid4(), {"age": 1}, ADMIN)
    assert (resp.status, (await resp.json())["detail"]) == (404, "no such user")
    await pg.execute(
        users_dsn, "UPDATE users SET deleted_at = now(), disabled_at = now() WHERE id = $1", user_id
    )
    resp = await patch(client, "me", {"age": 1}, auth(user_id))
    assert resp.status == 401


async def test_delete_scrubs_revokes_and_removes_the_picture(
    client: Any, users_dsn: str, tmp_path: Path
) -> None:
    user_id = await person(users_dsn, uuid.uuid4(), role=Role.PROVIDER, picture_key=PICTURE)
    other = await make_user(users_dsn, Role.PROVIDER)
    (tmp_path / PICTURE).write_bytes(b"picture")
    # what the erasure deletes of a person, for them and for someone who stays
    personal = {
        "provider_details": "INSERT INTO provider_details (user_id, personal_id_encrypted,"
        " personal_id_last4) VALUES ($1, '\\x00', '1234')",
        "totp_factors": "INSERT INTO totp_factors (user_id, secret_encrypted)"
        " VALUES ($1, decode(repeat('ab', 29), 'hex'))",
        "recovery_codes": "INSERT INTO recovery_codes (user_id, code_hash)"
        " VALUES ($1::uuid, decode(md5($1::uuid::text) || md5($1::uuid::text), 'hex'))",
        "passkeys": "INSERT INTO passkeys (user_id, credential_id, public_key, name)"
        " VALUES ($1::uuid, decode(md5($1::uuid::text), 'hex'), '\\x01', 'laptop')",
    }
    for who in (user_id, other):
        for insert in personal.values():
            await pg.execute(users_dsn, insert, who)
    me = auth(user_id)
    deleted = {"service": client.app[SETTINGS].service, "reason": "account_deleted"}

    def revocations_counted() -> float:  # users_revocations_total, the service's own label
        return REGISTRY.get_sample_value("users_revocations_total", deleted) or 0.0

    counted = revocations_counted()
    assert (await client.delete("/v1/users/me", headers=me)).status == 428
    resp = await client.delete("/v1/users/me", headers={**me, "If-Match": '"2"'})
    assert resp.status == 412
    assert (await resp.json())["detail"] == (
        'the resource changed (current ETag "1"); fetch it and retry'
    )
    resp = await client.delete("/v1/users/me", headers={**me, "If-Match": '"1"'})
    assert resp.status == 204
    assert await resp.read() == b""
    assert revocations_counted() == counted + 1
    row = await pg.fetchrow(users_dsn, "SELECT * FROM users WHERE id=$1", user_id)
    assert (row["first_name"], row["department_id"], row["picture_key"]) == ("Deleted", None, None)
    assert row["email"] == f"deleted+{user_id}@invalid"
    assert (row["last_name"], row["age"]) == ("Deleted", None)
    assert row["disabled_at"] is not None
    assert row["deleted_at"] is not None
    assert not verify_password(row["password_hash"], PASSWORD)
    for table in personal:
        left = await pg.fetchrow(
            users_dsn,
            "SELECT count(*) FILTER (WHERE user_id = $1) AS mine,"
            f" count(*) FILTER (WHERE user_id = $2) AS theirs FROM {table}",
            user_id, other,
        )  # fmt: skip
        assert tuple(left) == (0, 1), table
    family = await pg.fetchrow(
        users_dsn, "SELECT revoked_at, revoked_reason FROM refresh_token_families WHERE user_id=$1",
        user_id,
    )  # fmt: skip
    assert family["revoked_at"] is not None
    assert family["revoked_reason"] == "account deleted"
    assert not (tmp_path / PICTURE).exists()
    before = Principal(
        user_id, Role.PROVIDER, True, "t", datetime.datetime.now(datetime.UTC), issued_at_ms=1
    )
    assert await client.app[REVOCATIONS].revoked([before]) == [before]
    # the token outlived its account: 401 on its own routes; to anyone else the user is gone
    assert (await client.get("/v1/users/me", headers=me)).status == 401
    resp = await client.delete("/v1/users/me", headers={**me, "If-Match": '"2"'})
    assert resp.status == 401
    resp = await client.patch(
        f"/v1/users/{user_id}", json={"first_name": "Back"}, headers={**me, "If-Match": '"2"'}
    )
    assert resp.status == 401
    assert (await client.get(f"/v1/users/{user_id}", headers=ADMIN)).status == 404
    resp = await client.get(f"/v1/providers/{user_id}")
    assert resp.status == 404
    # a token naming no account at all (never one here) is not a deleted one: 404
    assert (await client.get("/v1/users/me", headers=auth(uuid.uuid4()))).status == 404


async def test_delete_refuses_a_missing_user(client: Any, users_dsn: str) -> None:
    resp = await client.delete(f"/v1/users/{uuid.uuid4()}", headers={**ADMIN, "If-Match": '"1"'})
    assert (resp.status, (await resp.json())["detail"]) == (404, "no such user")
    user_id = await make_user(users_dsn)
    await pg.execute(
        users_dsn, "UPDATE users SET deleted_at = now(), disabled_at = now() WHERE id = $1", user_id
    )
    resp = await client.delete("/v1/users/me", headers={**auth(user_id), "If-Match": '"1"'})
    assert resp.status == 401  # the token outlived its account
    assert (await resp.json())["detail"] == "the account of this token no longer exists"


async def test_the_provider_card(client: Any, users_dsn: str) -> None:
    dept = uuid.uuid4()
    provider = await person(
        users_dsn, dept, role=Role.PROVIDER, first_name="Grace", last_name="Hopper",
        picture_key=PICTURE,
    )  # fmt: skip
    resp = await client.get(f"/v1/providers/{provider}")
    assert resp.status == 200
    card = (await resp.json())["data"]
    url = card.pop("picture_url")
    assert url.startswith(f"/v1/pictures/{PICTURE}?expires=")
    assert card == {
        "id": str(provider), "first_name": "Grace", "last_name": "Hopper",
        "department_id": str(dept),
    }  # fmt: skip
    customer = await make_user(users_dsn)
    for missing in (customer, uuid.uuid4()):
        resp = await client.get(f"/v1/providers/{missing}")
        assert (resp.status, (await resp.json())["detail"]) == (404, "no such provider")
    plain = await make_user(users_dsn, Role.PROVIDER)
    card = (await (await client.get(f"/v1/providers/{plain}")).json())["data"]
    assert (card["picture_url"], card["department_id"]) == (None, None)


async def test_the_departments_check_forwards_the_callers_token(
    aiohttp_client: Any, aiohttp_server: Any, users_dsn: str, departments_dsn: str,
    department: uuid.UUID, tmp_path: Path,
) -> None:  # fmt: skip
    """The real departments app trusting another key refuses the forwarded token (it
    answers an anonymous read): 502 DEPENDENCY_REFUSED says the token went along. Users
    says so in its own words (not a 503 blaming an outage), and its breaker, named
    `departments` in the metrics, stays closed however often it happens."""
    other_key = SecretStr(generate_keypair()[1])
    refusing = await aiohttp_server(
        departments_app(settings_for(departments_dsn, jwt_public_key=other_key))
    )
    settings = users_settings(
        users_dsn, departments_url=f"http://127.0.0.1:{refusing.port}",
        departments_breaker_threshold=2, storage_dir=str(tmp_path),
    )  # fmt: skip
    client = await aiohttp_client(create_app(settings))
    user_id = await make_user(users_dsn)
    for _ in range(5):  # well past the threshold of 2
        resp = await patch(client, "me", {"department_id": str(department)}, auth(user_id))
        assert resp.status == 502, await resp.text()
        problem = await resp.json()
        assert problem["code"] == "DEPENDENCY_REFUSED"
        assert problem["detail"] == "departments refused the forwarded credentials (401)"
        assert "Retry-After" not in resp.headers
    metrics = await (await client.get("/metrics")).text()
    assert 'circuit_breaker_state{dependency="departments",service="users"} 0.0' in metrics
    row = await pg.fetchrow(users_dsn, "SELECT version FROM users WHERE id=$1", user_id)
    assert row["version"] == 1  # nothing changed


@pytest.mark.parametrize(
    ("query", "count"),
    [("role=PROVIDER", 1), ("role=CUSTOMER", 3), ("verified=false", 1), ("verified=true", 3)],
    ids=["role", "role-customer", "unverified", "verified"],
)
async def test_the_summarised_statistics_take_each_filter(
    client: Any, team: dict[str, Any], query: str, count: int
) -> None:
    """Without a search the statistics come from the summary the writes keep: each filter
    applies there too (meta.total is their count: checked against the team, not the page)."""
    body = await listing(client, f"department_id={team['dept']}&{query}")
    assert body["meta"]["total"] == body["meta"]["statistics"]["count"] == count


async def test_the_cursor_continues_after_the_page(client: Any, team: dict[str, Any]) -> None:
    """?cursor= is the keyset page after meta.next_cursor's row: the next rows, not the
    first page again."""
    first = await listing(client, f"department_id={team['dept']}&limit=2")
    assert ids(first) == team["ids"][:2]
    cursor = first["meta"]["next_cursor"]
    assert cursor is not None
    second = await listing(client, f"department_id={team['dept']}&limit=2&cursor={cursor}")
    assert ids(second) == team["ids"][2:]
