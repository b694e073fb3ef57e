"""The chat hub's ordering rules with a scripted database: frames that pub/sub reorders or
loses are read back in order, a frame arriving during a database read never makes the
room skip a message, a real hole is skipped, and a full socket queue overflows once.
(The same paths run against real PostgreSQL and Redis in the integration tests.)"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from lib.pubsub import LocalPubSub
from services.chat import hub as hub_module
from services.chat.db import models
from services.chat.hub import Hub, Socket
from services.chat.messages import cursor_of, frame_of, seq_of

CONVERSATION = uuid.uuid4()


def message(seq: int) -> models.Message:
    return models.Message(
        uuid.uuid4(), CONVERSATION, uuid.uuid4(), f"m{seq}", datetime.now(UTC), seq
    )


class ScriptedDb:
    """The rows "in the database"; a read can be held after its snapshot is taken."""

    def __init__(self) -> None:
        self.rows: list[models.Message] = []
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()
        self.reads = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        yield None

    async def messages_after(self, _: Any, **kw: Any) -> list[models.Message]:
        snapshot = [r for r in self.rows if r.seq > kw["after_seq"]][: kw["page_size"]]
        self.reads += 1
        self.reading.set()
        if self.hold is not None:
            await self.hold.wait()
        return snapshot

    async def get_conversation(self, _: Any, **kw: Any) -> Any:
        return type("Row", (), {"last_seq": len(self.rows)})()


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> ScriptedDb:
    scripted = ScriptedDb()
    monkeypatch.setattr(hub_module.q, "messages_after", scripted.messages_after)
    monkeypatch.setattr(hub_module.q, "get_conversation", scripted.get_conversation)
    return scripted


def payload(row: models.Message) -> bytes:
    return b"%d\n" % row.seq + frame_of(row)


def seqs(socket: Socket) -> list[int]:
    return [seq_of(orjson.loads(f)["data"]["cursor"], "cursor") for f in socket.frames]


async def settle(hub: Hub) -> None:
    for room in hub.rooms.values():
        while room.filling is not None:
            await room.filling


async def joined(db: ScriptedDb, limit: int = 100) -> tuple[Hub, Socket, str]:
    hub = Hub(LocalPubSub("chat"), db, service="chat", prefix="t:", fill_batch=2)  # type: ignore[arg-type]
    socket = Socket(limit, lambda: None)
    await hub.join(CONVERSATION, socket)
    return hub, socket, hub.channel(CONVERSATION)


def test_cursor_round_trip() -> None:
    for seq in (0, 1, 42, 2**63 - 1):
        assert seq_of(cursor_of(seq), "after") == seq


async def test_reordered_frames_come_out_in_order(db: ScriptedDb) -> None:
    hub, socket, channel = await joined(db)
    db.rows += [message(1), message(2), message(3)]
    hub._received(channel, payload(db.rows[2]))  # 3 first: a gap, read from the database
    await settle(hub)
    for row in db.rows[:2]:
        hub._received(channel, payload(row))  # late: already handed over
    assert seqs(socket) == [1, 2, 3]
    db.rows.append(message(4))
    hub._received(channel, payload(db.rows[3]))
    assert seqs(socket) == [1, 2, 3, 4]  # the common case: no database read
    assert db.reads == 2  # fill_batch 2: two reads for three rows


async def test_a_frame_arriving_during_a_read_never_skips_a_message(db: ScriptedDb) -> None:
    hub, socket, channel = await joined(db)
    db.rows.append(message(1))
    db.hold = asyncio.Event()
    hub.refill_all()  # as after a Redis restart: the read's snapshot has 1 only
    await db.reading.wait()
    db.rows += [message(2), message(3)]  # committed meanwhile; 3's frame arrives first
    hub._received(channel, payload(db.rows[2]))
    db.hold.set()
    await settle(hub)
    hub._received(channel, payload(db.rows[1]))
    assert seqs(socket) == [1, 2, 3]


async def test_a_real_hole_is_skipped_not_waited_for(db: ScriptedDb) -> None:
    hub, socket, channel = await joined(db)
    db.rows += [message(1), message(3)]  # 2 is not in the database
    hub._received(channel, payload(db.rows[1]))
    await settle(hub)
    assert seqs(socket) == [1, 3]
    db.rows.append(message(4))
    hub._received(channel, payload(db.rows[2]))
    assert seqs(socket) == [1, 3, 4]


async def test_a_socket_joining_later_gets_only_what_follows(db: ScriptedDb) -> None:
    hub, first, channel = await joined(db)
    db.rows.append(message(1))
    hub._received(channel, payload(db.rows[0]))
    late = Socket(100, lambda: None)
    await hub.join(CONVERSATION, late)
    db.rows.append(message(2))
    hub._received(channel, payload(db.rows[1]))
    assert (seqs(first), seqs(late)) == ([1, 2], [2])
    await hub.leave(CONVERSATION, first)
    await hub.leave(CONVERSATION, late)
    assert hub.rooms == {}


def test_a_full_queue_overflows_once() -> None:
    calls: list[int] = []
    socket = Socket(2, lambda: calls.append(1))
    for n in range(1, 6):
        socket.offer(n, b"x")
    assert calls == [1]
    assert not socket.frames  # nothing more is sent to it
