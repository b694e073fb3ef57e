"""schemathesis against every HTTP service's own OpenAPI document, on the running service
(departments, users, catalog, orders, chat):
every operation, as ADMIN, as CUSTOMER and without a token. No 5xx, no response that
violates the document, no error body showing internals. The case count is printed."""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, use_after_free

from lib import registry
from lib.auth.principal import Role
from tests.integration.orders_support import offer_body, order_body
from tests.reliability import figures
from tests.reliability.budget import EXAMPLES, SCENARIO_STEPS, SCENARIOS
from tests.reliability.stack import bearer, operations, spec_of
from tests.reliability.world import Orders, actor, catalog_service
from tools.local.service_process import ServiceProcess

# Not checked: positive_data_acceptance. A schema-valid body may still be refused with a
# documented 400 for what the document cannot express (an unknown or used reset token, a
# wrong password); nor, on a document whose DELETEs archive (a `{id}/restore` route:
# departments, catalog; ADR 0058), use_after_free: the row stays readable by id with its
# `archived_at`, by contract. Every other schemathesis check runs.
# what a 4xx body must never show: a traceback, a driver, a file path (a 2xx may: an
# audit event names its route, /v1/providers/{id}/services/...)
INTERNALS = ("Traceback", "asyncpg", "aiomysql", "pymysql", 'File "', "/services/", "/lib/")


def credentials() -> dict[str, dict[str, str]]:
    return {"admin": bearer(Role.ADMIN), "customer": bearer(Role.CUSTOMER), "anonymous": {}}


def run(service: ServiceProcess, operation: Any, who: str, headers: dict[str, str]) -> int:
    """Run the fixed number of generated cases of one operation; returns how many ran."""
    cases = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        nonlocal cases
        cases += 1
        response = case.call_and_validate(
            base_url=service.url, headers=headers, excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code < 500, (who, response.status_code, response.text)
        for marker in INTERNALS if response.status_code >= 400 else ():
            assert marker not in response.text, (who, marker, response.text)

    check()
    return cases


@pytest.mark.parametrize(
    "service", [service.name for service in registry.gateway_services()], indirect=True
)
async def test_fuzz(service: ServiceProcess) -> None:
    """Chat is wired to the real orders: a generated order id is asked of orders with the
    generated caller's token (404 when unknown), the WebSocket route answered without an
    upgrade."""
    name = service.log.stem
    document = await spec_of(service)
    schema = schemathesis.openapi.from_dict(document)
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) == len(operations(document)) > 0
    cases = 0
    for who, headers in credentials().items():
        for operation in found:
            ran = await asyncio.to_thread(run, service, operation, who, headers)
            assert ran > 0, (who, operation.label)
            cases += ran
    figures.add("fuzz cases run", cases)
    figures.add(f"fuzz cases run: {name}", cases)
    print(f"schemathesis {name}: {cases} cases over {len(found)} operations x 3 credentials")


APPEND_ONLY = frozenset({"audit_events"})  # ADR 0057


def clean_slate(dsn: str, keep: frozenset[str] = frozenset()) -> Callable[[], None]:
    """Empties the service's tables (yoyo's, `keep`, what the migrations seed, and the
    append-only audit_events, which refuses a TRUNCATE and no scenario reads, aside).

    Run before every scenario: each then starts from the same database, so the same
    generated calls get the same answers. Hypothesis replays choice sequences and fails
    with FlakyStrategyDefinition when they lead elsewhere, and the rules a scenario may
    pick depend on what the server answered (a create's 201 fills the bundle its links
    draw from): a create refused as a duplicate of an earlier scenario's (409), or a
    reused Idempotency-Key, made the same choices select different rules."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = sorted(
            name
            for (name,) in rows
            if not name.startswith(("_yoyo", "yoyo")) and name not in keep | APPEND_ONLY
        )
    assert tables, dsn
    statement = f"TRUNCATE {', '.join(f'public.{name}' for name in tables)} CASCADE"

    def reset() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    return reset


STATEFUL_SEED = 0
# Whether schemathesis' machine follows a link within SCENARIOS scenarios depends on more
# than its derandomized choices: with other modules imported in the same pytest process
# (services.users' schemas were enough) the same machine may follow none. So a run that
# followed none is run again with twice the scenarios, a bounded few times, before "no
# link followed" counts as a failure
LINK_ATTEMPTS = 3


def stateful(
    service: ServiceProcess, document: dict[str, Any], headers: dict[str, str],
    reset: Callable[[], None], prepare: Callable[[Any], None] | None = None,
    scenarios: int = SCENARIOS,
) -> tuple[int, set[str]]:  # fmt: skip
    """schemathesis' state machine over the document's links (create -> read, update, ...),
    every response checked as above, each scenario on an emptied database (`reset`).
    Returns every call as (method, path template, status), and the operations that were
    called on an id a create had answered."""
    # schemathesis' state machine draws some of its choices (which link, which value) from
    # the global `random`, which pytest-randomly reseeds per test and earlier tests consume:
    # seeded here, the machine makes the same calls whatever ran before it in the process
    random.seed(STATEFUL_SEED)
    schema = schemathesis.openapi.from_dict(document)
    excluded = [positive_data_acceptance]
    if any(path.endswith("/restore") for path in document["paths"]):  # DELETE archives
        excluded.append(use_after_free)
    created: set[str] = set()
    linked: set[str] = set()
    calls: list[tuple[str, str, int]] = []

    class Scenario(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            reset()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": service.url, "headers": headers}

        def before_call(self, case: Any) -> None:
            if prepare is not None:
                prepare(case)

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            calls.append((case.method, case.path, response.status_code))
            if str((case.path_parameters or {}).get("id")) in created:
                linked.add(f"{case.method} {case.path}")
            assert response.status_code < 500, (case.path, response.status_code, response.text)
            for marker in INTERNALS if response.status_code >= 400 else ():
                assert marker not in response.text, (marker, response.text)
            if response.status_code == 201:
                created.add(str(response.json()["data"]["id"]))
            case.validate_response(
                response, excluded_checks=excluded,
                transport_kwargs=kwargs or None, recorder=self.recorder,
            )  # fmt: skip

    Scenario.run(
        settings=settings(
            max_examples=scenarios,
            stateful_step_count=SCENARIO_STEPS,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    return calls, linked


async def fuzz_links(service: ServiceProcess, name: str, dsn: str, headers: dict[str, str],
                     prepare: Callable[[Any], None] | None = None,
                     keep: frozenset[str] = frozenset()) -> None:  # fmt: skip
    document = await spec_of(service)
    reset = clean_slate(dsn, keep)
    calls: list[tuple[str, str, int]] = []
    for attempt in range(1, LINK_ATTEMPTS + 1):
        scenarios = SCENARIOS * 2 ** (attempt - 1)  # derandomized: more scenarios, new calls
        made, linked = await asyncio.to_thread(
            stateful, service, document, headers, reset, prepare, scenarios
        )
        calls += made
        if linked:
            break
    answers = collections.Counter((method, path, status) for method, path, status in calls)
    assert linked, f"{name}: no call followed a link; the calls made: {dict(answers)}"
    figures.add("stateful fuzz calls (following links)", len(calls))
    print(f"schemathesis stateful {name}: {len(calls)} calls; through links: {sorted(linked)}")


async def test_fuzz_departments_following_links(
    departments: ServiceProcess, departments_dsn: str
) -> None:
    await fuzz_links(departments, "departments", departments_dsn, bearer(Role.ADMIN))


async def test_fuzz_catalog_following_links(catalog: ServiceProcess, catalog_dsn: str) -> None:
    await fuzz_links(catalog, "catalog", catalog_dsn, bearer(Role.ADMIN))


async def test_the_stateful_fuzz_is_deterministic(
    departments: ServiceProcess, departments_dsn: str
) -> None:
    """Two runs of the departments state machine make the same calls and get the same
    answers: derandomized generation, and every scenario on an emptied database."""
    document = await spec_of(departments)
    reset, admin = clean_slate(departments_dsn), bearer(Role.ADMIN)
    first, _ = await asyncio.to_thread(stateful, departments, document, admin, reset)
    second, _ = await asyncio.to_thread(stateful, departments, document, admin, reset)
    assert any(status == 201 for _, _, status in first), first
    assert first == second


async def test_fuzz_orders_following_links(
    orders: ServiceProcess, catalog: ServiceProcess, orders_dsn: str
) -> None:
    """As a verified CUSTOMER, each order for a service that exists: the creates succeed
    and the links (read, update, cancel, offers) run on real orders. Catalog is not reset
    (the fuzz only reads it); orders keeps its seeded currencies."""
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url)

    def real_service(case: Any) -> None:
        if case.method == "POST" and case.path == "/v1/orders" and isinstance(case.body, dict):
            case.body["service_id"] = service_id

    await fuzz_links(orders, "orders", orders_dsn, bearer(Role.CUSTOMER), real_service,
                     keep=frozenset({"currencies"}))  # fmt: skip


async def test_fuzz_chat_following_links(
    chat: ServiceProcess, orders: ServiceProcess, catalog: ServiceProcess, chat_dsn: str
) -> None:
    """As the customer of a real order with a provider's offer on it: each conversation
    create names that pair (201, then 200 with the same one), and the links (read, list
    and post messages, the socket's route) run on the real conversation."""
    customer, provider = actor(Role.CUSTOMER), actor(Role.PROVIDER)
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url, provider)
        steps = Orders(http, orders.url, service_id, customer, provider)
        order = await steps.order()
        await steps.offer(order["id"])
    pair = {"order_id": order["id"], "provider_id": str(provider.id)}

    def real_pair(case: Any) -> None:
        if case.method == "POST" and case.path == "/v1/conversations":
            case.body = dict(pair)

    await fuzz_links(chat, "chat", chat_dsn, customer.headers, real_pair)


async def test_every_link_of_the_orders_create_resolves(
    orders: ServiceProcess, catalog: ServiceProcess
) -> None:
    """Each link of POST /v1/orders, followed by hand as its document says (the id from the
    body, If-Match from the ETag): the read answers the order just created, the update
    and the cancel apply to it, nothing answers 5xx."""
    document = await spec_of(orders)
    create = document["paths"]["/v1/orders"]["post"]["responses"]["201"]
    targets = {
        op["operationId"]: (method.upper(), path) for method, path, op in operations(document)
    }
    customer = bearer(Role.CUSTOMER)
    bodies: dict[str, Any] = {
        "updateAnOrder": {"description": "changed through a link"},
        "makeAnOffer": offer_body(),
    }
    followed = {}
    async with aiohttp.ClientSession() as http:
        service_id = await catalog_service(http, catalog.url)
        # the cancel last: it ends what the others act on
        for name, link in sorted(create["links"].items(), key=lambda kv: "cancel" in kv[0]):
            url = f"{orders.url}/v1/orders"
            async with http.post(url, json=order_body(service_id), headers=customer) as r:
                assert r.status == 201, await r.text()
                made, etag = await r.json(), r.headers["ETag"]
            method, path = targets[link["operationId"]]
            headers = dict(customer)
            for where, expression in link["parameters"].items():
                assert expression in {"$response.body#/data/id", "$response.header.ETag"}
                value = made["data"]["id"] if "body" in expression else etag
                if where == "path.id":
                    path = path.replace("{id}", value)
                else:
                    headers[where.removeprefix("header.")] = value
            async with http.request(
                method, orders.url + path, json=bodies.get(name), headers=headers
            ) as r:
                answer = await r.json(content_type=None)
                followed[name] = r.status
            assert r.status < 500, (name, answer)
            if name == "getAnOrder":
                assert answer == made
    assert followed == {
        "cancelAnOrder": 200,
        "getAnOrder": 200,
        "listTheOffersOfAnOrder": 200,
        "makeAnOffer": 403,  # a CUSTOMER follows it: offers are a provider's
        "updateAnOrder": 200,
    }, followed
    figures.add("OpenAPI links followed by hand", len(followed))
