"""services/chat/messages without a server: the opaque cursor (both ways, and every string
we did not issue refused), the message's JSON and WebSocket shapes, and store()'s use of
the numbering row against a recording fake of the generated queries."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from lib.errors import ValidationFailed
from services.chat import messages
from services.chat.db import chat as q
from services.chat.db import models
from services.chat.messages import MAX_SEQ, cursor_of, frame_of, message_json, seq_of, store

CONVERSATION = uuid.UUID("11111111-2222-4333-8444-555555555555")
AUTHOR = uuid.UUID("66666666-7777-4888-9999-aaaaaaaaaaaa")
AT = datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=UTC)


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("seq", "cursor"), [(0, "djE6MA"), (1, "djE6MQ"), (42, "djE6NDI"), (1234, "djE6MTIzNA")]
)
def test_cursor_is_unpadded_base64url_of_v1_seq(seq: int, cursor: str) -> None:
    assert cursor_of(seq) == cursor
    assert seq_of(cursor, "after") == seq


@pytest.mark.parametrize("seq", [0, 7, 10**9, MAX_SEQ])
def test_cursor_round_trips(seq: int) -> None:
    assert seq_of(cursor_of(seq), "before") == seq


def test_the_largest_cursor_fits_the_length_limit() -> None:
    assert len(cursor_of(MAX_SEQ)) <= 40
    assert MAX_SEQ == 9223372036854775807


@pytest.mark.parametrize(
    "cursor",
    [
        "",  # empty
        "x" * 41,  # too long
        "djE6M",  # not base64 of anything whole
        "!!!!",  # not base64url
        b64("v1:"),  # no number
        b64("v2:5"),  # another version
        b64("v1:05"),  # a leading zero: not the form we issue
        b64("v1:-1"),
        b64("v1:5 "),
        b64(" v1:5"),
        b64("v1:5\n"),
        b64("v1:9223372036854775808"),  # MAX_SEQ + 1
        b64("v1:99999999999999999999"),  # more than 19 digits
        b64("v1:5") + "=",  # padded: we never pad
        base64.urlsafe_b64encode("v1:é".encode()).decode(),  # not ASCII
        "djE6NDI=",  # padding
    ],
)
def test_anything_we_did_not_issue_is_400_naming_the_field(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        seq_of(cursor, "after")
    assert caught.value.detail == "invalid cursor"
    assert [(e.field, e.message) for e in caught.value.errors] == [("after", "not a cursor")]


def test_the_field_named_is_the_callers() -> None:
    with pytest.raises(ValidationFailed) as caught:
        seq_of("", "before")
    assert caught.value.errors[0].field == "before"


def test_a_cursor_of_40_characters_is_read() -> None:
    # the longest base64url a 40-character cursor holds: 30 bytes (v1: and 27 digits is
    # over MAX_SEQ, so it is refused for its value, not its length)
    raw = b64("v1:" + "1" * 27)
    assert len(raw) == 40
    with pytest.raises(ValidationFailed):
        seq_of(raw, "after")
    assert seq_of(cursor_of(MAX_SEQ), "after") == MAX_SEQ


def message(seq: int = 3) -> models.Message:
    return models.Message(
        id=uuid.UUID("99999999-8888-4777-8666-555555555555"),
        conversation_id=CONVERSATION,
        author_id=AUTHOR,
        body="hello",
        created_at=AT,
        seq=seq,
    )


def test_message_json_shape() -> None:
    row = message(seq=3)
    assert message_json(row) == {
        "id": row.id,
        "conversation_id": CONVERSATION,
        "author_id": AUTHOR,
        "body": "hello",
        "cursor": cursor_of(3),
        "created_at": AT,
    }


def test_frame_is_the_typed_json_text() -> None:
    frame = orjson.loads(frame_of(message(seq=9)))
    assert frame == {
        "type": "message",
        "data": {
            "id": "99999999-8888-4777-8666-555555555555",
            "conversation_id": str(CONVERSATION),
            "author_id": str(AUTHOR),
            "body": "hello",
            "cursor": cursor_of(9),
            "created_at": "2026-05-04T03:02:01.123000Z",
        },
    }


class Recorder:
    def __init__(self, numbered: q.NextSeqRow | None) -> None:
        self.numbered = numbered
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def next_seq(self, conn: Any, **kwargs: Any) -> q.NextSeqRow | None:
        self.calls.append(("next_seq", {"conn": conn, **kwargs}))
        return self.numbered

    async def insert_message(self, conn: Any, **kwargs: Any) -> models.Message:
        self.calls.append(("insert_message", {"conn": conn, **kwargs}))
        return models.Message(id=uuid.uuid4(), **kwargs)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder(q.NextSeqRow(last_seq=5, last_message_at=AT))
    monkeypatch.setattr(messages.q, "next_seq", recorder.next_seq)
    monkeypatch.setattr(messages.q, "insert_message", recorder.insert_message)
    return recorder


async def test_store_numbers_then_inserts_with_the_rows_number_and_time(
    recorder: Recorder,
) -> None:
    conn: Any = object()
    row = await store(conn, CONVERSATION, AUTHOR, "hi there")
    assert recorder.calls == [
        ("next_seq", {"conn": conn, "id": CONVERSATION}),
        (
            "insert_message",
            {
                "conn": conn,
                "conversation_id": CONVERSATION,
                "seq": 5,
                "author_id": AUTHOR,
                "body": "hi there",
                "created_at": AT,
            },
        ),
    ]
    assert (row.seq, row.body, row.created_at) == (5, "hi there", AT)


@pytest.mark.parametrize("numbered", [None, q.NextSeqRow(last_seq=1, last_message_at=None)])
async def test_store_in_a_vanished_conversation_is_a_lookup_error(
    recorder: Recorder, numbered: q.NextSeqRow | None
) -> None:
    recorder.numbered = numbered
    with pytest.raises(LookupError) as caught:
        await store(object(), CONVERSATION, AUTHOR, "hi")  # type: ignore[arg-type]
    assert str(caught.value) == f"conversation {CONVERSATION} vanished"
    assert [name for name, _ in recorder.calls] == ["next_seq"]
