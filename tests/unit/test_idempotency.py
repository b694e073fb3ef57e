"""lib/http/idempotency without a server: the key's syntax, who the caller is, the request
digest, the replay, and the decorator's order of work against a recording fake store."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from unittest import mock

import pytest
from aiohttp import StreamReader, payload, web
from aiohttp.test_utils import make_mocked_request

from lib.auth.principal import Principal, Role
from lib.errors import Conflict, ValidationFailed
from lib.http.idempotency import (
    KEY,
    REPLAYED_HEADERS,
    answer_stored,
    caller_of,
    idempotency_key,
    idempotent,
    replay,
    request_digest,
)
from lib.http.keys import CLIENT_IP, DB, PRINCIPAL

# what `make test svc=` selects it for (tests/selection.py):
# lib/http only: /v1/orders is a path of the example app
EXERCISES = ()

USER = uuid.UUID("6f1c2f4e-1a2b-4c3d-8e9f-0123456789ab")


@dataclass
class Stored:
    request_hash: bytes
    status_code: int
    response_headers: Any
    response_body: bytes


@dataclass
class FakeQueries:
    """The generated idempotency module, recording every call in order."""

    rows: dict[tuple[str, str], Stored] = field(default_factory=dict)
    calls: list[tuple[str, Any, str, str]] = field(default_factory=list)

    async def lock_idempotency_key(self, conn: Any, *, caller: str, key: str) -> None:
        self.calls.append(("lock", conn, caller, key))

    async def get_idempotency_key(self, conn: Any, *, caller: str, key: str) -> Stored | None:
        self.calls.append(("get", conn, caller, key))
        return self.rows.get((caller, key))

    async def save_idempotency_key(
        self,
        conn: Any,
        *,
        caller: str,
        key: str,
        request_hash: bytes,
        status_code: int,
        response_headers: Any,
        response_body: bytes,
    ) -> None:
        self.calls.append(("save", conn, caller, key))
        self.rows[(caller, key)] = Stored(
            request_hash, status_code, response_headers, response_body
        )


class FakeDb:
    def __init__(self) -> None:
        self.opened: list[str] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[str]:
        self.opened.append("acquire")
        yield "short-conn"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[str]:
        self.opened.append("transaction")
        yield "tx-conn"


def request(
    *,
    key: str | None = None,
    body: bytes = b'{"a": 1}',
    method: str = "POST",
    path: str = "/v1/things",
    principal: Principal | None = None,
    client_ip: str = "203.0.113.7",
    db: FakeDb | None = None,
) -> web.Request:
    app = web.Application()
    app[DB] = cast(Any, db or FakeDb())
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    # the body whole in a real stream, as aiohttp's parser leaves it, so request.read()
    # answers it (inside the event loop; the protocol is a stand-in: a stream fed whole
    # never pauses reading)
    stream = StreamReader(mock.Mock(), 2**16, loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    req = make_mocked_request(method, path, headers=headers, app=app, payload=stream)
    req[CLIENT_IP] = client_ip
    req[PRINCIPAL] = principal
    return req


def principal(role: Role = Role.CUSTOMER) -> Principal:
    return Principal(USER, role, True, "jti", datetime(2030, 1, 1, tzinfo=UTC))


def digest_of(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(f"{method} {path}\n".encode() + body).digest()


# --- the key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["a", "!", "~", "x" * 255, "order-7f/\\:;@"],
    ids=["a", "bang", "tilde", "255", "punctuation"],
)
async def test_visible_ascii_keys_of_1_to_255_are_accepted(key: str) -> None:
    assert idempotency_key(request(key=key)) == key


@pytest.mark.parametrize(
    "key",
    ["", " ", "a b", "x" * 256, "é", "tab\there", "\x7f", "a\x20"],
    ids=["empty", "space", "inner-space", "256", "non-ascii", "tab", "del", "trailing-space"],
)
async def test_other_keys_are_400_naming_the_header(key: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        idempotency_key(request(key=key))
    assert caught.value.detail == "invalid Idempotency-Key"
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("Idempotency-Key", "1..255 visible ASCII characters")
    ]


async def test_no_key_is_none() -> None:
    assert idempotency_key(request()) is None


def test_the_key_pattern_is_anchored_at_both_ends() -> None:
    assert KEY.match("ok") is not None
    assert KEY.match("ok ") is None
    assert KEY.match(" ok") is None


# --- caller and digest ---------------------------------------------------------------------


async def test_caller_is_the_user_when_authenticated() -> None:
    assert caller_of(request(principal=principal())) == f"user:{USER}"


async def test_caller_is_the_client_ip_otherwise() -> None:
    assert caller_of(request(client_ip="198.51.100.9")) == "ip:198.51.100.9"


async def test_digest_covers_method_path_and_body() -> None:
    body = b'{"name": "x"}'
    got = await request_digest(request(body=body, path="/v1/orders"))
    assert got == digest_of("POST", "/v1/orders", body)
    assert got != await request_digest(request(body=body, path="/v1/other"))
    assert got != await request_digest(request(body=b'{"name": "y"}', path="/v1/orders"))
    assert got != await request_digest(request(body=body, path="/v1/orders", method="PUT"))


# --- replay --------------------------------------------------------------------------------


def test_replay_answers_the_stored_response_marked_replayed() -> None:
    stored = Stored(b"h", 201, {"Location": "/v1/things/1", "ETag": '"1"'}, b'{"id": 1}')
    response = replay(stored)
    assert response.status == 201
    assert response.body == b'{"id": 1}'
    assert response.headers["Location"] == "/v1/things/1"
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in stored.response_headers  # not written back


def test_replay_of_a_row_without_headers() -> None:
    response = replay(Stored(b"h", 200, None, b"{}"))
    assert response.status == 200
    assert response.headers["Idempotent-Replayed"] == "true"


def test_answer_stored_none_is_none() -> None:
    assert answer_stored(None, b"digest") is None


def test_answer_stored_same_request_replays() -> None:
    answer = answer_stored(Stored(b"digest", 201, {}, b"{}"), b"digest")
    assert answer is not None
    assert answer.status == 201
    assert answer.headers["Idempotent-Replayed"] == "true"


def test_answer_stored_other_request_is_409() -> None:
    with pytest.raises(Conflict) as caught:
        answer_stored(Stored(b"digest", 201, {}, b"{}"), b"other")
    assert caught.value.detail == "this Idempotency-Key was used for a different request"


# --- the decorator -------------------------------------------------------------------------


def handler_answering(
    status: int, body: bytes = b'{"id": 1}', headers: dict[str, str] | None = None
) -> tuple[list[web.Request], Any]:
    seen: list[web.Request] = []

    async def handler(req: web.Request) -> web.Response:
        """The handler's docstring."""
        seen.append(req)
        return web.Response(status=status, body=body, headers=headers or {})

    return seen, handler


async def test_without_a_key_the_handler_runs_alone() -> None:
    queries, db = FakeQueries(), FakeDb()
    seen, handler = handler_answering(201)
    sent = request(db=db)
    response = await idempotent(queries)(handler)(sent)
    assert response.status == 201
    assert seen == [sent]  # the request itself reaches the handler
    assert queries.calls == []
    assert db.opened == []


async def test_first_request_locks_reads_runs_and_saves_in_one_transaction() -> None:
    queries, db = FakeQueries(), FakeDb()
    body = b'{"name": "x"}'
    headers = {
        "Content-Type": "application/json",
        "Location": "/v1/things/1",
        "ETag": '"1"',
        "X-Other": "dropped",
    }
    seen, handler = handler_answering(201, b'{"id": 1}', headers)
    wrapped = idempotent(queries)(handler)
    assert wrapped.__name__ == "handler"
    assert wrapped.__doc__ == "The handler's docstring."
    sent = request(key="k1", body=body, principal=principal(), db=db)
    response = await wrapped(sent)
    assert response.status == 201
    assert seen == [sent]
    assert db.opened == ["acquire", "transaction"]
    caller = f"user:{USER}"
    assert queries.calls == [
        ("get", "short-conn", caller, "k1"),  # a finished one? (none)
        ("lock", "tx-conn", caller, "k1"),
        ("get", "tx-conn", caller, "k1"),
        ("save", "tx-conn", caller, "k1"),
    ]
    saved = queries.rows[(caller, "k1")]
    assert saved.request_hash == digest_of("POST", "/v1/things", body)
    assert saved.status_code == 201
    assert saved.response_body == b'{"id": 1}'
    assert saved.response_headers == {
        "Content-Type": "application/json",
        "ETag": '"1"',
        "Location": "/v1/things/1",
    }
    assert set(saved.response_headers) <= set(REPLAYED_HEADERS)


async def test_a_duplicate_replays_without_running_the_handler() -> None:
    queries = FakeQueries()
    seen, handler = handler_answering(201, b'{"id": 1}', {"Location": "/v1/things/1"})
    wrapped = idempotent(queries)(handler)
    first = await wrapped(request(key="k1"))
    second = await wrapped(request(key="k1"))
    assert len(seen) == 1
    assert second.status == first.status == 201
    assert second.body == b'{"id": 1}'
    assert second.headers["Location"] == "/v1/things/1"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [c[0] for c in queries.calls] == ["get", "lock", "get", "save", "get"]


async def test_a_finished_request_is_replayed_on_a_short_connection_without_the_lock() -> None:
    """So a replay never reaches the handler's calls to other services, nor holds a lock."""
    queries, db = FakeQueries(), FakeDb()
    body = b'{"a": 1}'
    queries.rows[("ip:203.0.113.7", "k1")] = Stored(
        digest_of("POST", "/v1/things", body), 201, {"Location": "/v1/things/9"}, b"{}"
    )
    seen, handler = handler_answering(201)
    answer = await idempotent(queries)(handler)(request(key="k1", body=body, db=db))
    assert answer.status == 201
    assert answer.headers["Location"] == "/v1/things/9"
    assert seen == []
    assert db.opened == ["acquire"]
    assert queries.calls == [("get", "short-conn", "ip:203.0.113.7", "k1")]


class FinishedWhileWaiting(FakeQueries):
    """The first request commits while this one waits on the lock."""

    async def lock_idempotency_key(self, conn: Any, *, caller: str, key: str) -> None:
        self.rows[(caller, key)] = Stored(
            digest_of("POST", "/v1/things", b'{"a": 1}'), 201, {}, b"{}"
        )
        await super().lock_idempotency_key(conn, caller=caller, key=key)


async def test_a_duplicate_in_flight_waits_on_the_lock_then_replays() -> None:
    queries = FinishedWhileWaiting()
    seen, handler = handler_answering(201)
    answer = await idempotent(queries)(handler)(request(key="k1"))
    assert answer.headers["Idempotent-Replayed"] == "true"
    assert seen == []
    assert [c[0] for c in queries.calls] == ["get", "lock", "get"]


async def test_the_same_key_with_another_body_is_409() -> None:
    queries = FakeQueries()
    seen, handler = handler_answering(201)
    wrapped = idempotent(queries)(handler)
    await wrapped(request(key="k1", body=b'{"a": 1}'))
    with pytest.raises(Conflict):
        await wrapped(request(key="k1", body=b'{"a": 2}'))
    assert len(seen) == 1


async def test_the_same_key_from_another_caller_is_a_new_request() -> None:
    queries = FakeQueries()
    seen, handler = handler_answering(201)
    wrapped = idempotent(queries)(handler)
    await wrapped(request(key="k1", client_ip="198.51.100.1"))
    await wrapped(request(key="k1", client_ip="198.51.100.2"))
    assert len(seen) == 2


@pytest.mark.parametrize("status", [199, 300, 400, 409, 500])
async def test_non_2xx_answers_are_not_saved(status: int) -> None:
    queries = FakeQueries()
    seen, handler = handler_answering(status)
    wrapped = idempotent(queries)(handler)
    assert (await wrapped(request(key="k1"))).status == status
    assert (await wrapped(request(key="k1"))).status == status
    assert len(seen) == 2
    assert queries.rows == {}


@pytest.mark.parametrize("status", [200, 201, 299])
async def test_2xx_answers_are_saved(status: int) -> None:
    queries = FakeQueries()
    _, handler = handler_answering(status)
    await idempotent(queries)(handler)(request(key="k1"))
    assert queries.rows[("ip:203.0.113.7", "k1")].status_code == status


async def test_a_streamed_body_is_not_saved() -> None:
    queries = FakeQueries()

    async def handler(req: web.Request) -> web.Response:
        response = web.Response(status=201)
        response.body = cast(Any, payload.StringPayload("streamed"))  # a payload, not bytes
        return response

    await idempotent(queries)(handler)(request(key="k1"))
    assert queries.rows == {}
