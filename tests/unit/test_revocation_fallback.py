"""lib/auth/revocation's second source (ADR 0010): with Redis failing, a check asks the
record through the fallback with the token it checks, caches the answer for the cache's
TTL, keeps what it last read when the record is away too, and answers Redis's 503 only
when it knows nothing; the record's own 401 stands. Redis is the recording fake of
tests/unit/test_revocation.py; the real fallbacks (users' endpoint, its database) run in
tests/integration/test_revocation_outage.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from lib.auth.revocation import ceil_ms
from lib.errors import ServiceUnavailable, Unauthorized
from tests.unit.test_revocation import SUBJECT, FakeRedis, make, token

# what `make test svc=` selects it for (tests/selection.py):
# lib/auth only: "users" names the record's owner in a message
EXERCISES = ()

TOKEN = "the.checked.token"


class Record:
    """The record as the fallback sees it: not-before per subject, the calls it got."""

    def __init__(self, not_before: int = 0, failure: Exception | None = None) -> None:
        self.not_before, self.failure = not_before, failure
        self.asked: list[tuple[uuid.UUID, str]] = []

    async def __call__(self, subject: uuid.UUID, token: str) -> int:
        self.asked.append((subject, token))
        if self.failure is not None:
            raise self.failure
        return self.not_before


def failing_redis() -> FakeRedis:
    redis = FakeRedis()
    redis.failure = RedisConnectionError("refused")
    return redis


async def test_redis_away_the_record_decides_with_the_token_and_is_cached_for_the_ttl() -> None:
    record = Record(5000)
    revocations, _, mono = make(failing_redis(), fallback=record)
    with pytest.raises(Unauthorized) as caught:
        await revocations.check(token(4999), TOKEN)
    assert caught.value.detail == "token revoked"
    await revocations.check(token(5000), TOKEN)  # from the cache: the record not asked again
    assert record.asked == [(SUBJECT, TOKEN)]
    mono.now += 0.999
    record.not_before = 6000
    await revocations.check(token(5000), TOKEN)
    assert len(record.asked) == 1
    mono.now += 0.001  # exactly the TTL: asked again
    with pytest.raises(Unauthorized):
        await revocations.check(token(5000), TOKEN)
    assert len(record.asked) == 2


async def test_redis_up_the_record_is_never_asked() -> None:
    redis = FakeRedis()
    redis.data[str(SUBJECT)] = b"5000"
    record = Record(9000)
    revocations, _, _ = make(redis, fallback=record)
    await revocations.check(token(5000), TOKEN)
    assert record.asked == []


async def test_both_away_an_unknown_subject_gets_redis_503() -> None:
    record = Record(failure=ServiceUnavailable("users is away", retry_after=7))
    revocations, _, _ = make(failing_redis(), fallback=record)
    with pytest.raises(ServiceUnavailable) as caught:
        await revocations.check(token(0), TOKEN)
    assert caught.value.detail == "token revocations cannot be checked"
    assert caught.value.retry_after == 1
    assert caught.value.__suppress_context__
    assert record.asked == [(SUBJECT, TOKEN)]


async def test_both_away_a_subject_read_before_keeps_its_last_record() -> None:
    redis = FakeRedis()
    redis.data[str(SUBJECT)] = b"5000"
    record = Record()
    revocations, _, mono = make(redis, fallback=record)
    await revocations.check(token(5000), TOKEN)  # read from Redis, remembered
    mono.now += 10.0
    redis.failure = RedisConnectionError("refused")
    record.failure = ServiceUnavailable("users is away")
    with pytest.raises(Unauthorized):
        await revocations.check(token(4999), TOKEN)
    await revocations.check(token(5000), TOKEN)


async def test_without_the_token_or_a_fallback_the_record_is_not_asked() -> None:
    record = Record()
    revocations, _, _ = make(failing_redis(), fallback=record)
    with pytest.raises(ServiceUnavailable):
        await revocations.check(token(0))  # no token to ask with
    assert record.asked == []
    bare, _, _ = make(failing_redis())
    assert bare.fallback is None
    with pytest.raises(ServiceUnavailable):
        await bare.check(token(0), TOKEN)


async def test_the_record_refusing_the_token_is_401_not_503() -> None:
    record = Record(failure=Unauthorized("token revoked"))
    revocations, _, _ = make(failing_redis(), fallback=record)
    with pytest.raises(Unauthorized) as caught:
        await revocations.check(token(0), TOKEN)
    assert caught.value.detail == "token revoked"


@pytest.mark.parametrize(
    ("micros", "expected"),
    [(0, 1_700_000_000_000), (1, 1_700_000_000_001), (999, 1_700_000_000_001),
     (1000, 1_700_000_000_001), (1001, 1_700_000_000_002)],
)  # fmt: skip
def test_ceil_ms_rounds_up_exactly(micros: int, expected: int) -> None:
    base = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1_700_000_000 s
    assert ceil_ms(base + timedelta(microseconds=micros)) == expected
