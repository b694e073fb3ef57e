"""lib/auth/revocation with a Redis that lost its revocations (ADR 0010): a hash without
its marker (restarted empty, flushed, evicted) is not "no revocation": each check and the
chat sweep ask the record with the token, take the later of Redis's field (a revocation
written since the loss) and the record's, and fail closed (or keep what the process last
read) when the record is away too; the marker back, Redis alone decides again. Redis is
the recording fake of tests/unit/test_revocation.py; tests/integration/
test_revocation_loss.py runs it against a real redis-server killed and flushed."""

from __future__ import annotations

import pytest

from lib.auth.revocation import MARKER
from lib.errors import ServiceUnavailable, Unauthorized
from tests.logging_support import capture_logs
from tests.unit.test_revocation import HASH, OTHER, SUBJECT, FakeRedis, make, token, with_tokens
from tests.unit.test_revocation_fallback import TOKEN, Record


def lost() -> FakeRedis:
    redis = FakeRedis()
    del redis.data[MARKER]  # what a restart without persistence or a FLUSHALL leaves
    return redis


async def test_without_the_marker_an_empty_field_is_not_trusted_the_record_decides() -> None:
    redis = lost()
    record = Record(5000)
    revocations, _, mono = make(redis, fallback=record)
    with capture_logs() as logs, pytest.raises(Unauthorized) as caught:
        await revocations.check(token(4999), TOKEN)
    assert caught.value.detail == "token revoked"
    assert record.asked == [(SUBJECT, TOKEN)]
    assert revocations.intact is False
    assert logs == [
        {"event": "revocations_marker", "present": False, "key": HASH, "log_level": "warning"}
    ]
    await revocations.check(token(5000), TOKEN)  # the record's answer, cached for the TTL
    assert len(record.asked) == 1
    mono.now += 1.0
    redis.data[MARKER] = b"epoch-2"  # users restored: Redis alone decides again
    redis.data[str(SUBJECT)] = b"5000"
    with capture_logs() as logs:
        await revocations.check(token(5000), TOKEN)
        await revocations.check(token(5000, OTHER), TOKEN)  # no change: no second line
    assert len(record.asked) == 1
    assert revocations.intact is True
    assert logs == [
        {"event": "revocations_marker", "present": True, "key": HASH, "log_level": "info"}
    ]


async def test_a_revocation_written_since_the_loss_counts_with_the_record() -> None:
    redis = lost()
    redis.data[str(SUBJECT)] = b"8000"  # written after the loss, not yet in the record
    revocations, _, _ = make(redis, fallback=Record(5000))
    with pytest.raises(Unauthorized):
        await revocations.check(token(7999), TOKEN)


async def test_without_the_marker_and_the_record_an_unknown_subject_is_503() -> None:
    record = Record(failure=ServiceUnavailable("users is away"))
    revocations, _, _ = make(lost(), fallback=record)
    with pytest.raises(ServiceUnavailable) as caught:
        await revocations.check(token(0), TOKEN)
    assert caught.value.detail == "token revocations cannot be checked (Redis lost them)"
    bare, _, _ = make(lost())  # no fallback at all: 503 too, never a pass
    with pytest.raises(ServiceUnavailable):
        await bare.check(token(0), TOKEN)


async def test_without_the_marker_and_the_record_a_known_subject_keeps_its_last_record() -> None:
    redis = FakeRedis()
    redis.data[str(SUBJECT)] = b"5000"
    record = Record()
    revocations, _, mono = make(redis, fallback=record)
    await revocations.check(token(5000), TOKEN)  # read while intact: remembered
    mono.now += 10.0
    redis.data.clear()  # FLUSHALL
    record.failure = ServiceUnavailable("users is away")
    with pytest.raises(Unauthorized):
        await revocations.check(token(4999), TOKEN)


async def test_the_sweep_without_the_marker_asks_the_record_with_each_sockets_token() -> None:
    redis = lost()
    record = Record(5000)
    revocations, _, _ = make(redis, fallback=record)
    sockets = with_tokens([token(4999), token(6000, OTHER)])
    assert await revocations.revoked(sockets) == [token(4999)]
    assert sorted(record.asked) == sorted(
        [(SUBJECT, "token-4999"), (OTHER, "token-6000")]
    )  # each subject asked with its own socket's token


async def test_the_sweep_closes_the_sockets_of_a_subject_whose_newest_token_is_refused() -> None:
    """users' 401 for the socket's token (revoked, or the account gone) is "revoked" for
    the sweep, never a failed sweep; the subject is asked with its newest token, and the
    refusal is not cached (a new login of the subject is judged afresh)."""
    revocations, _, _ = make(lost())
    asked: list[str] = []

    async def refusing(subject: object, token: str) -> int:
        asked.append(token)
        raise Unauthorized("token revoked")

    revocations.fallback = refusing
    sockets = with_tokens([token(7000), token(4000)])
    assert await revocations.revoked(sockets) == [token(7000), token(4000)]
    assert asked == ["token-7000"]
    with pytest.raises(Unauthorized):
        await revocations.check(token(9000), "token-9000")
    assert asked == ["token-7000", "token-9000"]
