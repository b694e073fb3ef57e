"""gRPC spans with tracing on (a real points server and a real OTLP receiver): the client
span of a call and the server span that continues it; a call the server refuses marks both
failed with the gRPC status name."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from lib import tracing
from tests.integration.points_support import new_id, running_points
from tests.integration.tracing_support import receiver  # noqa: F401  (the fixture)
from tests.otlp_receiver import Receiver

STATUS_ERROR = 2  # opentelemetry-proto's STATUS_CODE_ERROR
METHOD = "point.PointServer/GetUserPoints"


async def test_a_refused_call_fails_the_client_and_the_server_span(
    receiver: Receiver,  # noqa: F811  (the fixture)
    migrated_db: Callable[[str], str],
) -> None:
    async with running_points(migrated_db("points")) as points:
        span, token = tracing.start_server_span("GET /probe", None)
        try:
            assert (await points.get(new_id())).user_point == "0"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await points.get("not-a-uuid")
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        finally:
            tracing.end_span(span, token)
    trace_id = f"{span.get_span_context().trace_id:032x}"

    def arrived(r: Receiver) -> bool:
        names = [s.name for s in r.in_trace(trace_id)]
        return "GET /probe" in names and names.count(METHOD) == 4  # 2 client + 2 server

    await receiver.wait_for(arrived, "the probe's gRPC spans")
    spans = receiver.in_trace(trace_id)
    probe = next(s for s in spans if s.name == "GET /probe")
    clients = [s for s in spans if s.name == METHOD and s.parent_id == probe.span_id]
    assert len(clients) == 2
    by_parent = {s.parent_id: s for s in spans if s.name == METHOD and s not in clients}
    assert set(by_parent) == {c.span_id for c in clients}  # each server span continues one
    for client in clients:
        server = by_parent[client.span_id]
        assert server.attributes["rpc.system"] == "grpc"
        assert client.status_code == server.status_code
    failed = [c for c in clients if c.status_code == STATUS_ERROR]
    assert len(failed) == 1
    assert failed[0].attributes["error.type"] == "INVALID_ARGUMENT"
    assert by_parent[failed[0].span_id].attributes["error.type"] == "INVALID_ARGUMENT"
    assert "not-a-uuid" not in str([s.attributes for s in spans])
