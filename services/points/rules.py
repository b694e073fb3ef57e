"""The points service's decisions, without the database: which ids, keys and reasons are
valid, the balance an add leads to, and whether a reused idempotency key is a replay.

Errors are grpclib.GRPCError with the status the API documents (INVALID_ARGUMENT,
FAILED_PRECONDITION, OUT_OF_RANGE, ALREADY_EXISTS); services/points/service.py applies
them in its transactions."""

from __future__ import annotations

import re

from grpclib import GRPCError
from grpclib.const import Status

from lib.pb.point import AddPointsRequest
from services.points.db.models import PointsLedger

UUID_FORMAT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
KEY_FORMAT = re.compile(r"^[\x21-\x7e]{1,128}\Z")  # visible ASCII, the ledger's ascii_bin key
MAX_REASON = 200
INT32_MAX = 2**31 - 1


def canonical_id(value: str, field: str = "user_id") -> str:
    """A canonical UUID string, lowercased; anything else is INVALID_ARGUMENT naming it."""
    lowered = value.lower()
    if not UUID_FORMAT.match(lowered):
        raise GRPCError(Status.INVALID_ARGUMENT, f"{field}: not a UUID: {value[:64]!r}")
    return lowered


def canonical_ids(asked: list[str], max_ids: int) -> dict[str, str]:
    """Each asked id -> its canonical form (a caller looks up what it sent); at most
    `max_ids` of them."""
    if len(asked) > max_ids:
        raise GRPCError(Status.INVALID_ARGUMENT, f"user_ids: at most {max_ids} ids")
    return {raw: canonical_id(raw, f"user_ids[{i}]") for i, raw in enumerate(asked)}


def check_add(message: AddPointsRequest) -> str:
    """The add's canonical user id, once every field is valid."""
    user_id = canonical_id(message.user_id)
    if message.delta == 0:
        raise GRPCError(Status.INVALID_ARGUMENT, "delta: must not be 0")
    if not message.reason.strip() or len(message.reason) > MAX_REASON:
        raise GRPCError(Status.INVALID_ARGUMENT, f"reason: 1 to {MAX_REASON} characters")
    if not KEY_FORMAT.match(message.idempotency_key):
        raise GRPCError(
            Status.INVALID_ARGUMENT, "idempotency_key: 1 to 128 visible ASCII characters"
        )
    return user_id


def balance_after(balance: int, delta: int) -> int:
    """The balance once `delta` is applied: never below 0, never past the int32 column."""
    after = balance + delta
    if after < 0:
        raise GRPCError(
            Status.FAILED_PRECONDITION, f"insufficient points: balance {balance}, delta {delta}"
        )
    if after > INT32_MAX:
        raise GRPCError(Status.OUT_OF_RANGE, "balance would exceed 2147483647")
    return after


def replayed_balance(entry: PointsLedger, user_id: str, message: AddPointsRequest) -> int:
    """The balance the first use of the key left, when this add is the same one again;
    ALREADY_EXISTS when the key was used for another payload."""
    if (entry.user_id, entry.delta, entry.reason) != (user_id, message.delta, message.reason):
        raise GRPCError(Status.ALREADY_EXISTS, "idempotency_key: already used with another payload")
    return entry.balance_after
