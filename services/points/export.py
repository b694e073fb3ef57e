"""Everything points holds about one user, for their data export (GetUserExport, ADR 0059):
the balance row and the ledger, at most `max_rows` + 1 entries (the caller tells "more than
its bound" from "exactly it"). The users service assembles the export; points only reads."""

from __future__ import annotations

import datetime

from grpclib import GRPCError
from grpclib.const import Status

from lib.db.pool import Database
from lib.pb.point import LedgerEntry, UserExportReply, UserExportRequest
from services.points.db import points as q
from services.points.rules import canonical_id

MAX_ROWS = 100_000


def utc_text(value: datetime.datetime) -> str:
    """RFC 3339 with Z: the DATETIME columns hold UTC (naive), as the REST services write."""
    return value.replace(tzinfo=datetime.UTC).isoformat().replace("+00:00", "Z")


async def user_export(db: Database, message: UserExportRequest) -> UserExportReply:
    user_id = canonical_id(message.user_id)
    if not 1 <= message.max_rows <= MAX_ROWS:
        raise GRPCError(Status.INVALID_ARGUMENT, f"max_rows: 1 to {MAX_ROWS}")
    async with db.acquire() as conn:
        balance = await q.export_user_points(conn, user_id=user_id)
        ledger = await q.export_ledger(conn, user_id=user_id, limit=message.max_rows + 1)
    return UserExportReply(
        user_point=str(balance.points if balance else 0),
        updated_at=utc_text(balance.updated_at) if balance else "",
        ledger=[
            LedgerEntry(
                id=row.id,
                delta=row.delta,
                reason=row.reason,
                balance_after=row.balance_after,
                created_at=utc_text(row.created_at),
                idempotency_key=row.idempotency_key,
            )
            for row in ledger
        ],
    )
