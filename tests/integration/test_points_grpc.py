"""The points service through a real grpc.aio server on loopback, on real MariaDB."""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_tools import protoc
from prometheus_client import REGISTRY

from lib.pb.point import PointRequest
from tests.e2e.gateway_stack import wait_until
from tests.integration.points_support import GET, Points, log_lines, new_id

ROOT = Path(__file__).resolve().parents[2]


async def code_of(awaitable: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value.code(), info.value.details()


# ------------------------------------------------------------------ reads


async def test_get_user_list_points_100_ids(points: Points) -> None:
    known = {new_id(): n * 7 for n in range(60)}  # 0 included: a stored zero balance
    await points.seed(known)
    unknown = [new_id() for _ in range(40)]
    asked = [*known, *unknown]
    reply = await points.list(asked)
    assert reply.user_points == {**known, **dict.fromkeys(unknown, 0)}
    assert len(reply.user_points) == 100


@pytest.mark.parametrize(
    "bad", ["nope", "00000000-0000-0000-0000-000000000000\n"]
)  # every shape refused, each with its detail: test_points_rules.py
async def test_malformed_ids_invalid_argument(points: Points, bad: str) -> None:
    code, detail = await code_of(points.get(bad))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "user_id" in detail
    assert repr(bad) in detail
    code, detail = await code_of(points.list([new_id(), bad]))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "user_ids[1]" in detail
    assert repr(bad) in detail
    code, _ = await code_of(points.add(bad, 1))
    assert code is grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------------------------ AddUserPoints


@pytest.mark.parametrize(
    ("delta", "reason", "key", "field"),
    [
        (0, "job", "k", "delta"),
        (1, "r" * 201, "k", "reason"),
        (1, "job", "has space", "idempotency_key"),
    ],
)  # one a field over the wire; every refusal with its detail: test_points_rules.py
async def test_add_validation(
    points: Points, delta: int, reason: str, key: str, field: str
) -> None:
    user = new_id()
    code, detail = await code_of(points.add(user, delta, reason, key))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert detail.startswith(field)
    assert await points.balance(user) is None


async def test_add_limits_accepted(points: Points) -> None:
    user = new_id()
    assert (await points.add(user, 3, "r" * 200, "k" * 128)).user_point == "3"


async def test_keys_are_case_sensitive(points: Points) -> None:
    user, key = new_id(), f"Job:{uuid.uuid4().hex}"
    await points.add(user, 1, "job", key)
    assert (await points.add(user, 2, "job", key.lower())).user_point == "3"


@pytest.mark.parametrize("balance", [5, None], ids=["known", "new-user"])
async def test_concurrent_identical_adds_apply_once(points: Points, balance: int | None) -> None:
    """20 at once, one key; for a new user (no balance row yet) 20 first inserts of one row."""
    user, key = new_id(), uuid.uuid4().hex
    if balance is not None:
        await points.seed({user: balance})
    replies = await asyncio.gather(*(points.add(user, 10, "job done", key) for _ in range(20)))
    total = (balance or 0) + 10
    assert {r.user_point for r in replies} == {str(total)}
    assert await points.balance(user) == total
    assert await points.ledger_rows(user) == 1


async def test_concurrent_distinct_adds_all_apply(points: Points) -> None:
    user = new_id()
    replies = await asyncio.gather(*(points.add(user, 1 + n) for n in range(20)))
    assert await points.balance(user) == sum(range(1, 21))
    # serialised by the row lock: every reply is a distinct running balance, the last the sum
    balances = sorted(int(r.user_point) for r in replies)
    assert len(set(balances)) == 20
    assert balances[-1] == 210


async def test_concurrent_same_key_different_users(points: Points) -> None:
    """Different balance rows, so no shared lock: the ledger's unique key decides."""
    users, key = [new_id() for _ in range(10)], uuid.uuid4().hex
    results = await asyncio.gather(
        *(points.add(u, 3, "job", key) for u in users), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1
    assert ok[0].user_point == "3"
    assert len(failed) == 9
    assert {e.code() for e in failed} == {grpc.StatusCode.ALREADY_EXISTS}
    assert sorted([await points.balance(u) or 0 for u in users]) == [0] * 9 + [3]


async def test_balance_below_zero_failed_precondition(points: Points) -> None:
    user, key = new_id(), uuid.uuid4().hex
    await points.seed({user: 5})
    code, detail = await code_of(points.add(user, -6, "refund", key))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "insufficient" in detail
    assert await points.balance(user) == 5
    assert await points.ledger_rows(user) == 0
    assert (await points.add(user, -5, "refund", key)).user_point == "0"  # key not burnt


async def test_balance_overflow_out_of_range(points: Points) -> None:
    user = new_id()
    await points.seed({user: 2**31 - 10})
    code, _ = await code_of(points.add(user, 10))
    assert code is grpc.StatusCode.OUT_OF_RANGE


# ------------------------------------------------------------------ request id, logs, metrics


async def test_request_id_echoed_and_logged(points: Points, points_log: Path) -> None:
    user = new_id()
    rpc = points.pool.channel().unary_unary(GET, request_serializer=bytes)
    response = rpc(PointRequest(user_id=user), metadata=(("x-request-id", "req-123.a:b"),))
    await response
    assert ("x-request-id", "req-123.a:b") in tuple(await response.trailing_metadata())
    await points.add(user, 2, metadata=(("x-request-id", "add-42"),))

    bad = rpc(PointRequest(user_id=user), metadata=(("x-request-id", "no spaces allowed"),))
    await bad
    replaced = dict(await bad.trailing_metadata())["x-request-id"]
    assert replaced != "no spaces allowed"
    assert uuid.UUID(replaced)

    lines = log_lines(points_log)
    access = [line for line in lines if line["event"] == "grpc"]
    first = next(line for line in access if line["request_id"] == "req-123.a:b")
    assert first["method"] == GET
    assert first["code"] == "OK"
    assert first["service"] == "points"
    assert first["duration_ms"] >= 0
    added = next(line for line in lines if line["event"] == "points_added")
    assert added["request_id"] == "add-42"
    assert added["balance"] == 2
    assert any(line["request_id"] == replaced for line in access)


def handled(method: str, code: str) -> float:
    labels = {"method": method, "code": code}
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def test_metrics_count_calls_by_method_and_code(points: Points) -> None:
    ok, bad = handled(GET, "OK"), handled(GET, "INVALID_ARGUMENT")
    count = REGISTRY.get_sample_value("grpc_server_handling_seconds_count", {"method": GET}) or 0
    await points.get(new_id())
    await points.get(new_id())
    await code_of(points.get("bad"))

    async def recorded() -> bool:  # the client may see a status before the server counts it
        total = REGISTRY.get_sample_value("grpc_server_handling_seconds_count", {"method": GET})
        return total == count + 3

    await wait_until(recorded, "the server's interceptor recorded the three calls", 5.0)
    assert handled(GET, "OK") == ok + 2
    assert handled(GET, "INVALID_ARGUMENT") == bad + 1


# ------------------------------------------------------------------ health, reflection


async def test_health_serving(points: Points) -> None:
    stub = health_pb2_grpc.HealthStub(points.pool.channel())
    for service in ("", "point.PointServer"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    code, _ = await code_of(stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5))
    assert code is grpc.StatusCode.NOT_FOUND


async def reflect(points: Points, request: reflection_pb2.ServerReflectionRequest) -> Any:
    stub = reflection_pb2_grpc.ServerReflectionStub(points.pool.channel())
    replies = [reply async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5)]
    assert len(replies) == 1
    return replies[0]


async def test_reflection_lists_and_describes_the_service(points: Points) -> None:
    listed = await reflect(points, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert {"point.PointServer", "grpc.health.v1.Health"} <= names

    described = await reflect(
        points, reflection_pb2.ServerReflectionRequest(file_containing_symbol="point.PointServer")
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    point = next(f for f in files if f.package == "point")
    (service,) = point.service
    assert {m.name for m in service.method} == {
        "GetUserPoints",
        "GetUserListPoints",
        "AddUserPoints",
        "GetUserExport",
        "GetPointsVersion",
    }


# ------------------------------------------------------------------ wire compatibility


@pytest.fixture(scope="module")
def classic_stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """point_pb2 / point_pb2_grpc compiled by plain grpcio-tools from the same .proto."""
    out = tmp_path_factory.mktemp("classic")
    include = str(Path(protoc.__file__).parent / "_proto")
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "point/v1/point.proto",
        ]
    )
    assert status == 0
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("point.v1.point_pb2")
        pb2_grpc = importlib.import_module("point.v1.point_pb2_grpc")
        yield pb2, pb2_grpc
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == "point" or n.startswith("point.")]:
            del sys.modules[name]


async def test_classic_grpcio_client_calls_the_server(
    points: Points, classic_stubs: tuple[Any, Any]
) -> None:
    pb2, pb2_grpc = classic_stubs
    user, other = new_id(), new_id()
    async with grpc.aio.insecure_channel(points.target) as channel:
        stub = pb2_grpc.PointServerStub(channel)
        added = await stub.AddUserPoints(
            pb2.AddPointsRequest(user_id=user, delta=12, reason="job", idempotency_key="c1")
        )
        assert added.user_point == "12"
        taken = await stub.AddUserPoints(
            pb2.AddPointsRequest(user_id=user, delta=-2, reason="fix", idempotency_key="c2")
        )
        assert taken.user_point == "10"  # a negative int32 on the wire
        got = await stub.GetUserPoints(pb2.PointRequest(user_id=user))
        assert got.user_point == "10"
        listed = await stub.GetUserListPoints(pb2.UserListRequest(user_ids=[user, other]))
        assert dict(listed.user_points) == {user: 10, other: 0}
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetUserPoints(pb2.PointRequest(user_id="bad"))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
