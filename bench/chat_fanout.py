"""Chat fan-out on loopback: --sockets WebSockets in one conversation, messages posted
over HTTP, every message delivered to every socket.

- two replicas (two `python -m services.chat` processes sharing Redis pub/sub, the
  sockets split between them, posts alternating) versus one replica (every socket and
  post on the first process; the second idles): deliveries per second and the delivery
  latency (post sent -> frame received, p50/p99), and the ratio of the two rates;
- memory per idle socket: the first process's RSS before and after --idle-sockets more
  sockets connect, divided by their number (target <= 50 KiB).

Closed loop: at most --window messages are in flight (not yet received by every socket),
so the figure is the rate the stack sustains, not how deep a queue grows; a socket that
falls behind its bounded queue would be closed (4008) and counted as lost. Each phase
posts for --seconds, then waits at most --drain seconds for the last deliveries.
The benchmark client (this process) runs on the same cores as the servers.
Run: .venv/bin/python bench/chat_fanout.py [--sockets 200] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, rss_mb
from lib.auth.principal import Role
from lib.auth.tokens import TokenSigner, generate_keypair
from tools.local.databases import PG_DEFAULT, REDIS_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess
from tools.migrations import migrate


def chat_process(
    dsn: str, redis_url: str, prefix: str, public_pem: str, log: Path
) -> ServiceProcess:
    env = {
        **os.environ,
        "CHAT_DATABASE_URL": dsn,
        "CHAT_PORT": str(free_port()),
        "CHAT_CHANNEL_PREFIX": prefix,
        "REDIS_URL": redis_url,
        "WORKERS": "1",
        "LOG_LEVEL": "WARNING",
        "JWT_PUBLIC_KEY": public_pem,
        "JWT_PUBLIC_KEY_FILE": "",
        "RATE_LIMIT_IP_RATE": "1000000",
        "RATE_LIMIT_IP_BURST": "1000000",
        "RATE_LIMIT_USER_RATE": "1000000",
        "RATE_LIMIT_USER_BURST": "1000000",
    }
    return ServiceProcess(env, log, name="chat", inherit_environ=False)


@dataclass
class Phase:
    sockets: int
    posted: int = 0
    delivered: int = 0
    lost: int = 0  # deliveries that never came (a socket closed, or the drain ran out)
    seconds: float = 0.0
    latency_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


async def open_sockets(
    http: aiohttp.ClientSession, urls: list[str], path: str, tokens: list[str], count: int
) -> list[aiohttp.ClientWebSocketResponse]:
    gate = asyncio.Semaphore(32)

    async def one(n: int) -> aiohttp.ClientWebSocketResponse:
        async with gate:
            return await http.ws_connect(
                f"{urls[n % len(urls)]}{path}",
                protocols=("fixup.bearer", tokens[n % len(tokens)]),
                autoping=True,
            )

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def phase(
    http: aiohttp.ClientSession,
    urls: list[str],
    conversation_id: str,
    tokens: list[str],
    args: argparse.Namespace,
) -> Phase:
    """Sockets split over `urls`, posts alternating over them, for args.seconds."""
    path = f"/v1/conversations/{conversation_id}/ws"
    sockets = await open_sockets(http, urls, path, tokens, args.sockets)
    result = Phase(len(sockets))
    sent: dict[int, float] = {}
    received: dict[int, int] = {}
    window = asyncio.Semaphore(args.window)
    done = asyncio.Event()
    stop = asyncio.Event()

    async def listen(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            now = time.perf_counter()
            n = int(orjson.loads(frame.data)["data"]["body"].split(" ", 1)[0])
            result.latency_ms.append((now - sent[n]) * 1000)
            result.delivered += 1
            received[n] = received.get(n, 0) + 1
            if received[n] == len(sockets):
                window.release()
                if stop.is_set() and sum(received.values()) == result.posted * len(sockets):
                    done.set()

    async def poster(index: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
        while not stop.is_set():
            await window.acquire()
            if stop.is_set():
                window.release()
                return
            n = result.posted
            result.posted += 1
            url = f"{urls[n % len(urls)]}/v1/conversations/{conversation_id}/messages"
            sent[n] = time.perf_counter()
            async with http.post(url, json={"body": f"{n} bench"}, headers=headers) as resp:
                await resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"post answered {resp.status}")

    listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
    started = time.perf_counter()
    posters = [asyncio.create_task(poster(i)) for i in range(args.posters)]
    await asyncio.sleep(args.seconds)  # the phase's length: the load runs meanwhile
    stop.set()
    await asyncio.gather(*posters)
    if sum(received.values()) < result.posted * len(sockets):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), args.drain)
    result.seconds = time.perf_counter() - started
    result.lost = result.posted * len(sockets) - result.delivered
    for ws in sockets:
        await ws.close()
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    return result


async def idle_memory(
    http: aiohttp.ClientSession,
    chat: ServiceProcess,
    conversation_id: str,
    tokens: list[str],
    count: int,
) -> float:
    """KiB of the process's RSS per idle socket (a few sockets first: the code paths and
    the room are warm, so the figure is what one more socket costs)."""
    path = f"/v1/conversations/{conversation_id}/ws"
    warm = await open_sockets(http, [chat.url], path, tokens, min(count, 20))
    for ws in warm:
        await ws.close()
    before = rss_mb(chat.proc.pid) * 1024
    sockets = await open_sockets(http, [chat.url], path, tokens, count)
    after = rss_mb(chat.proc.pid) * 1024
    for ws in sockets:
        await ws.close()
    return (after - before) / count


async def conversation(dsn: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    customer, provider = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "INSERT INTO conversations (order_id, customer_id, provider_id) "
            "VALUES ($1, $2, $3) RETURNING id",
            uuid.uuid4(),
            customer,
            provider,
        )
    finally:
        await conn.close()
    assert row is not None
    return str(row["id"]), customer, provider


async def run(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    private_pem, public_pem = generate_keypair()
    signer = TokenSigner(private_pem, 3600)
    conversation_id, customer, provider = await conversation(dsn)
    tokens = [
        signer.issue(customer, Role.CUSTOMER, True)[0],
        signer.issue(provider, Role.PROVIDER, True)[0],
    ]
    prefix = f"fixup:bench:{os.getpid()}:chat:"
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp:
        chats = [
            chat_process(dsn, args.redis, prefix, public_pem, Path(tmp) / f"chat{n}.log")
            for n in range(2)
        ]
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as http:
                for chat in chats:
                    await chat.wait_healthy()
                urls = [c.url for c in chats]
                # first, on a fresh process: freed sockets of a phase would be reused
                memory = await idle_memory(http, chats[0], conversation_id, tokens, args.idle)
                two = await phase(http, urls, conversation_id, tokens, args)
                one = await phase(http, urls[:1], conversation_id, tokens, args)
        finally:
            for chat in chats:
                chat.stop()
    return {
        "sockets": args.sockets,
        "two": figures_of(two),
        "one": figures_of(one),
        "ratio": two.rate / one.rate if one.rate else float("nan"),
        "idle_kib_per_socket": memory,
        "idle_sockets": args.idle,
    }


def figures_of(result: Phase) -> dict[str, Any]:
    return {
        "posted": result.posted,
        "delivered": result.delivered,
        "lost": result.lost,
        "seconds": result.seconds,
        "deliveries_per_s": result.rate,
        "messages_per_s": result.rate / result.sockets,
        "p50_ms": percentile(result.latency_ms, 50),
        "p99_ms": percentile(result.latency_ms, 99),
    }


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"chat fan-out, {figures['sockets']} sockets in one conversation, {args.posters} "
        f"posters, window {args.window}, {args.seconds:g} s a phase:"
    )
    for name, label in (("two", "two replicas"), ("one", "one replica ")):
        f = figures[name]
        print(
            f"  {label}  {f['deliveries_per_s']:9.0f} deliveries/s "
            f"({f['messages_per_s']:.1f} messages/s to every socket)  "
            f"p50 {f['p50_ms']:.1f} ms  p99 {f['p99_ms']:.1f} ms  lost {f['lost']}"
        )
    print(f"  ratio two/one replicas  {figures['ratio']:.2f}")
    print(
        f"  memory per idle socket  {figures['idle_kib_per_socket']:.1f} KiB "
        f"({figures['idle_sockets']} sockets; target <= 50)"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="posting time per phase")
    parser.add_argument("--drain", type=float, default=10.0, help="wait for the last frames")
    parser.add_argument("--window", type=int, default=8, help="messages in flight at most")
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--idle", type=int, default=1000, help="sockets for the memory figure")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS", REDIS_DEFAULT))
    parser.add_argument("--dsn", default="", help="a migrated chat database (default: a new one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if args.dsn:
            figures = runner.run(run(args, args.dsn))
        else:
            dsn = f"{os.environ.get('BENCH_PG', PG_DEFAULT)}/fixup_bench_chat_{os.getpid()}"
            try:
                migrate.up("chat", dsn)
                figures = runner.run(run(args, dsn))
            finally:
                drop_database(dsn)
    report(figures, args)
    return figures


if __name__ == "__main__":
    main()
