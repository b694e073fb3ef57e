"""services/points/rules without MariaDB: which user ids, keys and reasons an add accepts
(INVALID_ARGUMENT naming the field otherwise), the balance bounds (never below 0:
FAILED_PRECONDITION; never past int32: OUT_OF_RANGE) and when a reused idempotency key is
a replay (ALREADY_EXISTS for another payload). tests/integration/test_points*.py run the
service over gRPC against MariaDB."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from grpclib import GRPCError
from grpclib.const import Status

from lib.pb.point import AddPointsRequest
from services.points.db.models import PointsLedger
from services.points.rules import (
    INT32_MAX,
    balance_after,
    canonical_id,
    canonical_ids,
    check_add,
    replayed_balance,
)

USER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def refused(call: Callable[..., object], *args: object) -> tuple[Status, str]:
    with pytest.raises(GRPCError) as caught:
        call(*args)
    return caught.value.status, caught.value.message or ""


def add(
    user_id: str = USER, delta: int = 5, reason: str = "job done", key: str = "award-1"
) -> AddPointsRequest:
    return AddPointsRequest(user_id=user_id, delta=delta, reason=reason, idempotency_key=key)


def test_a_uuid_is_canonical_in_lower_case() -> None:
    assert canonical_id(USER) == USER
    assert canonical_id(USER.upper()) == USER


@pytest.mark.parametrize(
    "value",
    [
        USER[:-1],
        USER + "0",
        USER.replace("-", ""),
        "{" + USER + "}",
        USER + "\n",
        " " + USER,
        USER.replace("a", "g", 1),
        "",
    ],
    ids=["short", "long", "no-dashes", "braces", "newline", "space", "not-hex", "empty"],
)
def test_anything_else_is_invalid_and_named(value: str) -> None:
    assert refused(canonical_id, value) == (
        Status.INVALID_ARGUMENT,
        f"user_id: not a UUID: {value!r}",
    )
    assert refused(canonical_id, value, "user_ids[3]")[1].startswith("user_ids[3]: not a UUID")


def test_the_message_quotes_at_most_64_characters_of_the_value() -> None:
    value = "x" * 65
    assert refused(canonical_id, value)[1] == f"user_id: not a UUID: {'x' * 64!r}"


def test_a_list_keeps_the_ids_as_asked_with_their_canonical_form() -> None:
    asked = [USER.upper(), USER]
    assert canonical_ids(asked, 2) == {USER.upper(): USER, USER: USER}
    assert canonical_ids([], 0) == {}
    assert refused(canonical_ids, asked, 1) == (
        Status.INVALID_ARGUMENT,
        "user_ids: at most 1 ids",
    )
    assert refused(canonical_ids, [USER, "nope"], 5) == (
        Status.INVALID_ARGUMENT,
        "user_ids[1]: not a UUID: 'nope'",
    )


def test_a_valid_add_gives_its_canonical_user() -> None:
    assert check_add(add(user_id=USER.upper())) == USER
    assert check_add(add(delta=-3, reason="r" * 200, key="k" * 128)) == USER
    assert check_add(add(key="!~")) == USER  # the ends of visible ASCII


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        (add(user_id="nope"), "user_id: not a UUID: 'nope'"),
        (add(delta=0), "delta: must not be 0"),
        (add(reason=""), "reason: 1 to 200 characters"),
        (add(reason=" \t"), "reason: 1 to 200 characters"),
        (add(reason="r" * 201), "reason: 1 to 200 characters"),
        (add(key=""), "idempotency_key: 1 to 128 visible ASCII characters"),
        (add(key="k" * 129), "idempotency_key: 1 to 128 visible ASCII characters"),
        (add(key="a b"), "idempotency_key: 1 to 128 visible ASCII characters"),
        (add(key="ü"), "idempotency_key: 1 to 128 visible ASCII characters"),
        (add(key="k\n"), "idempotency_key: 1 to 128 visible ASCII characters"),
    ],
    ids=["user", "delta-0", "reason-empty", "reason-blank", "reason-long", "key-empty",
         "key-long", "key-space", "key-non-ascii", "key-newline"],
)  # fmt: skip
def test_an_invalid_add_is_refused_naming_the_field(message: AddPointsRequest, detail: str) -> None:
    assert refused(check_add, message) == (Status.INVALID_ARGUMENT, detail)


def test_the_balance_may_reach_0_and_int32_max_but_not_beyond() -> None:
    assert balance_after(10, -10) == 0
    assert balance_after(10, 5) == 15
    assert balance_after(INT32_MAX - 1, 1) == INT32_MAX == 2**31 - 1
    assert refused(balance_after, 10, -11) == (
        Status.FAILED_PRECONDITION,
        "insufficient points: balance 10, delta -11",
    )
    assert refused(balance_after, INT32_MAX, 1) == (
        Status.OUT_OF_RANGE,
        "balance would exceed 2147483647",
    )


def entry(user_id: str = USER, delta: int = 5, reason: str = "job done") -> PointsLedger:
    return PointsLedger(1, user_id, delta, reason, 42, datetime.now(UTC), "award-1")


def test_the_same_add_again_is_answered_with_the_first_balance() -> None:
    assert replayed_balance(entry(), USER, add()) == 42


@pytest.mark.parametrize(
    "first",
    [entry(user_id=USER.replace("0a", "ff")), entry(delta=6), entry(reason="other")],
    ids=["another-user", "another-delta", "another-reason"],
)
def test_the_key_used_for_another_payload_is_already_exists(first: PointsLedger) -> None:
    assert refused(replayed_balance, first, USER, add()) == (
        Status.ALREADY_EXISTS,
        "idempotency_key: already used with another payload",
    )
