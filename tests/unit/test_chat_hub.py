"""The chat hub's ordering rules with a scripted database: frames that pub/sub reorders or
loses are read back in order, a frame arriving during a database read never makes the
room skip a message, a real hole is skipped, and a full socket queue overflows once.
(The same paths run against real PostgreSQL and Redis in the integration tests.)"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from lib.errors import ServiceUnavailable
from lib.pubsub import LocalPubSub
from services.chat import hub as hub_module
from services.chat.db import models
from services.chat.hub import Hub, Socket
from services.chat.messages import frame_of, seq_of
from tests.logging_support import capture_logs

CONVERSATION = uuid.uuid4()


def message(seq: int) -> models.Message:
    return models.Message(
        uuid.uuid4(), CONVERSATION, uuid.uuid4(), f"m{seq}", datetime.now(UTC), seq
    )


CONN = object()  # the connection the scripted database hands out


class ScriptedDb:
    """The rows "in the database"; a read can be held after its snapshot is taken."""

    def __init__(self) -> None:
        self.rows: list[models.Message] = []
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()  # a read of messages started
        self.looking_up = asyncio.Event()  # a join's read of the conversation started
        self.reads = 0
        self.contexts: list[str] = []  # SCOPE as each read saw it
        self.joining: Callable[[], None] | None = None  # runs while a join reads
        self.unknown = False  # the conversation has no row
        self.fail: BaseException | None = None  # what a join's read raises
        self.fail_reads = False

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[object]:
        yield CONN

    async def messages_after(self, conn: Any, **kw: Any) -> list[models.Message]:
        assert conn is CONN
        assert set(kw) == {"conversation_id", "after_seq", "page_size"}
        self.contexts.append(SCOPE.get())
        if self.fail_reads:
            raise ConnectionError("the database went away")
        rows = [r for r in self.rows if r.conversation_id == kw["conversation_id"]]
        snapshot = [r for r in rows if r.seq > kw["after_seq"]][: kw["page_size"]]
        self.reads += 1
        self.reading.set()
        if self.hold is not None:
            await self.hold.wait()
        return snapshot

    async def get_conversation(self, conn: Any, **kw: Any) -> Any:
        assert conn is CONN
        assert kw == {"id": CONVERSATION}
        last_seq = len(self.rows)  # the snapshot, before anything that arrives meanwhile
        self.looking_up.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.joining is not None:
            self.joining()  # the query is in flight: frames may arrive
        if self.fail is not None:
            raise self.fail
        return None if self.unknown else type("Row", (), {"last_seq": last_seq})()


SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("scope", default="own")


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
    async def done() -> None:
        for room in hub.rooms.values():
            while room.filling is not None:
                await room.filling

    await asyncio.wait_for(done(), SETTLE)  # a room that never stops reading fails here


SETTLE = 5.0


def new_hub(db: ScriptedDb) -> Hub:
    return Hub(LocalPubSub("chat"), db, service="chat", prefix="t:", fill_batch=2)  # type: ignore[arg-type]


async def joined(db: ScriptedDb, limit: int = 100) -> tuple[Hub, Socket, str]:
    hub = new_hub(db)
    socket = Socket(limit, lambda: None)
    await hub.join(CONVERSATION, socket)
    return hub, socket, hub.channel(CONVERSATION)


def gap_fills() -> float:
    return REGISTRY.get_sample_value("chat_gap_fills_total", {"service": "chat"}) or 0.0


async def test_reordered_frames_come_out_in_order(db: ScriptedDb) -> None:
    hub, socket, channel = await joined(db)
    before = gap_fills()
    db.rows += [message(1), message(2), message(3)]
    hub._received(channel, payload(db.rows[2]))  # 3 first: a gap, read from the database
    await settle(hub)
    assert gap_fills() == before + 2  # 1 and 2 came from the database
    for row in db.rows:
        hub._received(channel, payload(row))  # late, or a duplicate: already handed over
    assert seqs(socket) == [1, 2, 3]
    assert hub.rooms[channel].pending == {}
    db.rows.append(message(4))
    hub._received(channel, payload(db.rows[3]))
    assert seqs(socket) == [1, 2, 3, 4]  # the common case: no database read
    assert db.reads == 2  # fill_batch 2: two reads for three rows
    assert hub.rooms[channel].filling is None


async def test_a_frame_arriving_during_a_read_never_skips_a_message(db: ScriptedDb) -> None:
    hub, socket, channel = await joined(db)
    db.rows.append(message(1))
    hub._received(channel, payload(db.rows[0]))  # handed over at once
    db.rows.append(message(2))
    db.hold = asyncio.Event()
    scope = SCOPE.set("request")  # the caller's context (a request's database scope)
    try:
        (restored,) = hub.pubsub.on_restored
        restored()  # as after a Redis restart: the read's snapshot has 2 only
        await asyncio.wait_for(db.reading.wait(), SETTLE)
        filling = hub.rooms[channel].filling
        restored()  # again while reading: the same read goes on
        assert hub.rooms[channel].filling is filling
        db.rows += [message(3), message(4)]  # committed meanwhile; 4's frame arrives first
        hub._received(channel, payload(db.rows[3]))
        db.hold.set()
        await settle(hub)
    finally:
        SCOPE.reset(scope)
    hub._received(channel, payload(db.rows[2]))
    assert seqs(socket) == [1, 2, 3, 4]
    assert db.contexts == ["own"] * 3  # the reads ran in a context of their own


async def test_a_real_hole_is_skipped_not_waited_for(db: ScriptedDb) -> None:
    hub, socket, channel = await joined(db)
    db.rows += [message(1), message(3)]  # 2 is not in the database
    with capture_logs() as logs:
        hub._received(channel, payload(db.rows[1]))
        await settle(hub)
    assert seqs(socket) == [1, 3]
    assert logs == [skipped(after=1, to=3)]
    db.rows.append(message(4))
    hub._received(channel, payload(db.rows[2]))
    assert seqs(socket) == [1, 3, 4]


def skipped(*, after: int, to: int) -> dict[str, Any]:
    return {
        "event": "chat_gap_skipped",
        "log_level": "warning",
        "conversation_id": str(CONVERSATION),
        "after": after,
        "to": to,
    }


async def test_a_failed_read_skips_the_gap_once(db: ScriptedDb) -> None:
    hub, socket, channel = await joined(db)
    db.rows += [message(1), message(2), message(3)]
    hub._received(channel, payload(db.rows[0]))
    db.fail_reads = True
    with capture_logs() as logs:
        hub._received(channel, payload(db.rows[2]))
        await settle(hub)
    assert seqs(socket) == [1, 3]
    assert len(db.contexts) == 1  # one attempt, not a loop against a database that is down
    assert logs == [
        {
            "event": "chat_gap_fill_failed",
            "log_level": "warning",
            "conversation_id": str(CONVERSATION),
            "error": "ConnectionError('the database went away')",
        },
        skipped(after=1, to=3),
    ]


async def test_joining_starts_after_the_conversations_last_message(db: ScriptedDb) -> None:
    db.rows += [message(1), message(2)]
    hub, socket, channel = await joined(db)
    assert channel == f"t:{CONVERSATION}"
    assert hub.rooms[channel].last == 2
    db.rows.append(message(3))
    await hub.publish(db.rows[2])  # through pub/sub, to the room's subscription
    assert list(socket.frames) == [frame_of(db.rows[2])]
    assert db.reads == 0


async def test_a_conversation_without_a_row_starts_at_zero(db: ScriptedDb) -> None:
    db.unknown = True
    hub, socket, channel = await joined(db)
    assert hub.rooms[channel].last == 0
    db.rows.append(message(1))
    await hub.publish(db.rows[0])
    assert seqs(socket) == [1]
    assert db.reads == 0


@pytest.mark.parametrize("before", [0, 2])
async def test_frames_arriving_while_joining(db: ScriptedDb, before: int) -> None:
    """The room's subscription is live before it reads the last number: what arrives
    meanwhile and is not above that number is dropped, what is above is handed over (to
    no socket yet: the socket's client reads it with `after`)."""
    hub = new_hub(db)
    channel = hub.channel(CONVERSATION)
    db.rows += [message(n) for n in range(1, before + 1)]

    def arrive() -> None:
        db.rows.append(message(before + 1))  # committed after the read's snapshot
        for row in db.rows[-2:]:
            hub._received(channel, payload(row))

    db.joining = arrive
    socket = Socket(100, lambda: None)
    await hub.join(CONVERSATION, socket)
    room = hub.rooms[channel]
    assert (room.last, room.pending, room.filling) == (before + 1, {}, None)
    db.rows.append(message(before + 2))
    await hub.publish(db.rows[-1])
    assert seqs(socket) == [before + 2]
    assert db.reads == 0


async def test_a_failed_join_leaves_nothing_and_fails_who_waited(db: ScriptedDb) -> None:
    hub = new_hub(db)
    db.hold = asyncio.Event()
    first = asyncio.create_task(hub.join(CONVERSATION, Socket(100, lambda: None)))
    await db.looking_up.wait()
    second = asyncio.create_task(hub.join(CONVERSATION, Socket(100, lambda: None)))
    await asyncio.sleep(0)  # one turn of the loop: the second join waits for the room
    db.fail = ConnectionError("the database went away")
    db.hold.set()
    with pytest.raises(ConnectionError):
        await first
    with pytest.raises(ServiceUnavailable) as refused:
        await second
    assert (refused.value.detail, refused.value.retry_after) == (
        "the conversation could not be joined",
        1,
    )
    assert hub.rooms == {}
    assert hub.pubsub.callbacks == {}  # type: ignore[attr-defined]


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
    db.rows.append(message(3))
    await hub.publish(db.rows[2])  # the room stays while a socket is in it
    assert (seqs(first), seqs(late)) == ([1, 2], [2, 3])
    await hub.leave(CONVERSATION, late)
    assert hub.rooms == {}
    assert hub.pubsub.callbacks == {}  # type: ignore[attr-defined]
    await hub.leave(CONVERSATION, late)  # again: nothing to do


def test_a_full_queue_overflows_once() -> None:
    calls: list[int] = []
    socket = Socket(2, lambda: calls.append(1))
    socket.push(b"a")
    socket.push(b"b")
    assert (list(socket.frames), calls, socket.wake.is_set()) == ([b"a", b"b"], [], True)
    socket.push(b"c")
    assert calls == [1]
    for frame in (b"d", b"e"):
        socket.push(frame)
    assert calls == [1]
    assert not socket.frames  # nothing more is sent to it
