"""schemathesis against every HTTP service's own OpenAPI document, on the running service
(departments, users, catalog, orders):
every operation, as ADMIN, as CUSTOMER and without a token. No 5xx, no response that
violates the document, no error body showing internals. The case count is printed."""

from __future__ import annotations

import asyncio
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from lib.auth.principal import Role
from tests.e2e.service_process import Service
from tests.reliability import figures
from tests.reliability.budget import EXAMPLES
from tests.reliability.stack import bearer, operations, spec_of

# Not checked: positive_data_acceptance. A schema-valid body may still be refused with a
# documented 400 for what the document cannot express (an unknown or used reset token, a
# wrong password); every other schemathesis check runs.
# what a 4xx body must never show: a traceback, a driver, a file path
INTERNALS = ("Traceback", "asyncpg", "aiomysql", "pymysql", 'File "', "/services/", "/lib/")


def credentials() -> dict[str, dict[str, str]]:
    return {"admin": bearer(Role.ADMIN), "customer": bearer(Role.CUSTOMER), "anonymous": {}}


def run(service: Service, operation: Any, who: str, headers: dict[str, str]) -> int:
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
        for marker in INTERNALS:
            assert marker not in response.text, (who, marker, response.text)

    check()
    return cases


async def fuzz(service: Service, name: str) -> None:
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


async def test_fuzz_departments(departments: Service) -> None:
    await fuzz(departments, "departments")


async def test_fuzz_users(users: Service) -> None:
    await fuzz(users, "users")


async def test_fuzz_catalog(catalog: Service) -> None:
    await fuzz(catalog, "catalog")


async def test_fuzz_orders(orders: Service) -> None:
    await fuzz(orders, "orders")
