"""Nothing told by an answer or its time (ASVS 5.0 V6.3.8; ADR 0055): login, registration,
password reset and resend-verification answer an existing and a missing account with the
same status, body and headers (less what differs on every answer: the request id, the
date, a new account's id and time, the address asked about), and in the same time.

Time: the tries come in adjacent pairs, existing then missing and missing then existing in
turn (a burst of load falls on both sides of a pair, and neither side always goes first);
the figure is the median of the pairs' differences, and it must stay under 5 ms times
FIXUP_TIME_SCALE.

`make test` runs TRIES_DEFAULT pairs per route with a cheap hash (about 30 s on a busy
2-core machine); FIXUP_ENUMERATION_TRIES=200 runs the issue's full figure at production's
hash cost (argon2id t=2, 32 MiB), where a missing account that skipped its hash would be
tens of milliseconds faster (docs/testing.md).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.users.app import create_app
from tests.integration.smtp_support import SmtpSink
from tests.integration.users_support import customer, mailing_settings, new_email
from tools.time_scale import scaled

TRIES_DEFAULT = 40  # pairs per route under make test; the median's noise ~ 1/sqrt(n)
FULL = os.environ.get("FIXUP_ENUMERATION_TRIES")  # the full figure: production's hash cost
TRIES = int(FULL or TRIES_DEFAULT)
# the full run hashes as production does (a skipped hash would show by tens of ms); the
# bounded one cheaply, so a loaded machine's noise on a 60 ms hash does not drown what it
# compares: the database work of each side (the decoy hash of a missing login is shown
# by tests/integration/test_users_auth.py's ratio test at production cost)
ARGON2 = {"argon2_time_cost": 2, "argon2_memory_cost": 32768} if FULL else {}
GAP = 0.005  # s: the bound on the median gap (ASVS V6.3.8), on a quiet machine
VARYING_HEADERS = {"x-request-id", "date", "location", "content-length"}
VARYING_FIELDS = {"id", "created_at"}  # a registration's own: new on every answer


@pytest.fixture
async def client(aiohttp_client: Any, migrated_db: Callable[[str], str], sink: SmtpSink) -> Any:
    settings = mailing_settings(
        migrated_db("users"),
        sink.port,
        **ARGON2,
        argon2_priority="nice",  # a share of a busy machine, as both sides get
    )
    return await aiohttp_client(create_app(settings))


class Answer:
    def __init__(
        self, address: str, status: int, body: Any, headers: dict[str, str], took: float
    ) -> None:
        self.address, self.status, self.body = address, status, body
        self.headers, self.took = headers, took

    def shape(self) -> tuple[int, Any, dict[str, str]]:
        """What must be equal on both sides (the address asked about, echoed, as "<asked>")."""
        body = self.body
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            data = {k: v for k, v in body["data"].items() if k not in VARYING_FIELDS}
            if data.get("email") == self.address:
                data["email"] = "<asked>"
            body = {**body, "data": data}
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "request_id"}
        headers = {k: v for k, v in self.headers.items() if k not in VARYING_HEADERS}
        return self.status, body, headers


Route = Callable[[str], Awaitable[Answer]]


def route(client: Any, path: str, body: Callable[[str], dict[str, Any]]) -> Route:
    async def call(address: str) -> Answer:
        start = time.perf_counter()
        resp = await client.post(path, json=body(address))
        raw = await resp.read()
        took = time.perf_counter() - start
        parsed = await resp.json(content_type=None) if raw else None
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return Answer(address, resp.status, parsed, headers, took)

    return call


async def measure(call: Route, existing: str) -> tuple[float, set[Any], set[Any]]:
    """The median gap (existing - missing, s) over TRIES pairs, and the shapes each side
    answered."""
    await call(new_email())  # the first missing account makes the decoy hash: not a sample
    gaps, shapes_existing, shapes_missing = [], set(), set()
    for i in range(TRIES):
        if i % 2 == 0:
            there, absent = await call(existing), await call(new_email())
        else:
            absent, there = await call(new_email()), await call(existing)
        gaps.append(there.took - absent.took)
        shapes_existing.add(repr(there.shape()))
        shapes_missing.add(repr(absent.shape()))
    return statistics.median(gaps), shapes_existing, shapes_missing


async def test_the_four_account_routes_tell_nothing_by_answer_or_time(client: Any) -> None:
    existing = new_email()
    resp = await client.post("/v1/auth/register", json=customer(existing))
    assert resp.status == 201, await resp.text()
    routes = {
        "login": route(
            client, "/v1/auth/login", lambda a: {"email": a, "password": "not the password"}
        ),
        "register": route(client, "/v1/auth/register", customer),
        "password-reset": route(client, "/v1/auth/password-reset", lambda a: {"email": a}),
        "resend-verification": route(
            client, "/v1/auth/resend-verification", lambda a: {"email": a}
        ),
    }
    gaps: dict[str, float] = {}
    for name, call in routes.items():
        gap, there, absent = await measure(call, existing)
        assert len(there) == 1, (name, there)  # one answer, whatever the try
        assert there == absent, (name, there, absent)
        gaps[name] = gap
    print(f"median gaps over {TRIES} pairs (ms):", {k: round(v * 1000, 2) for k, v in gaps.items()})
    assert all(abs(gap) < scaled(GAP) for gap in gaps.values()), gaps
