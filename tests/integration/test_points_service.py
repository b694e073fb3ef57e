"""services/points/service.py called directly (no gRPC server) on a real migrated MariaDB:
the rows each RPC reads and writes, the replay of a reused key, and the duplicate key
that two concurrent uses of one key for different users meet (made deterministic by
holding the colliding ledger row in an open transaction). These are the tests the
mutation run uses for the module (docs/mutation.md); test_points_grpc.py covers the
same RPCs through the server."""

from __future__ import annotations

import asyncio
import contextvars
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomysql
import pymysql
import pytest
import structlog
from grpclib import GRPCError
from grpclib.const import Status
from prometheus_client import REGISTRY

from lib.db.connecting import connect
from lib.db.pool import Database
from lib.pb.point import (
    AddPointsRequest,
    PointRequest,
    PointsVersionRequest,
    UserExportRequest,
    UserListRequest,
)
from services.points import service as service_module
from services.points.db import points as q
from services.points.service import PointService
from tests.e2e.gateway_stack import wait_until
from tests.integration.points_support import new_id


@pytest.fixture(scope="module")
async def db(points_dsn: str) -> AsyncIterator[Database]:
    database = await connect(points_dsn, min_size=1, max_size=5)
    yield database
    await database.close()


@pytest.fixture
def service(db: Database) -> PointService:
    return PointService(db)


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> RecordingLog:
    recording = RecordingLog()
    monkeypatch.setattr(service_module, "log", recording)
    return recording


def add(user: str, delta: int, reason: str = "job done", key: str | None = None) -> Any:
    return AddPointsRequest(
        user_id=user, delta=delta, reason=reason, idempotency_key=key or uuid.uuid4().hex
    )


async def rows(db: Database, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with db.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        return [tuple(row) for row in await cur.fetchall()]


async def balance(db: Database, user: str) -> int | None:
    found = await rows(db, "SELECT points FROM user_points WHERE user_id = %s", user)
    return int(found[0][0]) if found else None


async def ledger(db: Database, user: str) -> list[tuple[Any, ...]]:
    return await rows(
        db,
        "SELECT idempotency_key, delta, reason, balance_after FROM points_ledger"
        " WHERE user_id = %s ORDER BY id",
        user,
    )


async def seed(db: Database, balances: dict[str, int]) -> None:
    async with db.transaction() as conn:
        await q.set_user_points(
            conn, [q.SetUserPointsParams(user_id=u, points=p) for u, p in balances.items()]
        )


async def refused(awaitable: Any) -> tuple[Status, str]:
    with pytest.raises(GRPCError) as caught:
        await awaitable
    return caught.value.status, str(caught.value.message)


# ------------------------------------------------------------------ reads


async def test_get_user_export_reads_the_balance_and_the_ledger_within_the_bound(
    service: PointService,
) -> None:
    """A person's data export (ADR 0059): their balance and ledger, oldest first, at most
    max_rows + 1 entries; nobody else's; a person without any: "0" and nothing."""
    user, other = new_id(), new_id()
    for delta in (10, 5, -3):
        await service.add_user_points(add(user, delta, key=f"{user}:{delta}"))
    await service.add_user_points(add(other, 7))
    reply = await service.get_user_export(UserExportRequest(user_id=user.upper(), max_rows=5))
    assert reply.user_point == "12"
    assert reply.updated_at.endswith("Z")
    assert [(e.delta, e.balance_after, e.idempotency_key) for e in reply.ledger] == [
        (10, 10, f"{user}:10"), (5, 15, f"{user}:5"), (-3, 12, f"{user}:-3"),
    ]  # fmt: skip
    bounded = await service.get_user_export(UserExportRequest(user_id=user, max_rows=1))
    assert [e.delta for e in bounded.ledger] == [10, 5]  # one more than the bound
    empty = await service.get_user_export(UserExportRequest(user_id=new_id(), max_rows=5))
    assert (empty.user_point, empty.updated_at, empty.ledger) == ("0", "", [])
    for bad in (UserExportRequest(user_id="nope", max_rows=5),
                UserExportRequest(user_id=user, max_rows=0)):  # fmt: skip
        status, _ = await refused(service.get_user_export(bad))
        assert status is Status.INVALID_ARGUMENT


async def test_get_user_points_reads_the_balance_of_the_canonical_id(
    db: Database, service: PointService
) -> None:
    user, other, unknown = new_id(), new_id(), new_id()
    await seed(db, {user: 73, other: 0})
    assert (await service.get_user_points(PointRequest(user_id=user))).user_point == "73"
    assert (await service.get_user_points(PointRequest(user_id=user.upper()))).user_point == "73"
    assert (await service.get_user_points(PointRequest(user_id=other))).user_point == "0"
    assert (await service.get_user_points(PointRequest(user_id=unknown))).user_point == "0"
    assert await balance(db, unknown) is None  # a read creates nothing


async def test_get_user_list_points_answers_by_the_ids_as_asked(
    db: Database, service: PointService
) -> None:
    user, zero, unknown = new_id(), new_id(), new_id()
    await seed(db, {user: 5, zero: 0})
    asked = [user, user.upper(), zero, unknown, user]
    reply = await service.get_user_list_points(UserListRequest(user_ids=asked))
    assert reply.user_points == {user: 5, user.upper(): 5, zero: 0, unknown: 0}
    assert (await service.get_user_list_points(UserListRequest(user_ids=[]))).user_points == {}


async def test_get_user_list_points_takes_at_most_1000_ids_by_default(
    service: PointService,
) -> None:
    ids = [new_id() for _ in range(1001)]
    reply = await service.get_user_list_points(UserListRequest(user_ids=ids[:1000]))
    assert reply.user_points == dict.fromkeys(ids[:1000], 0)
    status, detail = await refused(service.get_user_list_points(UserListRequest(user_ids=ids)))
    assert (status, detail) == (Status.INVALID_ARGUMENT, "user_ids: at most 1000 ids")


# ------------------------------------------------------------------ adds


async def test_an_add_writes_the_ledger_and_the_balance_and_logs_it(
    db: Database, service: PointService, log: RecordingLog
) -> None:
    user, key = new_id(), f"job:{uuid.uuid4()}"
    reply = await service.add_user_points(add(user.upper(), 7, "first job", key))
    assert reply.user_point == "7"
    assert await balance(db, user) == 7
    assert await ledger(db, user) == [(key, 7, "first job", 7)]
    assert log.events == [("points_added", {"user_id": user, "delta": 7, "balance": 7})]
    assert (await service.add_user_points(add(user, -2, "refund"))).user_point == "5"
    assert await balance(db, user) == 5
    assert [row[1:] for row in await ledger(db, user)] == [(7, "first job", 7), (-2, "refund", 5)]
    assert (await service.add_user_points(add(user, -5, "spent"))).user_point == "0"
    assert await balance(db, user) == 0  # down to exactly 0
    assert len(await ledger(db, user)) == 3


async def test_an_add_records_its_audit_event_and_a_replay_none(
    db: Database, service: PointService
) -> None:
    """ADR 0057: the balance before and after, in the add's transaction; the request id
    the call carried; a replay changed nothing and records nothing."""

    user, key, rid = new_id(), uuid.uuid4().hex, f"points-{uuid.uuid4().hex}"
    await seed(db, {user: 40})
    with structlog.contextvars.bound_contextvars(request_id=rid):
        await service.add_user_points(add(user, 2, "a review", key))
        await service.add_user_points(add(user, 2, "a review", key))  # the replay
    found = await rows(
        db,
        "SELECT subject_id, subject_role, action, resource, resource_id, route, before_fields,"
        " after_fields FROM audit_events WHERE request_id = %s",
        rid,
    )
    assert len(found) == 1
    subject, role, action, resource, resource_id, route, before, after = found[0]
    assert (subject, role) == (None, None)  # a peer service's call, no person's
    assert (action, resource, resource_id) == ("AddUserPoints", "points", user)
    assert route == "/point.PointServer/AddUserPoints"
    assert json.loads(before) == {"points": 40}
    assert json.loads(after) == {"points": 42, "delta": 2, "reason": "a review"}


async def test_an_add_whose_call_carried_no_request_id_records_it_empty(
    db: Database, service: PointService
) -> None:
    """A call with no request id (none bound: a caller in process, outside any request)
    records its event with an empty one, never a made-up one."""
    user = new_id()
    await seed(db, {user: 1})
    # a task of an empty context: no request id bound, whatever the session's tests bound
    call = service.add_user_points(add(user, 1, "no request"))
    await asyncio.create_task(call, context=contextvars.Context())
    found = await rows(
        db,
        "SELECT request_id FROM audit_events WHERE resource = 'points' AND resource_id = %s",
        user,
    )
    assert found == [("",)]


async def test_an_add_to_a_zero_balance_starts_from_zero(
    db: Database, service: PointService
) -> None:
    user = new_id()
    await seed(db, {user: 0})
    assert (await service.add_user_points(add(user, 3))).user_point == "3"
    assert await balance(db, user) == 3


async def test_a_refused_add_leaves_no_row(db: Database, service: PointService) -> None:
    user = new_id()
    status, _ = await refused(service.add_user_points(add(user, -1)))
    assert status is Status.FAILED_PRECONDITION
    assert await balance(db, user) is None  # the zero row the add made is rolled back
    assert await ledger(db, user) == []


async def test_a_reused_key_replays_the_first_balance(
    db: Database, service: PointService, log: RecordingLog
) -> None:
    user, key = new_id(), uuid.uuid4().hex
    assert (await service.add_user_points(add(user, 10, "job", key))).user_point == "10"
    await service.add_user_points(add(user, 4))
    log.events.clear()
    assert (await service.add_user_points(add(user, 10, "job", key))).user_point == "10"
    assert await balance(db, user) == 14
    assert len(await ledger(db, user)) == 2
    assert log.events == []  # nothing applied
    for other in (
        add(user, 11, "job", key),
        add(user, 10, "another reason", key),
        add(new_id(), 10, "job", key),
    ):
        status, detail = await refused(service.add_user_points(other))
        assert (status, detail) == (
            Status.ALREADY_EXISTS,
            "idempotency_key: already used with another payload",
        )
    assert await balance(db, user) == 14


async def test_a_replayed_spend_is_answered_though_the_balance_no_longer_covers_it(
    db: Database, service: PointService
) -> None:
    """The ledger is read before the new balance is computed: a spend replayed after the
    balance it emptied is the first reply again, not "insufficient points"."""
    user, key = new_id(), uuid.uuid4().hex
    await seed(db, {user: 5})
    assert (await service.add_user_points(add(user, -5, "refund", key))).user_point == "0"
    assert (await service.add_user_points(add(user, -5, "refund", key))).user_point == "0"
    assert await balance(db, user) == 0
    assert len(await ledger(db, user)) == 1


async def test_the_points_version_moves_with_every_committed_change_and_only_then(
    db: Database, service: PointService
) -> None:
    """GetPointsVersion covers user_points: an add and a direct write move it before they
    return; a refused add and a replay (rolled back) leave it where it was."""

    async def version() -> int:
        return (await service.get_points_version(PointsVersionRequest())).version

    user, key = new_id(), uuid.uuid4().hex
    start = await version()
    await service.add_user_points(add(user, 7, "job", key))
    added = await version()
    assert added > start
    await service.add_user_points(add(user, 7, "job", key))  # the replay
    await refused(service.add_user_points(add(user, -100)))  # more than the balance
    assert await version() == added
    await seed(db, {user: 1})
    assert await version() > added


# ------------------------------------------------------------------ the duplicate key


async def inserting_into_the_ledger(db: Database) -> bool:
    """Is a connection running its ledger INSERT (the add's, waiting on the held key)?
    The process list of our own user: no PROCESS privilege needed."""
    found = await rows(
        db,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
        " WHERE COMMAND = 'Query' AND INFO LIKE %s AND INFO NOT LIKE %s",
        "%INSERT INTO points_ledger%",
        "%PROCESSLIST%",
    )
    return int(found[0][0]) > 0


async def add_meeting_a_held_key(
    db: Database,
    points_dsn: str,
    service: PointService,
    held: tuple[str, int, str, int],
    request: AddPointsRequest,
) -> Any:
    """Another connection inserts `held` (user, delta, reason, balance_after) under the
    request's key and keeps it uncommitted; the add reads no ledger row, waits on the key
    at its INSERT, and gets the duplicate key (1062) once the holder commits."""
    database = await connect(points_dsn, min_size=1, max_size=1)
    try:
        async with database.transaction() as holder:
            await q.insert_ledger_entry(
                holder,
                idempotency_key=request.idempotency_key,
                user_id=held[0],
                delta=held[1],
                reason=held[2],
                balance_after=held[3],
            )
            adding = asyncio.create_task(service.add_user_points(request))
            await wait_until(lambda: inserting_into_the_ledger(db), "the add waits on the held key")
        return await adding
    finally:
        await database.close()


async def test_a_key_committed_while_the_add_waits_is_replayed(
    db: Database, points_dsn: str, service: PointService
) -> None:
    user, key = new_id(), uuid.uuid4().hex
    request = add(user, 6, "job", key)
    reply = await add_meeting_a_held_key(db, points_dsn, service, (user, 6, "job", 42), request)
    assert reply.user_point == "42"  # the ledger's answer, not a new balance
    assert await balance(db, user) is None  # the add's own writes were rolled back
    assert await ledger(db, user) == [(key, 6, "job", 42)]


async def test_a_key_committed_for_another_user_while_the_add_waits_already_exists(
    db: Database, points_dsn: str, service: PointService
) -> None:
    user, other, key = new_id(), new_id(), uuid.uuid4().hex
    await seed(db, {user: 1})
    request = add(user, 6, "job", key)
    with pytest.raises(GRPCError) as caught:
        await add_meeting_a_held_key(db, points_dsn, service, (other, 6, "job", 6), request)
    assert caught.value.status is Status.ALREADY_EXISTS
    assert await balance(db, user) == 1
    assert await ledger(db, user) == []


async def test_a_collision_whose_row_is_gone_is_aborted(
    db: Database, service: PointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The branch the ledger never reaches (its rows are never deleted): the duplicate
    key met, then no row under the key. Made by answering the re-read with no row."""
    user, key = new_id(), uuid.uuid4().hex
    await seed(db, {user: 2})

    async def collide(self: PointService, user_id: str, message: AddPointsRequest) -> Any:
        raise pymysql.IntegrityError(1062, f"Duplicate entry '{key}' for key 'idempotency_key'")

    async def nothing(conn: Any, *, idempotency_key: str) -> None:
        assert idempotency_key == key
        assert isinstance(conn, aiomysql.Connection)

    monkeypatch.setattr(PointService, "_apply", collide)
    monkeypatch.setattr(q, "get_ledger_entry", nothing)
    status, detail = await refused(service.add_user_points(add(user, 1, "job", key)))
    assert (status, detail) == (Status.ABORTED, "idempotency_key: concurrent use, retry")


async def test_an_integrity_error_other_than_a_duplicate_key_is_raised(
    db: Database, service: PointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def other(self: PointService, user_id: str, message: AddPointsRequest) -> Any:
        raise pymysql.IntegrityError(1048, "Column 'reason' cannot be null")

    monkeypatch.setattr(PointService, "_apply", other)
    with pytest.raises(pymysql.IntegrityError) as caught:
        await service.add_user_points(add(new_id(), 1))
    assert caught.value.args[0] == 1048


def awarded() -> float:
    return REGISTRY.get_sample_value("points_awarded_total", {"service": "points"}) or 0.0


async def test_an_award_counts_its_points_and_a_spend_or_a_replay_none(
    service: PointService,
) -> None:
    """points_awarded_total: the sum of the positive deltas applied (1 included), under the
    service's label; a spend and a replayed key add nothing."""
    user, key = new_id(), uuid.uuid4().hex
    start = awarded()
    await service.add_user_points(add(user, 1))
    assert awarded() == start + 1
    await service.add_user_points(add(user, 5, key=key))
    await service.add_user_points(add(user, 5, key=key))  # the replay
    assert awarded() == start + 6
    await service.add_user_points(add(user, -4))
    assert awarded() == start + 6
