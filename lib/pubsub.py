"""Publish/subscribe between the processes of a service: chat's fan-out across replicas.

`make_pubsub(redis)`: Redis pub/sub when REDIS_URL is set, in-process otherwise (one
process: `publish` calls the local subscribers directly). Subscribers are plain callbacks
run on the event loop (cheap: they only queue), one per channel and process; a service
keeps its own registry of who listens inside the process.

Redis side (ADR 0011): one dedicated pub/sub connection per process, read by one task.
When it breaks (Redis restarted; or silent for two ping intervals, as behind a cut link
or a frozen server) the task reconnects with lib's backoff (lib/backoff.py)
and subscribes every channel that has a local subscriber again; `on_restored` callbacks
then run, so the service can fetch what was published while it was away (pub/sub keeps
nothing). `subscribe` returns once Redis confirmed the subscription (or after
`confirm_timeout`): what is published afterwards reaches the callback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from lib import tracing
from lib.backoff import backoff
from lib.logging import get_logger

log = get_logger("lib.pubsub")
# the publish span's attributes: the system only (a channel names a conversation)
PUBLISH_SPAN = {"db.system.name": "redis", "messaging.operation.type": "publish"}
Callback = Callable[[str, bytes], None]  # (channel, payload)

PUBSUB_CONNECTED = Gauge(
    "pubsub_connected",
    "1 while the Redis pub/sub connection is subscribed (in-process: always 1).",
    ["service"],
    multiprocess_mode="min",
)
PUBSUB_RECONNECTS = Counter(
    "pubsub_reconnects_total", "Redis pub/sub connections re-established.", ["service"]
)
PUBSUB_PUBLISH_FAILURES = Counter(
    "pubsub_publish_failures_total",
    "Publishes that did not reach Redis (delivered in this process only).",
    ["service"],
)


class PubSub(Protocol):
    on_restored: list[Callable[[], None]]

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, channel: str, callback: Callback) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def publish(self, channel: str, payload: bytes) -> None: ...


class LocalPubSub:
    """One process: publish is a direct call of the channel's callback."""

    def __init__(self, service: str) -> None:
        self.callbacks: dict[str, Callback] = {}
        self.on_restored: list[Callable[[], None]] = []
        PUBSUB_CONNECTED.labels(service).set(1)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.callbacks.clear()

    async def subscribe(self, channel: str, callback: Callback) -> None:
        self.callbacks[channel] = callback

    async def unsubscribe(self, channel: str) -> None:
        self.callbacks.pop(channel, None)

    async def publish(self, channel: str, payload: bytes) -> None:
        deliver(self.callbacks, channel, payload)


def deliver(callbacks: dict[str, Callback], channel: str, payload: bytes) -> None:
    callback = callbacks.get(channel)
    if callback is None:
        return
    try:
        callback(channel, payload)
    except Exception as exc:  # a subscriber's bug must not stop the reader
        log.exception("pubsub_callback_failed", channel=channel, error=repr(exc))


class RedisPubSub:
    """Redis pub/sub with a reconnect loop; see the module docstring."""

    def __init__(
        self,
        client: Redis,
        *,
        service: str,
        control_channel: str,
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        confirm_timeout: float = 2.0,
        ping_interval: float = 5.0,
    ) -> None:
        self.client = client
        self.service = service
        # always subscribed: a broken connection is noticed even with no other channel
        self.control = control_channel
        self.backoff = (backoff_min, backoff_max)
        self.confirm_timeout = confirm_timeout
        self.ping_interval = ping_interval
        self.callbacks: dict[str, Callback] = {}
        self.on_restored: list[Callable[[], None]] = []
        self._pubsub: Any = None  # redis.asyncio.client.PubSub while connected
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.sessions = 0  # connections that got subscribed; > 1: restored after a loss
        PUBSUB_CONNECTED.labels(service).set(0)

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._run(), name="pubsub-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._drop()
        PUBSUB_CONNECTED.labels(self.service).set(0)

    async def subscribe(self, channel: str, callback: Callback) -> None:
        self.callbacks[channel] = callback
        if self._pubsub is None:
            return  # the reconnect loop subscribes it, then `on_restored` runs
        confirmed = asyncio.get_running_loop().create_future()
        self._waiting[channel] = confirmed
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), self.confirm_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("pubsub_subscribe_unconfirmed", channel=channel, error=repr(exc))
        finally:
            if self._waiting.get(channel) is confirmed:
                del self._waiting[channel]

    async def unsubscribe(self, channel: str) -> None:
        self.callbacks.pop(channel, None)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        """To every process; when Redis is unreachable, to this process's subscriber only.
        With tracing on, a `redis.publish` client span (failed when Redis did not take it)."""
        with tracing.span("redis.publish", kind=tracing.CLIENT, attributes=PUBLISH_SPAN) as span:
            error = await self._send(channel, payload)
            if error is not None and span is not None:
                tracing.fail(span, "REDIS_UNAVAILABLE")
        if error is None:
            return
        PUBSUB_PUBLISH_FAILURES.labels(self.service).inc()
        log.warning("pubsub_publish_failed", channel=channel, error=repr(error))
        deliver(self.callbacks, channel, payload)

    async def _send(self, channel: str, payload: bytes) -> Exception | None:
        """Publish through Redis; the error when it could not. A refused connection is tried
        once more: a pooled connection that died with a Redis restart fails once, the next
        one is new (subscribers drop duplicates)."""
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self.confirm_timeout):  # a hung Redis: not us
                    await self.client.publish(channel, payload)
                return None
            except (RedisConnectionError, ConnectionError) as exc:
                if attempt == 2:
                    return exc
            except (RedisError, OSError, TimeoutError) as exc:
                return exc
        raise AssertionError("unreachable: the second attempt returns")

    async def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._connected.clear()
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _run(self) -> None:
        failures = 0  # in a row, without a connection between them
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pubsub_connection_lost", error=repr(exc))
            PUBSUB_CONNECTED.labels(self.service).set(0)
            failures = 0 if self._connected.is_set() else failures + 1
            await self._drop()
            await asyncio.sleep(backoff(failures, *self.backoff))  # jitter: replicas spread

    async def _session(self) -> None:
        """One connection: subscribe everything, then read until it breaks."""
        pubsub = self.client.pubsub()
        self._pubsub = pubsub
        wanted = [c for c in self.callbacks if c != self.control]
        await pubsub.subscribe(*wanted, self.control)  # confirmed in this order
        waiting_for_pong = False
        while True:
            message = await pubsub.get_message(timeout=self.ping_interval)
            if message is None:  # quiet: is Redis still there? (a cut link sends no RST)
                if waiting_for_pong:
                    raise ConnectionError(f"no answer from Redis in {self.ping_interval} s")
                await pubsub.ping()
                waiting_for_pong = True
                continue
            waiting_for_pong = False
            kind, channel = message["type"], _text(message.get("channel"))
            if kind == "message":
                deliver(self.callbacks, channel, message["data"])
            elif kind == "subscribe":
                waiter = self._waiting.get(channel)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if channel == self.control:
                    await self._restored(pubsub, wanted)

    async def _restored(self, pubsub: Any, subscribed: list[str]) -> None:
        """Every channel is subscribed again: tell the service to fetch what it missed."""
        missing = [c for c in self.callbacks if c not in subscribed and c != self.control]
        if missing:  # subscribed locally while the connection was being set up
            await pubsub.subscribe(*missing)
        self._connected.set()
        PUBSUB_CONNECTED.labels(self.service).set(1)
        self.sessions += 1
        if self.sessions > 1:
            PUBSUB_RECONNECTS.labels(self.service).inc()
            log.info("pubsub_restored", channels=len(self.callbacks))
        for callback in self.on_restored:
            try:
                callback()
            except Exception as exc:
                log.exception("pubsub_restore_callback_failed", error=repr(exc))

    async def wait_connected(self) -> None:
        await self._connected.wait()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def make_pubsub(client: Redis | None, *, service: str, control_channel: str) -> PubSub:
    if client is None:
        return LocalPubSub(service)
    return RedisPubSub(client, service=service, control_channel=control_channel)
