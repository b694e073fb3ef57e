"""docs/examples.md runs: every command of the page, against the services as `make run`
starts them (the settings of .env.example; every built service as a real process, NGINX in
front, the seed's admin and catalog), each output against what the
page shows. A page that no longer matches the system fails here, naming the block. Then
each service's own page (`services/<service>/examples.md`, as `make new-service` writes
one), each in a shell of its own: it needs nothing but NGINX's address and the seed."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from dotenv import dotenv_values

from lib import registry
from tests.e2e.gateway_stack import Gateway
from tests.servers import Servers
from tools import keys, openapi_examples
from tools.examples_page import Example, examples, matches, pattern, run
from tools.local import seed
from tools.local.ports import free_port
from tools.local.service_process import ROOT, ServiceProcess
from tools.time_scale import scaled

PAGE = ROOT / "docs" / "examples.md"
# the story, every other operation (about 100 requests: 40 s here), the breaker (3
# timed-out calls of 2 s, then its 10 s reset) and the rest, on a loaded machine
PAGE_TIMEOUT = scaled(180.0)
# the processes starting at once on a machine other work loads
STARTUP = scaled(60.0)
# every built service (the page shows an example of each operation of each document)
STACK_SERVICES = tuple(s.name for s in registry.built_services())
BEHIND_NGINX = tuple(s.name for s in registry.built_services() if s.behind_gateway)


@dataclass
class ExamplesStack:
    gateway: Gateway
    services: dict[str, ServiceProcess]
    users_log: Path

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.log.read_text()}" for n, s in self.services.items())


@pytest.fixture(scope="module")
async def stack(
    migrated_db: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
    servers: Servers,
    redis_prefix: str,
) -> AsyncIterator[ExamplesStack]:
    for tool in ("curl", "jq", "lsof"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y {tool}", pytrace=False)
    tmp = tmp_path_factory.mktemp("examples")
    dsns = {db: migrated_db(db) for db in STACK_SERVICES}
    seed.seed_users(dsns["users"])  # admin@fixup.test and the customers, as `make seed`
    seed.seed_points(dsns["points"])
    seed.seed_catalog(dsns["catalog"])
    seed.seed_departments(dsns["departments"])
    key_dir = tmp / "keys"
    keys.write_keys(key_dir)
    keys.write_encryption_key(key_dir)
    # users signs from a signing keyring, as `make keys` writes one (ADR 0046)
    jwt_dir = key_dir / keys.KEY_DIR_NAME
    keys.signing_keyring(jwt_dir, (key_dir / keys.PRIVATE_NAME).read_text())
    ports = {name: free_port() for name in STACK_SERVICES}
    grpc = f"127.0.0.1:{free_port()}"
    docs = tmp / "docs"
    docs.mkdir()
    gateway = Gateway(tmp, {n: [f"127.0.0.1:{ports[n]}"] for n in BEHIND_NGINX}, docs)
    # .env.example is what `make run` reads; only addresses, databases and keys differ
    example = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    common = {
        **example,
        **{f"{n.upper()}_PORT": str(p) for n, p in ports.items()},
        **{f"{n.upper()}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()},
        **{f"{n.upper()}_DATABASE_URL": dsn for n, dsn in dsns.items()},
        "POINTS_GRPC_PORT": grpc.rsplit(":", 1)[1],
        "POINTS_GRPC_ADDR": grpc,
        "PUBLIC_BASE_URL": gateway.url,
        "CORS_ALLOW_ORIGINS": gateway.url,
        "JWT_PUBLIC_KEY_FILE": str(key_dir / keys.PUBLIC_NAME),
        "JWT_PRIVATE_KEY_FILE": str(key_dir / keys.PRIVATE_NAME),
        "ENCRYPTION_KEY_FILE": str(key_dir / keys.ENCRYPTION_NAME),
        "USERS_JWT_KEYS_DIR": str(jwt_dir),
        "JWKS_URL": f"http://127.0.0.1:{ports['users']}/.well-known/jwks.json",
        "STORAGE_DIR": str(tmp / "storage"),
        "DB_POOL_MIN": "1",
        # the shared Redis of .env.example: this run's own keys (limits, revocations)
        "REDIS_URL": servers.redis_url,
        "RATE_LIMIT_PREFIX": f"{redis_prefix}examples:rl:",
        "REVOCATION_PREFIX": f"{redis_prefix}examples:revoked:",
        "REVOCATION_RECORD_URL": f"http://127.0.0.1:{ports['users']}",
        # every persona of the page signs in from 127.0.0.1 within seconds: the per-IP login
        # bucket of .env.example (burst 10, 0.2/s) is one person's, not a whole page's
        "LOGIN_BURST": "100",
    }
    services: dict[str, ServiceProcess] = {}
    try:
        # users first: the others fetch its key set as they start
        for name in sorted(STACK_SERVICES, key=lambda n: n != "users"):
            services[name] = ServiceProcess(common, tmp / f"{name}.log", name=name)
            if name == "users":
                await services[name].wait_healthy(STARTUP)
        for service in services.values():
            await service.wait_healthy(STARTUP)
        await gateway.start()
        yield ExamplesStack(gateway, services, services["users"].log)
    finally:
        gateway.stop()
        for service in services.values():
            service.stop()


def page_examples() -> list[Example]:
    return examples(PAGE.read_text())


def test_the_page_has_the_whole_story() -> None:
    """The steps the page promises are there (a page cut short would still 'pass')."""
    commands = "\n".join(e.command for e in page_examples())
    for route in (
        "/users/v1/auth/register", "/verify-email", "/users/v1/auth/verify",
        "/users/v1/auth/login", "/catalog/v1/services", "/orders/v1/orders",
        "/offers", "/accept", "/chat/v1/conversations", "/messages", "/start", "/complete",
        "/review", "/users/v1/users/me", "kill -STOP", "kill -CONT", "resend-verification",
        "-X DELETE",
    ):  # fmt: skip
        assert route in commands, route


def test_placeholders_match_only_their_kind() -> None:
    assert pattern('{"id": "<uuid>"}').fullmatch('{"id": "0e000000-0000-4000-8000-000000000031"}')
    assert not pattern('{"id": "<uuid>"}').fullmatch('{"id": "not-a-uuid"}')
    assert pattern("at <time>").fullmatch("at 2031-05-01T09:00:00.123456Z")
    assert not pattern("<n> left").fullmatch("1.5 left")
    assert matches(None, "\n")
    assert not matches(None, "something")
    assert not matches("204\n", "204\n429\n")


async def test_every_command_of_the_page_answers_what_the_page_shows(
    stack: ExamplesStack,
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "BASE": stack.gateway.url,
        "USERS_LOG": str(stack.users_log),
        "CATALOG_PORT": str(stack.services["catalog"].port),
    }
    problems = []
    for source, page in openapi_examples.pages().items():  # docs/examples.md first
        problems += page_problems(source, examples(page), env, stack)
    assert not problems, "\n\n".join(problems)


def page_problems(
    source: str, blocks: list[Example], env: dict[str, str], stack: ExamplesStack
) -> list[str]:
    started = time.monotonic()
    result = run(blocks, env, ROOT, PAGE_TIMEOUT)
    took = time.monotonic() - started
    problems = [
        f"{source}:{block.line}: the page shows\n{block.expected}\nthe stack said\n{actual}"
        for block, actual in zip(blocks, result.outputs, strict=False)
        if not matches(block.expected, actual)
    ]
    if len(result.outputs) < len(blocks):
        failed = blocks[len(result.outputs)]
        problems.append(
            f"{source}:{failed.line}: exited {result.returncode}\n{failed.command}\n"
            f"stderr: {result.stderr}\n{stack.logs()[-6000:]}"
        )
    print(f"{source}: {len(blocks)} blocks in {took:.1f} s")
    return problems
