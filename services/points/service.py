"""The PointServer implementation: balances and the idempotent ledger on MariaDB.

Every applied AddUserPoints writes its audit event in its own transaction (ADR 0057): the
balance before and after, the delta and reason; a replay changed nothing and writes none.

Errors leave as grpclib.GRPCError (what the generated base class uses); lib.grpc.adapter
turns them into the same gRPC status on grpc.aio.
"""

from __future__ import annotations

import pymysql
import structlog
from grpclib import GRPCError
from grpclib.const import Status

from lib.db.audit import fields
from lib.db.pool import Database
from lib.logging import get_logger
from lib.pb.point import (
    AddPointsRequest,
    PointReply,
    PointRequest,
    PointServerBase,
    PointsVersionReply,
    PointsVersionRequest,
    UserExportReply,
    UserExportRequest,
    UserListPointResponse,
    UserListRequest,
)
from services.points.db import audit, table_versions
from services.points.db import points as q
from services.points.db.models import PointsLedger
from services.points.export import user_export
from services.points.facts import AWARDED
from services.points.rules import (
    balance_after,
    canonical_id,
    canonical_ids,
    check_add,
    replayed_balance,
)
from services.points.settings import SERVICE

log = get_logger("services.points")
ADD_ROUTE = "/point.PointServer/AddUserPoints"
DUPLICATE_KEY = 1062


class _Replay(Exception):
    """The key was already used: leave the transaction, then answer from the ledger."""

    def __init__(self, entry: PointsLedger) -> None:
        self.entry = entry


class PointService(PointServerBase):
    def __init__(self, db: Database, *, max_list_ids: int = 1000, service: str = SERVICE) -> None:
        self.db, self.max_list_ids, self.service = db, max_list_ids, service

    async def get_user_points(self, message: PointRequest) -> PointReply:
        user_id = canonical_id(message.user_id)
        async with self.db.acquire() as conn:
            points = await q.get_user_points(conn, user_id=user_id)
        return PointReply(user_point=str(points or 0))

    async def get_user_list_points(self, message: UserListRequest) -> UserListPointResponse:
        """Keys are the ids as asked (a caller looks up what it sent); 0 for no balance."""
        canonical = canonical_ids(message.user_ids, self.max_list_ids)
        if not canonical:
            return UserListPointResponse(user_points={})
        async with self.db.acquire() as conn:
            rows = await q.get_user_list_points(conn, user_ids=sorted(set(canonical.values())))
        found = {row.user_id: row.points for row in rows}
        return UserListPointResponse(
            user_points={raw: found.get(uid, 0) for raw, uid in canonical.items()}
        )

    async def get_user_export(self, message: UserExportRequest) -> UserExportReply:
        return await user_export(self.db, message)

    async def get_points_version(self, message: PointsVersionRequest) -> PointsVersionReply:
        """user_points' stamp (bumped by its triggers in the writing transaction)."""
        async with self.db.acquire() as conn:
            version = await table_versions.tables_version(conn, names=["user_points"])
        return PointsVersionReply(version=version or 0)

    async def add_user_points(self, message: AddPointsRequest) -> PointReply:
        """Apply once per idempotency key, in one transaction under the balance row lock.

        Concurrent duplicates wait on the row lock and then find the ledger row; the same
        key used for another user concurrently hits the unique key (1062) and is answered
        from the ledger like any replay.
        """
        user_id = check_add(message)
        try:
            return await self._apply(user_id, message)
        except _Replay as replay:
            return self._replay(replay.entry, user_id, message)
        except pymysql.IntegrityError as exc:
            if exc.args[0] != DUPLICATE_KEY:
                raise
        async with self.db.acquire() as conn:
            entry = await q.get_ledger_entry(conn, idempotency_key=message.idempotency_key)
        if entry is None:  # cannot happen: the row that collided is committed
            raise GRPCError(Status.ABORTED, "idempotency_key: concurrent use, retry")
        return self._replay(entry, user_id, message)

    async def _apply(self, user_id: str, message: AddPointsRequest) -> PointReply:
        key = message.idempotency_key
        async with self.db.transaction() as conn:
            await q.ensure_user_points(conn, user_id=user_id)
            balance = await q.lock_user_points(conn, user_id=user_id) or 0
            # A consistent read: its snapshot starts now, after the lock, so it sees every
            # add of this user committed before (no FOR UPDATE: a locking read of a missing
            # key takes gap locks that deadlock concurrent inserts of other keys).
            entry = await q.get_ledger_entry(conn, idempotency_key=key)
            if entry is not None:
                raise _Replay(entry)  # rolls back the (no-op) ensure
            after = balance_after(balance, message.delta)
            await q.insert_ledger_entry(
                conn,
                idempotency_key=key,
                user_id=user_id,
                delta=message.delta,
                reason=message.reason,
                balance_after=after,
            )
            await q.upsert_user_points(conn, user_id=user_id, points=after)
            await audit.insert_audit_event(
                conn,
                subject_id=None,  # a peer service's call: no person's token
                subject_role=None,
                action="AddUserPoints",
                resource="points",
                resource_id=user_id,
                route=ADD_ROUTE,
                request_id=structlog.contextvars.get_contextvars().get("request_id", ""),
                before_fields=fields({"points": balance}),
                after_fields=fields(
                    {"points": after, "delta": message.delta, "reason": message.reason}
                ),
            )
            if message.delta > 0:
                AWARDED.count(self.service, amount=message.delta)
        log.info("points_added", user_id=user_id, delta=message.delta, balance=after)
        return PointReply(user_point=str(after))

    @staticmethod
    def _replay(entry: PointsLedger, user_id: str, message: AddPointsRequest) -> PointReply:
        return PointReply(user_point=str(replayed_balance(entry, user_id, message)))
