"""lib/pubsub.py against a redis-server of its own (these tests stop, freeze and restart it):
delivery across two instances, a restart and a frozen server (no RST: only the missing
pong tells) both end with every channel subscribed again and `on_restored` run; a publish
Redis cannot take is delivered in-process and counted."""

from __future__ import annotations

import asyncio
import os
import signal

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from lib import tracing
from lib.pubsub import LocalPubSub, RedisPubSub
from tests.integration.chat_support import eventually
from tests.integration.tracing_support import receiver  # noqa: F401  (the fixture)
from tests.otlp_receiver import Receiver
from tests.reliability.throwaway import RedisServer

SERVICE = "pubsub-test"
RECEIVE = 10.0


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": SERVICE}) or 0.0


class Inbox:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.restored = 0

    def __call__(self, channel: str, payload: bytes) -> None:
        self.queue.put_nowait((channel, payload))

    def on_restored(self) -> None:
        self.restored += 1

    async def next(self) -> tuple[str, bytes]:
        return await asyncio.wait_for(self.queue.get(), RECEIVE)


async def started(url: str, inbox: Inbox, service: str) -> tuple[RedisPubSub, Redis]:
    client = Redis.from_url(url)
    pubsub = RedisPubSub(
        client, service=service, control_channel="t:_", ping_interval=0.2, backoff_max=0.2
    )
    pubsub.on_restored.append(inbox.on_restored)
    await pubsub.start()
    await asyncio.wait_for(pubsub.wait_connected(), RECEIVE)
    return pubsub, client


async def test_two_instances_then_a_restart_then_a_frozen_server(
    own_redis: RedisServer,
) -> None:
    inbox, other_inbox = Inbox(), Inbox()
    pubsub, client = await started(own_redis.url, inbox, SERVICE)  # its metrics: SERVICE
    other, other_client = await started(own_redis.url, other_inbox, "pubsub-test-other")
    try:
        await pubsub.subscribe("t:a", inbox)  # confirmed when it returns
        await other.publish("t:a", b"one")
        assert await inbox.next() == ("t:a", b"one")
        assert other_inbox.queue.empty()  # not subscribed there
        restored = inbox.restored

        own_redis.stop()
        own_redis.start()  # the same port

        async def back() -> bool:
            return inbox.restored > restored and pubsub._pubsub is not None

        await eventually(back, "subscribed again after the restart")
        await other.publish("t:a", b"two")
        assert await inbox.next() == ("t:a", b"two")

        # frozen: the TCP connection stays up, nothing answers; the missing pong tells
        assert own_redis.pid is not None
        reconnects = sample("pubsub_reconnects_total")
        os.kill(own_redis.pid, signal.SIGSTOP)

        async def noticed() -> bool:
            return sample("pubsub_connected") == 0

        await eventually(noticed, "a frozen Redis noticed by its silence")
        os.kill(own_redis.pid, signal.SIGCONT)

        async def resubscribed() -> bool:
            return (
                sample("pubsub_reconnects_total") > reconnects and sample("pubsub_connected") == 1
            )

        await eventually(resubscribed, "subscribed again after the freeze")
        await other.publish("t:a", b"three")
        assert await inbox.next() == ("t:a", b"three")

        # Redis gone: a publish reaches this process's subscriber only, and is counted
        failures = sample("pubsub_publish_failures_total")
        own_redis.stop()
        await pubsub.publish("t:a", b"local")
        assert await inbox.next() == ("t:a", b"local")
        assert sample("pubsub_publish_failures_total") == failures + 1
    finally:
        await pubsub.close()
        await other.close()
        await client.aclose()
        await other_client.aclose()


async def test_in_process() -> None:
    inbox = Inbox()
    local = LocalPubSub(SERVICE)
    await local.subscribe("c", inbox)
    await local.publish("c", b"x")
    await local.publish("nobody", b"y")
    assert await inbox.next() == ("c", b"x")
    await local.unsubscribe("c")
    await local.publish("c", b"z")
    assert inbox.queue.empty()


async def test_each_redis_publish_is_a_client_span(
    own_redis: RedisServer,
    receiver: Receiver,  # noqa: F811  (the fixture)
) -> None:
    """Tracing on: a publish inside a sampled request is a `redis.publish` client span under
    it, without the channel or payload; one Redis cannot take is marked failed; outside a
    request no span is made."""
    inbox = Inbox()
    pubsub, client = await started(own_redis.url, inbox, "pubsub-trace-test")
    try:
        await pubsub.publish("t:secret-channel", b"no span: no request")
        span, token = tracing.start_server_span("POST /probe", None)
        try:
            await pubsub.publish("t:secret-channel", b"payload-1")
            own_redis.stop()
            await pubsub.publish("t:secret-channel", b"payload-2")  # local only: failed span
        finally:
            tracing.end_span(span, token)
        trace_id = f"{span.get_span_context().trace_id:032x}"
        parent = f"{span.get_span_context().span_id:016x}"

        def arrived(r: Receiver) -> bool:
            return any(s.name == "POST /probe" for s in r.in_trace(trace_id))

        await receiver.wait_for(arrived, "the probe's spans")
        publishes = [s for s in receiver.in_trace(trace_id) if s.name == "redis.publish"]
        assert len(publishes) == 2
        assert {s.parent_id for s in publishes} == {parent}
        assert {s.kind for s in publishes} == {3}  # SPAN_KIND_CLIENT
        ok, failed = publishes if publishes[0].status_code == 0 else publishes[::-1]
        assert ok.status_code == 0
        assert failed.status_code == 2  # STATUS_CODE_ERROR
        assert failed.attributes["error.type"] == "REDIS_UNAVAILABLE"
        for s in publishes:
            assert s.attributes["db.system.name"] == "redis"
            assert "secret-channel" not in str(s.attributes)
            assert "payload" not in str(s.attributes)
        every = [s for s in receiver.spans if s.name == "redis.publish"]
        assert len(every) == 2  # the publish outside the request made none
    finally:
        await pubsub.close()
        await client.aclose()
