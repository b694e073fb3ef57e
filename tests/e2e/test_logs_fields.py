"""Every field the Logstash pipeline reads, and every typed field the index template and the
Kibana objects use, is in a real log line: departments behind real NGINX (gateway_stack)
answers 200, 404 and (an upstream down) 503; their JSON logs are read back here. Tracing
is on (a real OTLP receiver): trace_id and span_id are fields of every service line."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests import elk_support as elk
from tests.e2e.gateway_stack import Stack, running_stack, wait_until
from tests.otlp_receiver import Receiver


@pytest.fixture(scope="module")
async def logs(
    migrated_db: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    tmp = tmp_path_factory.mktemp("logs")
    docs = tmp / "docs"
    docs.mkdir()
    receiver = await Receiver().start()
    traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    try:
        async with running_stack(tmp, migrated_db("departments"), docs, traced) as stack:
            yield await drive(stack)
    finally:
        await receiver.stop()


async def drive(stack: Stack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """-> (departments' request lines, NGINX's access lines) of the requests made here."""
    base = stack.gateway.url
    paths = {
        f"/api/departments/v1/departments/{stack.department_ids[0]}?x=1": 200,
        f"/api/departments/v1/departments/{uuid.uuid4()}": 404,
        "/api/users/v1/users": 503,  # users' upstream is down
    }
    ids = []
    async with aiohttp.ClientSession() as http:
        for path, status in paths.items():
            rid = f"logs-{uuid.uuid4().hex}"
            ids.append(rid)
            async with http.get(base + path, headers={"X-Request-ID": rid}) as resp:
                assert resp.status == status, await resp.text()

    def mine(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("request_id") in ids]

    async def written() -> bool:
        return len(mine(elk.json_lines(stack.gateway.access_log))) == 3 and (
            len(mine(elk.json_lines(stack.service.log))) == 2
        )

    await wait_until(written, "3 NGINX lines and 2 departments request lines")
    return mine(elk.json_lines(stack.service.log)), mine(elk.json_lines(stack.gateway.access_log))


def keys(lines: list[dict[str, Any]]) -> set[str]:
    return {key for line in lines for key in line}


async def test_every_field_the_pipeline_reads_is_in_real_lines(
    logs: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    service_lines, nginx_lines = logs
    assert elk.pipeline_reads("app") <= keys(service_lines), elk.pipeline_reads("app")
    assert elk.pipeline_reads("nginx") <= keys(nginx_lines), elk.pipeline_reads("nginx")
    # in every line, not only in one of them
    for line in service_lines:
        assert elk.pipeline_reads("app") <= set(line), line
    for line in nginx_lines:
        assert elk.pipeline_reads("nginx") <= set(line), line
    assert {line["status"] for line in nginx_lines} == {200, 404, 503}
    assert all(isinstance(line["status"], int) for line in service_lines + nginx_lines)
    assert all(isinstance(line["duration_ms"], float | int) for line in service_lines)
    assert all(isinstance(line["request_time"], float | int) for line in nginx_lines)


async def test_template_and_kibana_fields_come_from_those_lines(
    logs: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """Each typed field is copied from a field the real lines carry (in both sources)."""
    service_lines, nginx_lines = logs
    branches = elk.pipeline_branches()
    for source, lines in (("app", service_lines), ("nginx", nginx_lines)):
        copied = dict(
            (target, field)
            for field, target in re.findall(
                rf'"\[{source}\]\[(\w+)\]" => "(\w+)"', branches[source]
            )
        )
        for target, field in copied.items():
            assert all(field in line for line in lines), (source, target, field)
        produced = set(copied) | elk.written(branches[source])
        needed = (elk.typed_fields() | elk.kibana_fields()) - {
            "@timestamp",
            "message",
            "log_source",
        }
        if source == "nginx":
            needed -= {"event_name", "span_id"}  # NGINX exports no span
        assert needed <= produced, (source, needed - produced)
