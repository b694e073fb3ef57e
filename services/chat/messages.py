"""Messages: the opaque cursor, the JSON and WebSocket shapes, and storing one (ADR 0011).

A message's cursor is its number in the conversation (`seq`, gap-free), wrapped so that
clients treat it as opaque: `base64url("v1:<seq>")`.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from lib.db.runtime import PgConn
from lib.errors import FieldError, ValidationFailed
from lib.http.jsonio import dumps
from services.chat.db import chat as q
from services.chat.db import models

CURSOR = re.compile(r"^v1:(0|[1-9][0-9]{0,18})\Z")
MAX_SEQ = 2**63 - 1  # bigint


def cursor_of(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def seq_of(cursor: str, field: str) -> int:
    """The number a cursor names; 400 naming `field` for anything we did not issue."""
    problem = ValidationFailed("invalid cursor", errors=[FieldError(field, "not a cursor")])
    if not 1 <= len(cursor) <= 40:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise problem from None
    match = CURSOR.match(raw)
    if match is None or int(match.group(1)) > MAX_SEQ or cursor_of(int(match.group(1))) != cursor:
        raise problem
    return int(match.group(1))


def message_json(row: models.Message) -> dict[str, Any]:
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "author_id": row.author_id,
        "body": row.body,
        "cursor": cursor_of(row.seq),
        "created_at": row.created_at,
    }


def frame_of(row: models.Message) -> bytes:
    """The WebSocket text frame of a message, encoded once for every socket."""
    return dumps({"type": "message", "data": message_json(row)})


async def store(
    conn: PgConn, conversation_id: uuid.UUID, author_id: uuid.UUID, body: str
) -> models.Message:
    """Number and insert a message; call inside a transaction (the number's row lock is
    held until it ends, so numbers commit in order)."""
    numbered = await q.next_seq(conn, id=conversation_id)
    if numbered is None or numbered.last_message_at is None:
        raise LookupError(f"conversation {conversation_id} vanished")  # ON DELETE CASCADE
    row = await q.insert_message(
        conn,
        conversation_id=conversation_id,
        seq=numbered.last_seq,
        author_id=author_id,
        body=body,
        created_at=numbered.last_message_at,
    )
    assert row is not None  # INSERT ... RETURNING always returns the row
    return row
