"""One trace crosses NGINX -> users -> points (real processes, a real OTLP/gRPC receiver):
one trace id, the parent/child links right, the query spans named by sqlc, no parameter
value in any attribute, and the same trace id in NGINX's access log and in every log line
of each service for that request."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner
from tests.e2e.gateway_stack import Gateway, users_and_points_behind_nginx, wait_until
from tests.integration.auth_support import KEYS
from tests.otlp_receiver import Receiver, Span
from tools.local.service_process import ServiceProcess

SERVER, CLIENT = 2, 3  # OTLP span kinds
LIST_POINTS = "point.PointServer/GetUserListPoints"
ALLOWED_ATTRIBUTES = {
    "http.response.status_code",
    "db.system.name",
    "rpc.system",
    "error.type",
}


@pytest.fixture(scope="module")
async def chain(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Gateway, ServiceProcess, ServiceProcess, Receiver]]:
    tmp = tmp_path_factory.mktemp("trace")
    users_dsn, points_dsn = migrated_db("users"), migrated_db("points")
    receiver = await Receiver().start()
    tracing_on = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: the spans arrive quickly
    }
    try:
        async with users_and_points_behind_nginx(users_dsn, points_dsn, tmp, tracing_on) as stack:
            yield (*stack, receiver)
    finally:
        await receiver.stop()


def lines_with(path: Path, request_id: str) -> list[dict[str, Any]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(x) for x in text.splitlines() if request_id in x and x.startswith("{")]


async def list_users(gateway: Gateway, rid: str, **extra: str) -> None:
    token = TokenSigner(KEYS[0], 600).issue(uuid.uuid4(), Role.MODERATOR, True)[0]
    headers = {"X-Request-ID": rid, "Authorization": f"Bearer {token}", **extra}
    url = f"{gateway.url}/api/users/v1/users?role=CUSTOMER"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert {u["last_name"]: u["points"] for u in body["data"]}["Costanza"] == 93


def one(spans: list[Span], service: str, name: str) -> Span:
    found = [s for s in spans if (s.service, s.name) == (service, name)]
    assert len(found) == 1, (service, name, [(s.service, s.name) for s in spans])
    return found[0]


def complete(trace_id: str) -> Callable[[Receiver], bool]:
    def check(receiver: Receiver) -> bool:
        names = {(s.service, s.name) for s in receiver.in_trace(trace_id)}
        return {
            ("users", "GET /v1/users"),
            ("points", LIST_POINTS),
            ("points", "GetUserListPoints"),
        } <= names

    return check


async def test_one_trace_from_nginx_through_users_to_points(
    chain: tuple[Gateway, ServiceProcess, ServiceProcess, Receiver],
) -> None:
    gateway, users, points, receiver = chain
    rid = f"trace-{uuid.uuid4().hex}"
    await list_users(gateway, rid)

    async def logged() -> bool:
        return all(lines_with(p, rid) for p in (gateway.access_log, users.log, points.log))

    await wait_until(logged, f"{rid} in the NGINX, users and points logs")
    (edge,) = lines_with(gateway.access_log, rid)
    trace_id = edge["trace_id"]
    assert len(trace_id) == 32, edge  # NGINX made it: its $request_id
    assert int(trace_id, 16), edge
    await receiver.wait_for(complete(trace_id), f"the spans of trace {trace_id}")
    spans = receiver.in_trace(trace_id)

    # users' server span is the trace's root: NGINX's traceparent names no exported span
    root = one(spans, "users", "GET /v1/users")
    assert (root.kind, root.parent_id) == (SERVER, ""), root
    assert root.attributes["http.response.status_code"] == 200
    # users' queries and its gRPC call are children of the server span
    user_queries = [s for s in spans if s.service == "users" and s.attributes.get("db.system.name")]
    assert user_queries, spans
    for query in user_queries:
        assert (query.kind, query.parent_id) == (CLIENT, root.span_id), query
        assert query.name.isidentifier(), query.name  # sqlc's name, not SQL text
        assert query.name[0].isupper(), query.name
    call = one(spans, "users", LIST_POINTS)
    assert (call.kind, call.parent_id) == (CLIENT, root.span_id), call
    # points continues the trace under the call; its query is named by sqlc
    served = one(spans, "points", LIST_POINTS)
    assert (served.kind, served.parent_id) == (SERVER, call.span_id), served
    query = one(spans, "points", "GetUserListPoints")
    assert (query.kind, query.parent_id) == (CLIENT, served.span_id), query
    assert query.attributes == {"db.system.name": "mysql"}
    # never a parameter value: only the known attribute keys, no value from the request
    for span in spans:
        assert set(span.attributes) <= ALLOWED_ATTRIBUTES, span
        assert not any(
            "Costanza" in str(v) or "CUSTOMER" in str(v) for v in span.attributes.values()
        )

    # the same trace id in every service line of the request, with the span that wrote it
    ids = {s.span_id for s in spans}
    for path in (users.log, points.log):
        lines = lines_with(path, rid)
        assert lines, path
        for line in lines:
            assert line.get("trace_id") == trace_id, line
            assert line.get("span_id") in ids, line
    (access,) = [x for x in lines_with(users.log, rid) if x.get("event") == "request"]
    assert access["span_id"] == root.span_id
    (grpc_line,) = [x for x in lines_with(points.log, rid) if x.get("event") == "grpc"]
    assert grpc_line["span_id"] == served.span_id


async def test_a_callers_traceparent_is_continued(
    chain: tuple[Gateway, ServiceProcess, ServiceProcess, Receiver],
) -> None:
    gateway, _, _, receiver = chain
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    rid = f"trace-{uuid.uuid4().hex}"
    await list_users(gateway, rid, traceparent=f"00-{trace_id}-{parent}-01")
    await receiver.wait_for(complete(trace_id), f"the spans of trace {trace_id}")
    root = one(receiver.in_trace(trace_id), "users", "GET /v1/users")
    assert root.parent_id == parent  # the caller's span is the parent
    await wait_until(
        lambda: _has(gateway.access_log, rid, trace_id), "the caller's trace id in NGINX's log"
    )


async def _has(path: Path, rid: str, trace_id: str) -> bool:
    return any(line.get("trace_id") == trace_id for line in lines_with(path, rid))
