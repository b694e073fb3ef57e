"""lib/auth/revocation's decisions without a server: the record it writes (key, value in
milliseconds rounded up), which tokens a record voids, the per-subject cache and
its bound, the in-memory mode, the chat sweep's single read, and failing closed (503, the
breaker's quick answer, stale-if-error). Redis is a recording fake of the two commands
used (HSET, HMGET); tests/integration/test_revocation*.py run the same code against Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Generator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from lib.auth import revocation
from lib.auth.principal import Principal, Role
from lib.auth.revocation import MARKER, Revocations, RevocationUnavailable, ceil_ms
from lib.errors import ServiceUnavailable, Unauthorized
from tests.logging_support import capture_logs

SUBJECT = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")
HASH = "fixup:revoked:all"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Call:
    """A pending Redis command: awaited, or closed unawaited (the breaker refused it)."""

    def __init__(self, redis: FakeRedis, command: tuple[Any, ...], result: Any) -> None:
        self.redis, self.command, self.result = redis, command, result
        self.closed = False

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run().__await__()

    async def _run(self) -> Any:
        self.redis.sent.append(self.command)
        if self.redis.failure is not None:
            raise self.redis.failure
        if self.redis.hang:
            await asyncio.Event().wait()
        if self.command[0] == "HSET":
            self.redis.data[self.command[1]] = str(self.command[2]).encode()
        return self.result()

    def close(self) -> None:
        self.closed = True


class FakeRedis:
    """The one hash of the revocations: `data` its fields (the marker set: intact)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {MARKER: b"epoch-1"}
        self.sent: list[tuple[Any, ...]] = []
        self.made: list[Call] = []
        self.failure: BaseException | None = None
        self.hang = False

    def hset(self, key: str, field: str, value: int) -> Awaitable[None]:
        assert key == HASH
        return self._call(("HSET", field, value), lambda: None)

    def hmget(self, key: str, fields: list[str]) -> Awaitable[list[bytes | None]]:
        assert key == HASH
        return self._call(("HMGET", *fields), lambda: [self.data.get(f) for f in fields])

    def _call(self, command: tuple[Any, ...], result: Any) -> Call:
        call = Call(self, command, result)
        self.made.append(call)
        return call


def with_tokens(principals: list[Principal]) -> dict[Principal, str]:
    """What the chat sweep passes: each socket's principal and its token."""
    return {principal: f"token-{principal.issued_at_ms}" for principal in principals}


def make(
    redis: FakeRedis | None,
    *,
    now: float = 1_700_000_000.0,
    timeout: float = 1.0,
    cache_ttl: float = 1.0,
    fallback: Any = None,
) -> tuple[Revocations, Clock, Clock]:
    wall, mono = Clock(now), Clock(50.0)
    revocations = Revocations(
        cast(Any, redis),
        prefix="fixup:revoked:",
        max_age=900,
        cache_ttl=cache_ttl,
        timeout=timeout,
        retry=5.0,
        fallback=fallback,
        monotonic=mono,
    )
    return revocations, wall, mono


def ms(seconds: float) -> int:
    """What users passes: its database's clock, in ms rounded up."""
    return ceil_ms(datetime.fromtimestamp(seconds, UTC))


def token(issued_at_ms: int, subject: uuid.UUID = SUBJECT) -> Principal:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    return Principal(subject, Role.CUSTOMER, True, "jti", expires, issued_at_ms)


def test_settings_are_kept_and_the_key_is_the_prefix_and_all() -> None:
    revocations, _, _ = make(FakeRedis())
    assert revocations.prefix == "fixup:revoked:"
    assert (revocations.max_age, revocations.cache_ttl, revocations.timeout) == (900, 1.0, 1.0)
    assert revocations.hash_key == HASH
    # the memory bound and the clock margin the record's lifetime adds
    assert (revocation.CACHE_SIZE, revocation.CLOCK_MARGIN) == (100_000, 60)


async def test_revoke_writes_the_time_in_ms_rounded_up_in_the_subjects_field() -> None:
    redis = FakeRedis()
    revocations, wall, _ = make(redis, now=1_700_000_000.0001)
    assert await revocations.revoke(SUBJECT, ms(wall.now)) == 1_700_000_000_001
    assert redis.sent == [("HSET", str(SUBJECT), 1_700_000_000_001)]


async def test_a_token_issued_before_the_record_is_void_and_one_at_or_after_it_is_not() -> None:
    redis = FakeRedis()
    revocations, wall, _ = make(redis, now=1_700_000_000.0)
    not_before = await revocations.revoke(SUBJECT, ms(wall.now))
    with pytest.raises(Unauthorized) as caught:
        await revocations.check(token(not_before - 1))
    assert caught.value.detail == "token revoked"
    await revocations.check(token(not_before))
    await revocations.check(token(not_before + 1))
    await revocations.check(token(0, OTHER))  # no record: nothing is void
    assert redis.sent[1:] == [("HMGET", MARKER, str(OTHER))]  # the writer knew at once


async def test_the_writer_caches_its_record_only_for_the_ttl_redis_stays_the_truth() -> None:
    redis = FakeRedis()
    revocations, wall, mono = make(redis, now=1_700_000_000.0)
    first = await revocations.revoke(SUBJECT, ms(wall.now))
    mono.now += 1.0
    wall.now += 1.0
    second = 1_700_000_001_000
    redis.data[str(SUBJECT)] = str(second).encode()  # another replica's
    with pytest.raises(Unauthorized):
        await revocations.check(token(first))
    assert redis.sent[-1] == ("HMGET", MARKER, str(SUBJECT))


async def test_a_record_another_process_wrote_is_read_then_cached_for_the_ttl() -> None:
    redis = FakeRedis()
    redis.data[str(SUBJECT)] = b"5000"
    revocations, _, mono = make(redis)
    with pytest.raises(Unauthorized):
        await revocations.check(token(4999))
    await revocations.check(token(5000))
    assert redis.sent == [("HMGET", MARKER, str(SUBJECT))]  # the second from the cache
    mono.now += 0.999
    redis.data[str(SUBJECT)] = b"9000"
    await revocations.check(token(5000))  # still the cached record
    assert len(redis.sent) == 1
    mono.now += 0.001  # exactly the TTL: stale, read again
    with pytest.raises(Unauthorized):
        await revocations.check(token(5000))
    assert len(redis.sent) == 2


async def test_without_redis_the_record_lives_in_memory_for_max_age_plus_the_margin() -> None:
    revocations, wall, mono = make(None, now=1_700_000_000.0)
    await revocations.check(token(0))  # nothing recorded: passes
    not_before = await revocations.revoke(SUBJECT, ms(wall.now))
    assert not_before == 1_700_000_000_000
    mono.now += 959.9  # far beyond the cache TTL: still the only copy
    with pytest.raises(Unauthorized):
        await revocations.check(token(not_before - 1))
    await revocations.check(token(not_before))  # signed from T on: a new login
    assert await revocations.revoked(with_tokens([token(not_before - 1), token(not_before)])) == [
        token(not_before - 1)
    ]
    mono.now += 0.1  # the token it voids has expired by now: the record is dropped
    await revocations.check(token(not_before - 1))
    assert await revocations.revoked(with_tokens([token(not_before - 1)])) == []


async def test_the_sweep_reads_every_uncached_subject_at_once_and_lists_the_revoked() -> None:
    redis = FakeRedis()
    third = uuid.UUID("00000000-0000-4000-8000-000000000003")
    redis.data[str(OTHER)] = b"7000"
    revocations, wall, _ = make(redis, now=0.006)
    assert await revocations.revoke(SUBJECT, ms(wall.now)) == 6  # cached by the writer
    principals = [token(5, SUBJECT), token(6999, OTHER), token(7000, OTHER), token(1, third)]
    assert await revocations.revoked(with_tokens(principals)) == [
        token(5, SUBJECT),
        token(6999, OTHER),
    ]
    assert redis.sent[1][1] == MARKER  # read with the subjects, in the same command
    assert sorted(redis.sent[1][2:]) == sorted([str(OTHER), str(third)])
    assert await revocations.revoked(with_tokens(principals)) == [
        token(5, SUBJECT),
        token(6999, OTHER),
    ]
    assert len(redis.sent) == 2  # all cached now
    assert await revocations.revoked(with_tokens([])) == []
    assert len(redis.sent) == 2  # nothing to read: no call


async def test_a_cached_subject_without_a_record_voids_nothing_in_the_sweep() -> None:
    redis = FakeRedis()
    revocations, _, _ = make(redis)
    await revocations.check(token(0))  # read: no record (cached as 0)
    await revocations.check(token(0))  # from the cache
    assert redis.sent == [("HMGET", MARKER, str(SUBJECT))]
    assert await revocations.revoked(with_tokens([token(0)])) == []  # from the cache, even iat 0
    assert len(redis.sent) == 1


async def test_with_a_cache_ttl_of_0_every_check_and_sweep_reads_redis() -> None:
    redis = FakeRedis()
    redis.data[str(SUBJECT)] = b"7000"
    revocations, _, _ = make(redis, cache_ttl=0)
    principals = [token(6999), token(7000), token(0, OTHER)]
    assert await revocations.revoked(with_tokens(principals)) == [token(6999)]
    assert await revocations.revoked(with_tokens(principals)) == [token(6999)]
    with pytest.raises(Unauthorized):
        await revocations.check(token(6999))
    await revocations.check(token(0, OTHER))
    assert [command[0] for command in redis.sent] == ["HMGET"] * 4


async def test_a_full_cache_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(revocation, "CACHE_SIZE", 2)
    redis = FakeRedis()
    revocations, _, _ = make(redis)
    await revocations.check(token(0, SUBJECT))
    await revocations.check(token(0, OTHER))
    await revocations.check(token(0, OTHER))
    assert len(redis.sent) == 2  # two fit
    await revocations.check(token(0, uuid.uuid4()))  # the third empties the table
    await revocations.check(token(0, OTHER))
    await revocations.check(token(0, SUBJECT))
    assert len(redis.sent) == 5


async def test_an_unknown_subject_gets_503_when_redis_fails_and_the_breaker_answers_next() -> None:
    redis = FakeRedis()
    redis.failure = failure = RedisConnectionError("refused")
    revocations, _, mono = make(redis)
    with capture_logs() as logs, pytest.raises(ServiceUnavailable) as caught:
        await revocations.check(token(0))
    assert caught.value.detail == "token revocations cannot be checked"
    assert caught.value.retry_after == 1
    assert logs == [
        {
            "event": "revocations_unavailable",
            "error": repr(failure),
            "log_level": "warning",
        }
    ]
    mono.now += 2.0
    with pytest.raises(ServiceUnavailable) as quick:
        await revocations.check(token(0))  # the breaker: Redis is not asked again
    assert quick.value.detail == "token revocations cannot be checked"
    assert quick.value.retry_after == 3  # what is left of the 5 s retry interval
    assert len(redis.sent) == 1
    assert redis.made[-1].closed  # the command the breaker refused is closed, never sent
    redis.failure = None
    mono.now += 3.0  # the interval is over: one try, which finds Redis back
    await revocations.check(token(0))
    assert len(redis.sent) == 2


async def test_an_error_that_is_not_an_outage_propagates_and_does_not_open_the_breaker() -> None:
    redis = FakeRedis()
    redis.failure = RuntimeError("a bug, not an outage")
    revocations, _, _ = make(redis)
    with pytest.raises(RuntimeError):
        await revocations.check(token(0))
    redis.failure = None
    await revocations.check(token(0))  # Redis is asked at once: no breaker in the way
    assert len(redis.sent) == 2


@pytest.mark.parametrize("failure", [OSError("reset"), TimeoutError()])
async def test_socket_errors_and_timeouts_fail_closed_too(failure: BaseException) -> None:
    redis = FakeRedis()
    redis.failure = failure
    revocations, _, _ = make(redis)
    with pytest.raises(ServiceUnavailable):
        await revocations.check(token(0))


async def test_a_read_is_bounded_by_the_timeout() -> None:
    redis = FakeRedis()
    redis.hang = True
    revocations, _, _ = make(redis, timeout=0.01)
    with pytest.raises(ServiceUnavailable) as caught:
        await asyncio.wait_for(revocations.check(token(0)), 5.0)
    assert caught.value.detail == "token revocations cannot be checked"


async def test_a_subject_read_before_keeps_its_last_record_while_redis_fails() -> None:
    redis = FakeRedis()
    redis.data[str(SUBJECT)] = b"5000"
    revocations, _, mono = make(redis)
    await revocations.check(token(5000))
    await revocations.check(token(0, OTHER))  # no record: cached as 0
    mono.now += 10.0
    redis.failure = RedisConnectionError("refused")
    with pytest.raises(Unauthorized):
        await revocations.check(token(4999))  # stale if error: still void
    await revocations.check(token(5000))
    await revocations.check(token(0, OTHER))
    with pytest.raises(ServiceUnavailable):  # the sweep has no stale fallback: 503
        await revocations.revoked(with_tokens([token(5000)]))


async def test_a_revocation_redis_does_not_take_is_an_error_and_is_not_remembered() -> None:
    redis = FakeRedis()
    redis.failure = RedisConnectionError("refused")
    revocations, wall, mono = make(redis)
    with pytest.raises(RevocationUnavailable) as caught:
        await revocations.revoke(SUBJECT, ms(wall.now))
    assert caught.value.detail == (
        "the sessions of this account could not be ended (Redis unavailable); "
        "nothing was changed, try again"
    )
    assert caught.value.__suppress_context__
    redis.failure = None
    mono.now += 5.0
    await revocations.check(token(0))  # nothing recorded, here or in Redis
    assert redis.data == {MARKER: b"epoch-1"}
