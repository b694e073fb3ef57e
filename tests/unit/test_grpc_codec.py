"""lib.grpc.codec: upb and betterproto2 give the same bytes and the same objects."""

from __future__ import annotations

import uuid

import pytest

from lib.grpc.codec import codec
from lib.pb.point import (
    AddPointsRequest,
    PointReply,
    PointRequest,
    UserListPointResponse,
    UserListRequest,
)

IDS = [str(uuid.uuid4()) for _ in range(50)]
MESSAGES = [
    PointRequest(user_id=IDS[0]),
    PointReply(user_point="123"),
    UserListRequest(user_ids=IDS),
    UserListRequest(user_ids=[]),
    UserListPointResponse(user_points={i: n - 25 for n, i in enumerate(IDS)}),
    UserListPointResponse(user_points={}),
    AddPointsRequest(user_id=IDS[1], delta=-7, reason="job ✓", idempotency_key="job:1"),
    AddPointsRequest(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_upb_codec_matches_betterproto2(message: object) -> None:
    parse, serialize = codec(type(message))
    assert parse is not type(message).parse, "a flat message goes through upb"  # type: ignore[attr-defined]
    data = serialize(message)
    # the same message either way: betterproto2 parses upb's bytes and vice versa
    assert type(message).parse(data) == message  # type: ignore[attr-defined]
    assert parse(bytes(message)) == message  # type: ignore[call-overload]
    assert parse(data) == message


def test_wire_bytes_are_identical_where_order_is_defined() -> None:
    """Map entry order is unspecified in protobuf: one entry, repeated and scalar fields are
    byte-identical; many entries are equal once parsed (the test above)."""
    for message in (
        UserListPointResponse(user_points={"a": 1}),
        UserListRequest(user_ids=IDS),
        AddPointsRequest(user_id="u", delta=3, reason="r", idempotency_key="k"),
    ):
        _, serialize = codec(type(message))
        assert serialize(message) == bytes(message)


def test_messages_that_are_not_flat_keep_betterproto2() -> None:
    from google.protobuf import descriptor_pb2

    from lib.grpc.codec import _flat_fields

    # nested messages, enums, oneofs: not field-by-field interchangeable
    assert _flat_fields(descriptor_pb2.FileDescriptorSet.DESCRIPTOR) is None
    assert _flat_fields(descriptor_pb2.FieldDescriptorProto.DESCRIPTOR) is None

    class NoDescriptor:
        @classmethod
        def parse(cls, data: bytes) -> NoDescriptor:
            return cls()

    parse, serialize = codec(NoDescriptor)
    assert parse == NoDescriptor.parse
    assert serialize is bytes
