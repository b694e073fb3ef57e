"""Query spans on both engines (real PostgreSQL and MariaDB): inside a sampled span the
pool lends a traced connection whose generated queries are spans named by sqlc, children
of the current span, with no parameter in them; other statements are not spans; nested
transactions still use savepoints on the driver's connection; outside a span, or with
tracing off, the driver's own connection is lent."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from lib import tracing
from lib.db.connecting import connect
from lib.db.scope import enter_scope, exit_scope
from lib.db.traced import TracedMyConnection, TracedPgConnection
from services.departments.db import departments as dq
from services.points.db import points as pq
from tests.integration.tracing_support import receiver  # noqa: F401  (the fixture)
from tests.otlp_receiver import Receiver


class Boom(Exception):
    pass


async def test_query_spans_on_postgresql_and_mariadb(
    receiver: Receiver,  # noqa: F811  (the fixture)
    migrated_db: Callable[[str], str],
) -> None:
    pg = await connect(migrated_db("departments"), min_size=1, max_size=2)
    my = await connect(migrated_db("points"), min_size=1, max_size=2)
    user = str(uuid.uuid4())

    async def rolled_back_savepoint() -> None:
        async with my.transaction() as inner:
            await pq.upsert_user_points(inner, user_id=user, points=99)
            raise Boom

    try:
        async with pg.acquire() as conn:  # no span: the driver's connection
            assert not isinstance(conn, TracedPgConnection)
        span, token = tracing.start_server_span("GET /probe", None)
        scope = enter_scope()  # a request's: nested use lends the same connection
        try:
            async with pg.acquire() as conn:
                assert isinstance(conn, TracedPgConnection)
                assert await dq.count_departments(conn) == 0
                await conn.fetchval("SELECT 1")  # not generated: no span
            async with my.transaction() as conn:
                assert isinstance(conn, TracedMyConnection)
                await pq.upsert_user_points(conn, user_id=user, points=5)
                with pytest.raises(Boom):  # a savepoint, rolled back alone
                    await rolled_back_savepoint()
                assert await pq.get_user_points(conn, user_id=user) == 5
            async with my.acquire() as conn, conn.cursor() as cur:
                await cur.execute("SELECT 1")  # not generated: no span
            async with my.acquire() as conn:
                assert await pq.get_user_points(conn, user_id=user) == 5
        finally:
            exit_scope(scope)
            tracing.end_span(span, token)
        trace_id = f"{span.get_span_context().trace_id:032x}"
        parent = f"{span.get_span_context().span_id:016x}"

        def arrived(r: Receiver) -> bool:
            return any(s.name == "GET /probe" for s in r.in_trace(trace_id))

        await receiver.wait_for(arrived, "the probe's spans")
        spans = [s for s in receiver.in_trace(trace_id) if s.name != "GET /probe"]
        assert sorted(s.name for s in spans) == sorted(
            ["CountDepartments", "UpsertUserPoints", "UpsertUserPoints", "GetUserPoints",
             "GetUserPoints"]
        )  # fmt: skip
        assert {s.parent_id for s in spans} == {parent}
        systems = {s.name: s.attributes["db.system.name"] for s in spans}
        assert systems == {
            "CountDepartments": "postgresql",
            "UpsertUserPoints": "mysql",
            "GetUserPoints": "mysql",
        }
        for s in spans:
            assert set(s.attributes) == {"db.system.name"}
            assert user not in str(s.attributes)
    finally:
        await pg.close()
        await my.close()
