"""The sockets of this process, by conversation, fed by lib.pubsub (ADR 0011).

A *room* is a conversation with at least one socket here; it holds one subscription to
the conversation's channel and the number (`seq`) of the last message it handed to its
sockets. Numbers are gap-free, so a room sees at once when pub/sub lost or reordered
something (two replicas publish concurrently; Redis went away): it keeps the early
arrivals aside and reads the missing ones from the database (one query per room, not per
socket), then hands everything over in order. After Redis comes back every room reads
what it missed the same way.

A socket is a bounded queue of encoded frames; a socket whose queue is full is told so
(`on_overflow`: the WebSocket closes it with 4008) instead of the process buffering
without limit for a client that does not read.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from uuid import UUID

from prometheus_client import Counter

from lib.db.pool import Database
from lib.errors import ServiceUnavailable
from lib.logging import get_logger
from lib.pubsub import PubSub
from services.chat.db import chat as q
from services.chat.db import models
from services.chat.messages import frame_of

log = get_logger("services.chat")
GAP_FILLS = Counter(
    "chat_gap_fills_total",
    "Messages a room read from the database because pub/sub lost or reordered them.",
    ["service"],
)


class Socket:
    """What the hub knows of one WebSocket: a bounded queue of frames to send."""

    __slots__ = ("frames", "limit", "on_overflow", "overflowed", "wake")

    def __init__(self, limit: int, on_overflow: Callable[[], None]) -> None:
        self.frames: deque[bytes] = deque()
        self.limit = limit
        self.on_overflow = on_overflow
        self.overflowed = False
        self.wake = asyncio.Event()

    def push(self, frame: bytes) -> None:
        if self.overflowed:
            return
        if len(self.frames) >= self.limit:
            self.overflowed = True
            self.frames.clear()
            self.on_overflow()
            return
        self.frames.append(frame)
        self.wake.set()


class Room:
    """Invariant once `ready`: `pending` holds only numbers above `last + 1` (what is
    contiguous is handed over at once, what is not above `last` is dropped)."""

    __slots__ = ("arrivals", "conversation_id", "filling", "last", "pending", "ready", "sockets")

    def __init__(self, conversation_id: UUID) -> None:
        self.conversation_id = conversation_id
        self.sockets: set[Socket] = set()
        self.last = 0
        self.pending: dict[int, tuple[int, bytes]] = {}  # ahead of a gap: (arrival, frame)
        self.arrivals = 0  # frames received so far: orders arrivals against fill queries
        self.filling: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Hub:
    def __init__(
        self, pubsub: PubSub, db: Database, *, service: str, prefix: str, fill_batch: int
    ) -> None:
        self.pubsub = pubsub
        self.db = db
        self.service = service
        self.prefix = prefix
        self.fill_batch = fill_batch
        self.rooms: dict[str, Room] = {}
        pubsub.on_restored.append(self.refill_all)

    def channel(self, conversation_id: UUID) -> str:
        return f"{self.prefix}{conversation_id}"

    async def join(self, conversation_id: UUID, socket: Socket) -> None:
        """Returns once the room's subscription is live: every message committed from now
        on reaches the socket."""
        channel = self.channel(conversation_id)
        room = self.rooms.get(channel)
        if room is None:
            room = self.rooms[channel] = Room(conversation_id)
            try:
                await self.pubsub.subscribe(channel, self._received)
                async with self.db.acquire() as conn:
                    row = await q.get_conversation(conn, id=conversation_id)
                room.last = row.last_seq if row is not None else 0
                for seq in [s for s in room.pending if s <= room.last]:
                    del room.pending[seq]  # arrived while joining: committed before
            except BaseException:
                del self.rooms[channel]
                await self.pubsub.unsubscribe(channel)
                raise
            finally:
                room.ready.set_result(None)
            self._advance(room)
        else:
            await asyncio.shield(room.ready)
            if self.rooms.get(channel) is not room:  # its set-up failed (the database)
                raise ServiceUnavailable("the conversation could not be joined", retry_after=1)
        room.sockets.add(socket)  # from here on it gets every number above `last`

    async def leave(self, conversation_id: UUID, socket: Socket) -> None:
        channel = self.channel(conversation_id)
        room = self.rooms.get(channel)
        if room is None:
            return
        room.sockets.discard(socket)
        if not room.sockets and room.ready.done():
            del self.rooms[channel]
            if room.filling is not None:
                room.filling.cancel()
            await self.pubsub.unsubscribe(channel)

    async def publish(self, row: models.Message) -> None:
        """After the message's transaction committed (never before: a rolled-back number
        is handed out again)."""
        payload = b"%d\n" % row.seq + frame_of(row)
        await self.pubsub.publish(self.channel(row.conversation_id), payload)

    def _received(self, channel: str, payload: bytes) -> None:
        room = self.rooms.get(channel)
        if room is None:
            return
        head, _, frame = payload.partition(b"\n")
        seq = int(head)
        if seq <= room.last:
            return  # a duplicate, or read from the database already
        room.arrivals += 1
        room.pending[seq] = (room.arrivals, frame)
        if room.ready.done():
            self._advance(room)

    def _advance(self, room: Room) -> None:
        """Hand over what is contiguous; start a database read for a gap."""
        self._advance_contiguous(room)
        if room.pending and room.filling is None:
            self._start_fill(room)

    def _advance_contiguous(self, room: Room) -> None:
        while room.last + 1 in room.pending:
            room.last += 1
            self._dispatch(room, room.pending.pop(room.last)[1])

    def _dispatch(self, room: Room, frame: bytes) -> None:
        for socket in room.sockets:
            socket.push(frame)

    def _start_fill(self, room: Room) -> None:
        # a context of its own: never the request scope (one connection) of whoever called
        room.filling = asyncio.create_task(self._fill(room), context=contextvars.Context())

    def refill_all(self) -> None:
        """Pub/sub is back: every room reads what was published while it was away."""
        for room in self.rooms.values():
            if room.filling is None and room.ready.done():
                self._start_fill(room)

    async def _fill(self, room: Room) -> None:
        """Read from the database until no gap is left. A frame that arrived before a query
        started was committed before it (published after its commit; numbers commit in
        order), so that query must find everything below it: a gap it leaves is a real
        hole (or the database failed) and is skipped rather than stalling the room; a frame
        that arrived during the query only asks for another one."""
        try:
            while True:
                started_at = room.arrivals
                async with self.db.acquire() as conn:
                    rows = await q.messages_after(
                        conn,
                        conversation_id=room.conversation_id,
                        after_seq=room.last,
                        page_size=self.fill_batch,
                    )
                for row in rows:
                    if row.seq == room.last + 1:
                        room.last = row.seq
                        room.pending.pop(row.seq, None)
                        self._dispatch(room, frame_of(row))
                        GAP_FILLS.labels(self.service).inc()
                self._advance_contiguous(room)
                if len(rows) == self.fill_batch:
                    continue  # more to read
                if not room.pending or room.pending[min(room.pending)][0] <= started_at:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("chat_gap_fill_failed", conversation_id=str(room.conversation_id),
                        error=repr(exc))  # fmt: skip
        finally:
            room.filling = None
        if room.pending:  # all above `last + 1` (the invariant): a gap
            # not in the database (or it did not answer): skip the gap rather than stall;
            # clients catch up with `after`
            log.warning("chat_gap_skipped", conversation_id=str(room.conversation_id),
                        after=room.last, to=min(room.pending))  # fmt: skip
            room.last = min(room.pending) - 1
        self._advance(room)
