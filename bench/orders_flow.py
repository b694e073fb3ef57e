"""The whole order story under load, through the real services on loopback:

- complete stories per second (order -> offer -> accept -> start -> complete -> review:
  six requests, orders asking catalog and users on the way), --concurrency clients each
  with its own customer and provider, back to back;
- the same stories through NGINX and straight to the services' ports, side by side in
  interleaved rounds (the same background load for both): the ratio is the gateway's cost;
- each step's share of a story's time (through NGINX), and each hop's: the services' own
  `http_request_duration_seconds` sums (scraped from /metrics around every phase) against
  the client's time — catalog and users as served (orders waits that long for them),
  orders' own part (its handlers, SQL, and its client side of those calls), and the rest
  (the client, NGINX, loopback);
- the outbox relay under that load: awards delivered to points per second vs completions
  per second, and the lag from completion to delivery (p50/p99); every award applied
  exactly once (points' ledger checked).

Processes: points (gRPC over MariaDB), users, catalog, orders, NGINX (tests/e2e/story_stack.py),
each on a throwaway database. Accounts are inserted verified (hashing is bench/users_auth's
subject) and log in once. Every phase is bounded by --seconds.
Run: .venv/bin/python bench/orders_flow.py [--seconds 8] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.auth.passwords import make_hasher
from tests.e2e.story_stack import Dsns, Session, StoryStack, call, login, running_story_stack
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT, database_name
from tools.local.dbadmin import drop_database, mysql_connect
from tools.migrations import migrate

PASSWORD = "bench password 1"
STEPS = ("order", "offer", "accept", "start", "complete", "review")
HOPS = ("orders", "catalog", "users")  # the services a story's requests reach
OPS_ROUTES = frozenset({"/metrics", "/health", "/ready"})
T0 = "2031-05-01T09:00:00+00:00"
T1 = "2031-05-01T11:00:00+00:00"


@dataclass
class Phase:
    seconds: float = 0.0
    stories: int = 0
    failed: list[str] = field(default_factory=list)
    step_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    story_ms: list[float] = field(default_factory=list)
    served_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def rate(self) -> float:
        return self.stories / self.seconds if self.seconds else 0.0

    def add(self, other: Phase) -> None:
        self.seconds += other.seconds
        self.stories += other.stories
        self.failed += other.failed
        self.story_ms += other.story_ms
        for step, times in other.step_ms.items():
            self.step_ms[step] += times
        for hop, seconds in other.served_s.items():
            self.served_s[hop] += seconds

    def hop_share(self) -> dict[str, float]:
        """Each hop's share of the client's time (see the module docstring)."""
        client = sum(self.story_ms) / 1000 or float("nan")
        served = self.served_s
        own = served["orders"] - served["catalog"] - served["users"]
        return {
            "client_nginx_loopback": (client - served["orders"]) / client,
            "orders": own / client,
            "catalog": served["catalog"] / client,
            "users": served["users"] / client,
        }


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def insert_accounts(dsn: str, roles: list[str]) -> list[str]:
    """Verified accounts (one cheap hash shared), their emails, in `roles` order."""
    password_hash = make_hasher(1, 8, 1).hash(PASSWORD)
    emails = [
        f"flow-{role.lower()}{n}-{uuid.uuid4().hex[:8]}@fixup.test" for n, role in enumerate(roles)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "users",
            records=[
                (
                    uuid.uuid4(),
                    email,
                    password_hash,
                    "Bench",
                    role.title(),
                    "+1 555 0100",
                    role,
                    True,
                )
                for email, role in zip(emails, roles, strict=True)
            ],
            columns=[
                "id",
                "email",
                "password_hash",
                "first_name",
                "last_name",
                "phone_number",
                "role",
                "verified",
            ],
        )
    finally:
        await conn.close()
    return emails


async def expect(
    http: aiohttp.ClientSession, method: str, url: str, status: int, **kwargs: Any
) -> Any:
    resp, body = await call(http, method, url, **kwargs)
    if resp.status != status:
        raise RuntimeError(f"{method} {url} answered {resp.status}: {body}")
    return body


async def setup_catalog(http: aiohttp.ClientSession, stack: StoryStack, admin: Session) -> str:
    """category type -> category -> subcategory -> service, as the ADMIN; the service id."""
    api = stack.api("catalog")
    parent: dict[str, str] = {}
    made = ""
    for path, body in (
        ("category-types", {"name": f"Bench {uuid.uuid4().hex[:6]}"}),
        ("categories", {"name": "Plumbing"}),
        ("subcategories", {"name": "Leaks"}),
        ("services", {"name": "Fix a leak", "base_price": "80.50"}),
    ):
        answer = await expect(
            http, "POST", f"{api}/v1/{path}", 201, json={**body, **parent}, headers=admin.headers
        )
        made = answer["data"]["id"]
        parent = {
            "category-types": {"type_id": made},
            "categories": {"category_id": made},
            "subcategories": {"subcategory_id": made},
            "services": {},
        }[path]
    return made


async def story(
    http: aiohttp.ClientSession,
    orders: str,
    service_id: str,
    customer: Session,
    provider: Session,
    result: Phase,
) -> None:
    """One complete story, each step timed."""
    times: dict[str, float] = {}

    async def step(
        name: str, method: str, url: str, status: int, who: Session, body: Any = None
    ) -> Any:
        started = time.perf_counter()
        answer = await expect(http, method, url, status, json=body, headers=who.headers)
        times[name] = (time.perf_counter() - started) * 1000
        return answer["data"]

    order = await step(
        "order",
        "POST",
        f"{orders}/v1/orders",
        201,
        customer,
        {
            "service_id": service_id,
            "description": "The tap drips",
            "address": "1 Bench Road",
            "time_start": T0,
            "time_end": T1,
        },
    )
    offer = await step(
        "offer",
        "POST",
        f"{orders}/v1/orders/{order['id']}/offers",
        201,
        provider,
        {"price": "95.50", "currency": "EUR", "book_time": T0},
    )
    job = await step(
        "accept",
        "POST",
        f"{orders}/v1/orders/{order['id']}/offers/{offer['id']}/accept",
        200,
        customer,
    )
    jobs = f"{orders}/v1/jobs/{job['id']}"
    await step("start", "POST", f"{jobs}/start", 200, provider)
    await step("complete", "POST", f"{jobs}/complete", 200, provider)
    await step("review", "POST", f"{jobs}/review", 201, customer, {"rating": 5})
    result.stories += 1
    result.story_ms.append(sum(times.values()))
    for name, ms in times.items():
        result.step_ms[name].append(ms)


async def served_seconds(http: aiohttp.ClientSession, stack: StoryStack) -> dict[str, float]:
    """Each service's http_request_duration_seconds_sum over its API routes, so far."""
    out: dict[str, float] = {}
    for hop in HOPS:
        async with http.get(f"{stack.api(hop, direct=True)}/metrics") as resp:
            text = await resp.text()
        out[hop] = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "http_request_duration_seconds_sum"
            and sample.labels.get("route") not in OPS_ROUTES
        )
    return out


async def phase(
    stack: StoryStack,
    orders: str,
    service_id: str,
    pairs: list[tuple[Session, Session]],
    seconds: float,
) -> Phase:
    """Every pair runs stories back to back for `seconds` (the story in flight finishes);
    the services' own time in that window from their /metrics."""
    result, stop = Phase(), asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        before = await served_seconds(http, stack)

        async def loop(customer: Session, provider: Session) -> None:
            while not stop.is_set():
                try:
                    await story(http, orders, service_id, customer, provider, result)
                except RuntimeError as exc:
                    result.failed.append(str(exc))
                    return

        started = time.perf_counter()
        tasks = [asyncio.create_task(loop(c, p)) for c, p in pairs]
        await asyncio.wait(tasks, timeout=seconds)
        stop.set()
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - started
        after = await served_seconds(http, stack)
    for hop in HOPS:
        result.served_s[hop] = after[hop] - before[hop]
    return result


async def relay_figures(stack: StoryStack, since: float, settle: float) -> dict[str, Any]:
    """Wait (bounded) for every award to be delivered; then the relay's rate and lag, and
    the ledger checked against the outbox (exactly once)."""
    conn = await asyncpg.connect(stack.dsns.orders)
    try:
        deadline = time.monotonic() + settle
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"awards still pending after {settle}s\n{stack.logs()}")
            await asyncio.sleep(0.1)
        rows = await conn.fetch(
            "SELECT idempotency_key, extract(epoch FROM created_at) AS made,"
            " extract(epoch FROM delivered_at) AS sent FROM outbox"
            " WHERE created_at >= to_timestamp($1)",
            since,
        )
    finally:
        await conn.close()
    lags = [float(r["sent"] - r["made"]) * 1000 for r in rows]
    made = [float(r["made"]) for r in rows]
    sent = [float(r["sent"]) for r in rows]
    span_made = max(made) - min(made) if len(rows) > 1 else float("nan")
    span_sent = max(sent) - min(sent) if len(rows) > 1 else float("nan")
    keys = [r["idempotency_key"] for r in rows]
    dsn = stack.dsns.points
    with mysql_connect(dsn, database=database_name(dsn)) as my, my.cursor() as cur:
        cur.execute("SELECT idempotency_key, delta FROM points_ledger")
        ledger = {key: delta for key, delta in cur.fetchall()}
    applied = sum(1 for k in keys if ledger.get(k) == stack.points_per_job)
    return {
        "awards": len(rows),
        "awards_applied_once": applied,
        "completions_per_s": (len(rows) - 1) / span_made if span_made else float("nan"),
        "deliveries_per_s": (len(rows) - 1) / span_sent if span_sent else float("nan"),
        "lag_ms_p50": percentile(lags, 50),
        "lag_ms_p99": percentile(lags, 99),
    }


async def run(args: argparse.Namespace, dsns: Dsns) -> dict[str, Any]:
    """Every figure of the benchmark, as a dict (printed by main, checked by the smoke test)."""
    roles = ["ADMIN"] + ["CUSTOMER", "PROVIDER"] * args.concurrency
    emails = await insert_accounts(dsns.users, roles)
    with tempfile.TemporaryDirectory(prefix="bench-orders-flow-") as tmp:
        async with running_story_stack(
            Path(tmp),
            dsns,
            pool_max=args.pool_max,
            users_env={"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8"},
        ) as stack:
            async with aiohttp.ClientSession() as http:
                users = stack.api("users")
                sessions = [await login(http, users, e, PASSWORD) for e in emails]
                service_id = await setup_catalog(http, stack, sessions[0])
                pairs = list(zip(sessions[1::2], sessions[2::2], strict=True))
                for _, provider in pairs:
                    link = f"{stack.api('catalog')}/v1/providers/me/services/{service_id}"
                    await expect(http, "PUT", link, 204, headers=provider.headers)
            since = time.time() - 1
            modes = {"nginx": stack.api("orders"), "direct": stack.api("orders", direct=True)}
            async with aiohttp.ClientSession() as http:
                for url in modes.values():  # warm both paths: one story each
                    await story(http, url, service_id, *pairs[0], Phase())
            results = {mode: Phase() for mode in modes}
            part = args.seconds / (2 * args.rounds)
            for _ in range(args.rounds):
                for mode, url in modes.items():
                    results[mode].add(await phase(stack, url, service_id, pairs, part))
            relay = await relay_figures(stack, since, settle=args.settle)
    nginx, direct = results["nginx"], results["direct"]
    total = sum(sum(nginx.step_ms[s]) for s in STEPS) or float("nan")
    return {
        "concurrency": args.concurrency,
        "stories": {mode: r.stories for mode, r in results.items()},
        "failed": [msg for r in results.values() for msg in r.failed],
        "stories_per_s_nginx": nginx.rate,
        "stories_per_s_direct": direct.rate,
        "nginx_to_direct": nginx.rate / direct.rate if direct.rate else float("nan"),
        "story_ms_p50_nginx": percentile(nginx.story_ms, 50),
        "story_ms_p99_nginx": percentile(nginx.story_ms, 99),
        "story_ms_p50_direct": percentile(direct.story_ms, 50),
        "step_share": {s: sum(nginx.step_ms[s]) / total for s in STEPS},
        "step_ms_p50": {s: percentile(nginx.step_ms[s], 50) for s in STEPS},
        "hop_share": {mode: r.hop_share() for mode, r in results.items()},
        **relay,
    }


def report(f: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"orders flow, {f['concurrency']} customer/provider pairs, {args.seconds:g} s in "
        f"{args.rounds} interleaved rounds:"
    )
    print(
        f"  stories through NGINX   {f['stories_per_s_nginx']:7.1f} /s   "
        f"p50 {f['story_ms_p50_nginx']:.1f} ms, p99 {f['story_ms_p99_nginx']:.1f} ms"
    )
    print(
        f"  stories direct          {f['stories_per_s_direct']:7.1f} /s   "
        f"p50 {f['story_ms_p50_direct']:.1f} ms"
    )
    print(f"  NGINX / direct          {f['nginx_to_direct']:7.2f}")
    print("  each step's share of a story (through NGINX), p50:")
    for s in STEPS:
        print(f"    {s:9} {f['step_share'][s]:5.2f}   {f['step_ms_p50'][s]:6.1f} ms")
    print("  each hop's share of the client's time (services' own /metrics):")
    print("    " + " ".join(f"{hop:>22}" for hop in f["hop_share"]["nginx"]))
    for mode, shares in f["hop_share"].items():
        print(f"    {mode:7}" + " ".join(f"{v:22.2f}" for v in shares.values()))
    print(
        f"  outbox: {f['awards']} awards, {f['awards_applied_once']} applied once; "
        f"delivered {f['deliveries_per_s']:.1f}/s vs completed "
        f"{f['completions_per_s']:.1f}/s; lag p50 {f['lag_ms_p50']:.1f} ms, "
        f"p99 {f['lag_ms_p99']:.1f} ms"
    )
    print(f"  failed stories {len(f['failed'])}")
    for msg in f["failed"][:5]:
        print(f"    {msg[:300]}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0, help="both modes together")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--concurrency", type=int, default=4, help="customer/provider pairs")
    parser.add_argument("--pool-max", type=int, default=10, help="DB_POOL_MAX of each service")
    parser.add_argument("--settle", type=float, default=20.0, help="max wait for the relay (s)")
    parser.add_argument(
        "--dsns",
        nargs=4,
        metavar=("USERS", "CATALOG", "ORDERS", "POINTS"),
        help="migrated databases (default: new ones)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.dsns:
        figures = asyncio.run(run(args, Dsns(*args.dsns)))
    else:
        pg = os.environ.get("BENCH_PG", PG_DEFAULT)
        my = os.environ.get("BENCH_MYSQL", MYSQL_DEFAULT)
        pid = os.getpid()
        dsns = Dsns(
            f"{pg}/fixup_bench_flow_users_{pid}",
            f"{pg}/fixup_bench_flow_catalog_{pid}",
            f"{pg}/fixup_bench_flow_orders_{pid}",
            f"{my}/fixup_bench_flow_points_{pid}",
        )
        try:
            for db, dsn in zip(
                ("users", "catalog", "orders", "points"), astuple(dsns), strict=True
            ):
                migrate.up(db, dsn)
            figures = asyncio.run(run(args, dsns))
        finally:
            for dsn in astuple(dsns):
                drop_database(dsn)
    report(figures, args)
    return figures


if __name__ == "__main__":
    main()
