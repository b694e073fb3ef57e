"""A loopback TCP proxy for tests: adds latency, or goes away, in front of a real server."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, delay: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.delay = delay  # one-way latency in seconds, added to every chunk either way
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self._answers_flow = asyncio.Event()  # cleared by hold(): answers wait at the proxy
        self._answers_flow.set()
        self._holding: set[asyncio.Task[None]] = set()  # connections with an answer held
        self._held_changed = asyncio.Condition()

    async def start(self, port: int = 0) -> TcpProxy:
        """Listen on `port` (0: a free one; a stopped proxy's port: the server 'comes back')."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and cut every open connection (the server 'goes down')."""
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            await self.server.wait_closed()
            self.server = None
        for task in list(self.tasks):
            task.cancel()

    def hold(self) -> None:
        """From now on every answer of the target, a close among them, waits here until
        release(): whatever asked it is observably in flight, for as long as the test wants
        (a cancel request too, which a frozen server never answers)."""
        self._answers_flow.clear()

    def release(self) -> None:
        self._answers_flow.set()

    async def held(self, connections: int) -> None:
        """Return once `connections` connections each have an answer (or their close)
        waiting at hold()."""
        async with self._held_changed:
            await self._held_changed.wait_for(lambda: len(self._holding) >= connections)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer, answers=True)),
        ]
        self.tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
            self.tasks.discard(task)
        for w in (writer, up_writer):
            w.close()
            self.writers.discard(w)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, answers: bool = False
    ) -> None:
        """Forward src -> dst; each chunk leaves `delay` seconds after it arrived: one-way
        latency in both directions (a round trip costs 2 x delay; chunks in flight overlap,
        as on a real link)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            loop = asyncio.get_running_loop()
            while True:
                arrived, data = await queue.get()
                if self.delay:  # read each time: a test may change it mid-way
                    await asyncio.sleep(max(0.0, arrived + self.delay - loop.time()))
                if answers and not self._answers_flow.is_set():
                    await self._wait_for_release()  # the target's close too, as a frozen one
                if not data:
                    return
                dst.write(data)
                await dst.drain()

        sender = asyncio.create_task(send())
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await src.read(65536):
                queue.put_nowait((loop.time(), data))
            queue.put_nowait((loop.time(), b""))
            await sender
        sender.cancel()

    async def _wait_for_release(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        async with self._held_changed:
            self._holding.add(me)
            self._held_changed.notify_all()
        try:
            await self._answers_flow.wait()
        finally:
            self._holding.discard(me)


def through(dsn: str, proxy: TcpProxy) -> str:
    """The same database URL, reached through `proxy` instead of the server itself."""
    parts = urlsplit(dsn)
    user = parts.username or ""
    if parts.password:
        user += f":{parts.password}"
    netloc = f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
