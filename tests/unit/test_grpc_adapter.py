"""lib.grpc.adapter: the adapter from betterproto2's generated mapping to grpc.aio.

No database: fake implementations of the generated base class, served on loopback.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
import grpclib
import grpclib.const
import pytest
from grpclib.const import Cardinality, Handler, Status

from lib.clients.points import decode_user_points, encode_user_ids
from lib.grpc.adapter import generic_handlers, method_handler, service_names
from lib.grpc.client import ChannelPool
from lib.grpc.interceptors import incoming_request_id
from lib.grpc.server import GrpcServer, serve
from lib.pb.point import (
    AddPointsRequest,
    PointReply,
    PointRequest,
    PointServerBase,
    UserListPointResponse,
    UserListRequest,
)

# what `make test svc=` selects it for (tests/selection.py):
# the points client and a servicer of its interface
EXERCISES = ("points",)

GET = "/point.PointServer/GetUserPoints"


class Fake(PointServerBase):
    """Answers from the request; some user ids trigger errors; "gated" signals `started`
    and answers only once the test sets `release` (`cancelled` when it never does)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def get_user_points(self, message: PointRequest) -> PointReply:
        if message.user_id == "invalid":
            raise grpclib.GRPCError(Status.INVALID_ARGUMENT, "user_id: not a UUID")
        if message.user_id == "crash":
            raise RuntimeError("password=hunter2")
        if message.user_id == "gated":
            self.started.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return PointReply(user_point=str(len(message.user_id)))

    async def get_user_list_points(self, message: UserListRequest) -> UserListPointResponse:
        return UserListPointResponse(user_points={u: len(u) for u in message.user_ids})

    # add_user_points: the generated default (UNIMPLEMENTED)


class Streaming:
    """A hand-written mapping with the streaming cardinalities, shaped like generated code."""

    async def _echo_each(self, stream: Any) -> None:
        request = await stream.recv_message()
        for user_id in request.user_ids:
            await stream.send_message(PointReply(user_point=user_id))

    async def _count(self, stream: Any) -> None:
        total = 0
        while (message := await stream.recv_message()) is not None:
            total += message.delta
        await stream.send_message(PointReply(user_point=str(total)))

    async def _running_sum(self, stream: Any) -> None:
        total = 0
        while (message := await stream.recv_message()) is not None:
            total += message.delta
            await stream.send_message(PointReply(user_point=str(total)))

    def __mapping__(self) -> Mapping[str, Handler]:
        return {
            "/test.Streams/Each": Handler(
                self._echo_each, Cardinality.UNARY_STREAM, UserListRequest, PointReply
            ),
            "/test.Streams/Count": Handler(
                self._count, Cardinality.STREAM_UNARY, AddPointsRequest, PointReply
            ),
            "/test.Streams/Sum": Handler(
                self._running_sum, Cardinality.STREAM_STREAM, AddPointsRequest, PointReply
            ),
        }


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    running = await serve([Fake(), Streaming()], port=0)
    yield running
    await running.stop(0)


@pytest.fixture
async def pool(server: GrpcServer) -> AsyncIterator[ChannelPool]:
    channels = ChannelPool(f"127.0.0.1:{server.port}", 1)
    yield channels
    await channels.close()


def test_handlers_come_from_the_generated_mapping() -> None:
    fake = Fake()
    assert service_names(fake) == ["point.PointServer"]
    assert service_names(Streaming()) == ["test.Streams"]
    assert len(generic_handlers(fake)) == 1
    for entry in fake.__mapping__().values():
        handler = method_handler(entry)
        assert not handler.request_streaming
        assert not handler.response_streaming
        sample = entry.request_type()
        assert handler.request_deserializer(bytes(sample)) == sample  # upb or betterproto2
        reply = entry.reply_type()
        assert entry.reply_type.parse(handler.response_serializer(reply)) == reply
        if entry.reply_type is PointReply:
            assert handler.response_serializer(PointReply(user_point="7")) == b"\n\x017"
    each, count, running_sum = (method_handler(e) for e in Streaming().__mapping__().values())
    assert (each.request_streaming, each.response_streaming) == (False, True)
    assert (count.request_streaming, count.response_streaming) == (True, False)
    assert (running_sum.request_streaming, running_sum.response_streaming) == (True, True)


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ((("x-request-id", "abc-1.2:3_Z"),), True),
        ((("x-request-id", "x" * 128),), True),
        ((("x-request-id", "x" * 129),), False),
        ((("x-request-id", "has space"),), False),
        ((("x-request-id", ""),), False),
        ((("x-request-id-bin", b"\x00"),), False),
        ((), False),
        (None, False),
    ],
)
def test_incoming_request_id(incoming: Any, kept: bool) -> None:
    rid = incoming_request_id(incoming)
    if kept:
        assert rid == incoming[0][1]
    else:
        assert uuid.UUID(rid)


async def test_unary_call_and_status_mapping(pool: ChannelPool) -> None:
    get = pool.unary(GET, PointReply.parse)
    assert (await get(PointRequest(user_id="abcd"), timeout=5)).user_point == "4"
    listed = pool.unary("/point.PointServer/GetUserListPoints", UserListPointResponse.parse)
    reply = await listed(UserListRequest(user_ids=["a", "bb"]), timeout=5)
    assert reply.user_points == {"a": 1, "bb": 2}

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await get(PointRequest(user_id="invalid"), timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "user_id: not a UUID"

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await get(PointRequest(user_id="crash"), timeout=5)
    assert info.value.code() is grpc.StatusCode.INTERNAL
    assert info.value.details() == "internal error"  # nothing of the exception leaks

    add = pool.unary("/point.PointServer/AddUserPoints", PointReply.parse)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await add(AddPointsRequest(user_id="a", delta=1), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_streaming_cardinalities(pool: ChannelPool) -> None:
    channel = pool.channel()
    each = channel.unary_stream(
        "/test.Streams/Each", request_serializer=bytes, response_deserializer=PointReply.parse
    )
    got = [r.user_point async for r in each(UserListRequest(user_ids=["x", "y", "z"]))]
    assert got == ["x", "y", "z"]

    deltas = [AddPointsRequest(delta=d) for d in (1, 2, 3)]
    count = channel.stream_unary(
        "/test.Streams/Count", request_serializer=bytes, response_deserializer=PointReply.parse
    )
    assert (await count(iter(deltas))).user_point == "6"
    running_sum = channel.stream_stream(
        "/test.Streams/Sum", request_serializer=bytes, response_deserializer=PointReply.parse
    )
    assert [r.user_point async for r in running_sum(iter(deltas))] == ["1", "3", "6"]


EVENT_WAIT = 5.0  # for something on loopback in this process to happen, under load


async def refused_once_stopping(get: Any) -> grpc.aio.AioRpcError:
    """Call until the stopping server refuses: calls pass until stop() begins, and one that
    arrives while it begins is CANCELLED before any handler runs."""
    deadline = asyncio.get_running_loop().time() + EVENT_WAIT
    while True:
        try:
            await get(PointRequest(user_id="late"), timeout=EVENT_WAIT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.CANCELLED:
                return exc
        assert asyncio.get_running_loop().time() < deadline, "new calls still accepted"


async def test_graceful_stop_finishes_running_calls_and_refuses_new_ones() -> None:
    grace = 30.0  # far longer than the stop may take once the call is done
    fake = Fake()
    server = await serve([fake], port=0)
    pool = ChannelPool(f"127.0.0.1:{server.port}", 1)
    get = pool.unary(GET, PointReply.parse)
    try:
        await get(PointRequest(user_id="warm"), timeout=EVENT_WAIT)
        running = asyncio.create_task(get(PointRequest(user_id="gated"), timeout=2 * grace))
        await asyncio.wait_for(fake.started.wait(), EVENT_WAIT)  # the call is in its handler
        stopping = asyncio.create_task(server.stop(grace=grace))
        refused = await refused_once_stopping(get)
        assert refused.code() is grpc.StatusCode.UNAVAILABLE
        assert not running.done(), "the running call must outlive the refusal"
        fake.release.set()
        released = asyncio.get_running_loop().time()
        assert (await running).user_point == str(len("gated"))  # finished within grace
        await asyncio.wait_for(stopping, grace)
        # stop() returned because the call was done, not because the grace ran out
        assert asyncio.get_running_loop().time() - released < grace - EVENT_WAIT
        assert not fake.cancelled.is_set()
    finally:
        fake.release.set()
        await pool.close()


async def test_stop_cancels_calls_after_the_grace_period() -> None:
    grace = 0.5
    fake = Fake()
    server = await serve([fake], port=0)
    pool = ChannelPool(f"127.0.0.1:{server.port}", 1)
    try:
        running = asyncio.create_task(
            pool.unary(GET, PointReply.parse)(PointRequest(user_id="gated"), timeout=30)
        )
        await asyncio.wait_for(fake.started.wait(), EVENT_WAIT)  # never released
        started = asyncio.get_running_loop().time()
        await server.stop(grace=grace)
        assert grace <= asyncio.get_running_loop().time() - started < grace + EVENT_WAIT
        with pytest.raises(grpc.aio.AioRpcError):
            await running
        await asyncio.wait_for(fake.cancelled.wait(), EVENT_WAIT)  # the handler was cancelled
    finally:
        await pool.close()


def test_points_client_upb_codec_matches_betterproto2() -> None:
    """The client's fast path for GetUserListPoints: the same bytes both ways."""
    ids = [str(uuid.uuid4()) for _ in range(100)]
    assert encode_user_ids(ids) == bytes(UserListRequest(user_ids=ids))
    assert UserListRequest.parse(encode_user_ids(ids)).user_ids == ids
    points = {u: n * 1000 - 3 for n, u in enumerate(ids)}
    assert decode_user_points(bytes(UserListPointResponse(user_points=points))) == points
    assert decode_user_points(b"") == {}
