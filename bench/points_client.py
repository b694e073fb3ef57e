"""GetUserListPoints with 100 ids: the pooled client vs. a new channel per call.

The points service runs as its own process (`python -m services.points`, uvloop) on a
throwaway MariaDB database with 100 users (half of them with points). Rounds interleave
the two ways of calling, each `--calls` calls one after another; prints the median µs per
call of each and the ratio pooled / new channel (lower is better).
Run: .venv/bin/python bench/points_client.py [--rounds 5] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import uvloop

from lib.clients.points import PointsClient, decode_user_points, encode_user_ids
from lib.db.connecting import connect
from lib.grpc.client import ChannelPool
from lib.pb.point import UserListPointResponse, UserListRequest
from services.points.db import points as q
from tools.local.databases import MYSQL_DEFAULT
from tools.local.dbadmin import drop_database
from tools.local.ports import free_port
from tools.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
IDS = [str(uuid.uuid4()) for _ in range(100)]


async def seed(dsn: str) -> None:
    db = await connect(dsn, min_size=1, max_size=1)
    async with db.transaction() as conn:
        await q.set_user_points(
            conn, [q.SetUserPointsParams(user_id=u, points=n) for n, u in enumerate(IDS[:50])]
        )
    await db.close()


async def wait_ready(target: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        pool = ChannelPool(target, 1)
        try:
            await PointsClient(pool, timeout=1.0).get_user_list_points(IDS[:1])
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await pool.close()


async def pooled(client: PointsClient, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await client.get_user_list_points(IDS)
    return (time.perf_counter() - started) / calls * 1e6


async def new_channel(target: str, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        pool = ChannelPool(target, 1)
        await PointsClient(pool, timeout=5.0).get_user_list_points(IDS)
        await pool.close()
    return (time.perf_counter() - started) / calls * 1e6


async def measure(target: str, rounds: int, calls: int) -> None:
    await wait_ready(target)
    pool = ChannelPool(target, 4)
    client = PointsClient(pool, timeout=5.0)
    reply = await client.get_user_list_points(IDS)
    assert reply == {u: n if n < 50 else 0 for n, u in enumerate(IDS)}, reply
    await pooled(client, 50)  # warm-up of both paths
    await new_channel(target, 10)
    results: dict[str, list[float]] = {"pooled": [], "new channel": []}
    for _ in range(rounds):
        results["pooled"].append(await pooled(client, calls))
        results["new channel"].append(await new_channel(target, calls))
    await pool.close()
    ratio = statistics.median(
        p / n for p, n in zip(results["pooled"], results["new channel"], strict=True)
    )
    print(f"GetUserListPoints, 100 ids, {rounds} rounds x {calls} sequential calls")
    for name, values in results.items():
        print(f"  {name:12} {statistics.median(values):9.0f} µs/call (median of rounds)")
    print(f"  pooled / new channel = {ratio:.2f} (median of per-round ratios; lower is better)")


def codec_costs(n: int = 2000) -> None:
    """Encoding 100 ids and decoding the 100-entry map: betterproto2 vs upb (client side)."""
    reply = bytes(UserListPointResponse(user_points={u: 7 for u in IDS}))

    def per_call(fn: object) -> float:
        started = time.perf_counter()
        for _ in range(n):
            fn()  # type: ignore[operator]
        return (time.perf_counter() - started) / n * 1e6

    b2 = (
        per_call(lambda: bytes(UserListRequest(user_ids=IDS))),
        per_call(lambda: UserListPointResponse.parse(reply)),
    )
    upb = (per_call(lambda: encode_user_ids(IDS)), per_call(lambda: decode_user_points(reply)))
    print("  codec (client side, 100 ids): encode / decode")
    print(f"    betterproto2 {b2[0]:7.1f} / {b2[1]:7.1f} µs")
    print(f"    upb          {upb[0]:7.1f} / {upb[1]:7.1f} µs   (PointsClient uses upb here)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    dsn = f"{os.environ.get('BENCH_MYSQL', MYSQL_DEFAULT)}/fixup_bench_points_{os.getpid()}"
    grpc_port = free_port()
    env = {
        **os.environ,
        "POINTS_DATABASE_URL": dsn,
        "POINTS_GRPC_PORT": str(grpc_port),
        "POINTS_PORT": str(free_port()),
        "LOG_FILE": "/dev/null",
        "WORKERS": "1",
    }
    proc: subprocess.Popen[bytes] | None = None
    try:
        migrate.up("points", dsn)
        uvloop.run(seed(dsn))
        proc = subprocess.Popen([sys.executable, "-m", "services.points"], env=env, cwd=ROOT)
        uvloop.run(measure(f"127.0.0.1:{grpc_port}", args.rounds, args.calls))
        codec_costs()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        drop_database(dsn)


if __name__ == "__main__":
    main()
