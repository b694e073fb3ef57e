"""Real-server fixtures shared by every test (see tests/servers.py for the rules)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from lib import registry
from tests.revocations_intact import RevocationsIntact
from tests.selection import exercised
from tests.servers import DatabaseFactory, Servers, ServerUnavailableError, resolve_servers, run_id
from tools.checks.mutant_databases import MutantDatabases, scope_from_env
from tools.local import ports
from tools.local.databases import database_name, get_database
from tools.local.service_process import PROCESS_MARGIN
from tools.migrations import migrate
from tools.time_scale import scaled

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def _without_shell_settings() -> None:
    """The caller's shell does not change the results: every setting `.env.example` names
    (ports, URLs, log level, ...) is dropped; a test that needs one sets it itself."""
    for name in re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE):
        os.environ.pop(name, None)


_without_shell_settings()


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    try:
        found = resolve_servers()
    except ServerUnavailableError as exc:
        pytest.fail(f"a real server the tests need is missing:\n{exc}", pytrace=False)
    with RevocationsIntact(found.redis_url):  # users' marker where no users app runs
        yield found
    found.stop()


@pytest.fixture(scope="session")
def databases(servers: Servers) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(servers)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def migrated_db(databases: DatabaseFactory) -> Iterator[Callable[[str], str]]:
    """`migrated_db("users")` -> DSN of a new database of this run, every migration applied.

    Under mutmut (a session per mutant) the session's databases are instead kept for the
    next one, at the head migration, in a slot only this session uses
    (tools/checks/mutant_databases.py): the tests isolate their own rows either way."""
    if "MUTANT_UNDER_TEST" in os.environ:
        servers = databases.servers
        kept = MutantDatabases(servers.pg_dsn, servers.mysql_dsn, scope_from_env())
        yield kept.migrated
        kept.close()
        return

    # PostgreSQL: each db migrated once, into a template only this session uses, then
    # copied (0.05 s against 0.3-0.6 s of migrations, on a server every worker shares)
    templates: dict[str, str] = {}

    def make(db: str) -> str:
        engine = get_database(db).engine
        if engine != "postgresql":
            dsn = databases.create(db, engine)
            migrate.up(db, dsn)
            return dsn
        if db not in templates:
            template = databases.create(f"{db}_template", engine)
            migrate.up(db, template)  # its connections closed: a copy needs none open
            templates[db] = database_name(template)
        return databases.create(db, engine, template=templates[db])

    yield make


@pytest.fixture(scope="module")
def departments_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("departments")


@pytest.fixture(scope="module")
def users_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("users")


@pytest.fixture(scope="module")
def catalog_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("catalog")


@pytest.fixture(scope="module")
def orders_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("orders")


@pytest.fixture(scope="module")
def points_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("points")


@pytest.fixture(scope="module")
def chat_dsn(migrated_db: Callable[[str], str]) -> str:
    return migrated_db("chat")


@pytest.fixture(autouse=True, scope="module")
async def _no_task_outlives_its_module(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test of a worker shares one event loop: a task a module leaves running (an app
    whose start-up failed, a server's open connection) runs on into the next modules'
    tests, where a pool's gauge reporter once spun without end under a test's stand-in for
    asyncio.sleep. So each module's tasks must have ended PROCESS_MARGIN after its last
    fixture closed (a call bounded by its own timeout may still be finishing), or the
    module fails naming them."""
    before = asyncio.all_tasks()
    yield
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    if not left:
        return
    _, running = await asyncio.wait(left, timeout=PROCESS_MARGIN)
    for task in running:
        task.cancel()
    names = sorted(repr(task.get_coro()) for task in running)
    assert not running, f"{request.node.nodeid} left tasks running: {names}"


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    """Every key and channel a test writes starts with this; Redis is never flushed."""
    return f"fixup:test:{run_id()}:"


def pytest_addoption(parser: pytest.Parser) -> None:
    names = [service.name for service in registry.MICROSERVICES]
    parser.addoption(
        "--svc",
        choices=names,
        help="only one service's tests: every file that exercises it (tests/selection.py)",
    )
    parser.addoption(
        "--no-servers", action="store_true", help="only tests that need no database or Redis"
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    svc = config.getoption("--svc")
    if not svc or not collection_path.name.startswith("test_") or collection_path.suffix != ".py":
        return None
    return not for_service(collection_path, svc)


def for_service(path: Path, svc: str) -> bool:
    """A test file of `--svc`: one that exercises it (tests/selection.py: named for it,
    importing, starting or naming it, itself or through a module of tests/ it imports,
    walking every service of the registry, or declaring `EXERCISES`)."""
    return svc in exercised(path, [service.name for service in registry.MICROSERVICES])


# The files that hold the most PostgreSQL connections at once (the mutation sample's forked
# sessions, the benchmarks' servers and pgbench clients). Under `make test`'s parallel
# workers (pytest-xdist, `--dist loadfile`) their tests take one lock of the run in turn, so
# the run stays under the server's max_connections (100 by default; docs/testing.md).
# pytest-xdist's own `--dist loadgroup` + xdist_group would say it, but ignores the marks
# under pytest 9.2 (https://github.com/pytest-dev/pytest-xdist/issues/1386; pyproject's pin).
BENCH_SMOKE = "tests/integration/test_bench_smoke.py"
SAMPLE = "tests/mutation/test_sample.py"
BENCH_SCRIPTS = "tests/integration/test_bench_scripts.py"
HEAVY = frozenset({BENCH_SMOKE, SAMPLE, BENCH_SCRIPTS})
# The longest files that hold few connections (docs/recipes.md's new service followed on a
# copy of the checkout, about five minutes of one worker; the closed checkout's sample and
# the previous release's API tests, a minute or two each).
LONGEST = frozenset(
    {
        "tests/e2e/test_new_service.py",
        "tests/integration/test_closed_checkout.py",
        "tests/integration/test_migrations_compat.py",
    }
)
_PLAIN = 1  # a file's place in the workers' queue, lowest first
# The queue: the benchmarks' smoke (five minutes of a worker, holding the lock), the longest
# files, the sample (its lock free by the time a worker is through a longest file), every
# other file, then the benchmark scripts (a minute): so no long file and no wait for the
# lock is left for the run's tail, where the other workers would stand idle.
_PLACE = {BENCH_SMOKE: -2} | dict.fromkeys(LONGEST, -1) | {SAMPLE: 0, BENCH_SCRIPTS: 2}


def _place(item: pytest.Item) -> int:
    return _PLACE.get(item.nodeid.split("::", 1)[0], _PLAIN)


def _test_bound(config: pytest.Config) -> float:
    """pytest-timeout's bound (`--timeout`, else pyproject's `timeout`: 300 s, what a test
    takes at most at load 3 on two cores), times FIXUP_TIME_SCALE; 0 stays 0 (none)."""
    given = config.getoption("timeout", None)
    return scaled(float(config.getini("timeout") if given is None else given) or 0.0)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """--no-servers drops every test that reaches a server through the `servers` fixture.
    A test with no timeout mark of its own gets pytest-timeout's bound times
    FIXUP_TIME_SCALE. Under pytest-xdist, once every other plugin has ordered the items
    (pytest-randomly shuffles them), the files are queued by `_PLACE` (a stable sort)."""
    bound = _test_bound(config)
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(bound))
    if config.getoption("--no-servers"):
        needs = [item for item in items if "servers" in getattr(item, "fixturenames", ())]
        if needs:
            config.hook.pytest_deselected(items=needs)
            items[:] = [item for item in items if item not in needs]
    yield
    if hasattr(config, "workerinput"):  # a pytest-xdist worker
        items.sort(key=_place)
    elif "MUTANT_UNDER_TEST" in os.environ:
        items.sort(key=_first_of_its_file(items))


def _first_of_its_file(items: list[pytest.Item]) -> Callable[[pytest.Item], int]:
    """mutmut names the tests it runs one by one, in no order (its clean run) or by
    duration (a mutant's), so a file's tests come interleaved with others' and its
    module-scoped fixtures (a migrated database, a server) are set up again at each
    switch: a stable sort by where each file first appears keeps them together."""
    first: dict[Path, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.path, index)
    return lambda item: first[item.path]


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outside pytest-timeout's: waiting is no test time
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A heavy file's test runs holding the run's lock (one at a time across workers)."""
    workerinput: dict[str, Any] | None = getattr(item.config, "workerinput", None)
    if workerinput is None or item.nodeid.split("::", 1)[0] not in HEAVY:
        return (yield)
    path = Path(tempfile.gettempdir()) / f"fixup-tests-{workerinput['testrunuid']}.heavy"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        return (yield)


_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def pytest_configure(config: pytest.Config) -> None:
    """Orphans of the processes a test starts (a service's workers, a daemonised server)
    are re-parented to this process instead of init, so the end of the run can see them.
    Under `make test`'s parallel workers (pytest-xdist) each worker is a reaper of its
    own, and what a worker leaves behind when it exits comes up to the controller; each
    worker's servers listen on ports of its own lane (tools/local/ports.py)."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:  # "gw0", "gw1", ...: lane 0 stays for commands run by hand
        lane = 1 + int(workerinput["workerid"].removeprefix("gw")) % (ports.LANES - 1)
        os.environ[ports.LANE_VARIABLE] = str(lane)
    # not under mutmut, whose parent runs its stats and clean sessions in process and then
    # takes any child it waits for (os.wait) for one of its workers: an orphan re-parented
    # to it failed a run (`KeyError: <pid>` in mutmut's wait_for_result, mutmut 3.8.1)
    if sys.platform == "linux" and "MUTANT_UNDER_TEST" not in os.environ:
        ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1)
    if "MUTANT_UNDER_TEST" in os.environ:  # a mutmut run (docs/mutation.md)
        import grpc.aio

        grpc.aio.server = _no_grpc_server_under_mutmut


GRPC_UNDER_MUTMUT = (
    "a gRPC server hangs in mutmut's forked workers at teardown, so every mutant would time "
    "out and count as killed: keep gRPC fixtures out of [tool.mutmut]'s test selection "
    "(call the service's handler in process, as tests/integration/test_points_service.py does)"
)


def _no_grpc_server_under_mutmut(*args: Any, **kwargs: Any) -> Any:
    """Fails mutmut's stats run, loudly, instead of a run of false kills."""
    raise RuntimeError(GRPC_UNDER_MUTMUT)


@pytest.hookimpl(trylast=True)  # after pytest-xdist has shut its workers down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A process the suite started must not outlive it: one still running (given time to
    exit) fails the run, named, and is killed."""
    left = [p for p in psutil.Process().children(recursive=True) if not _is_helper(p)]
    _, alive = psutil.wait_procs(left, timeout=PROCESS_MARGIN)
    if not alive:
        return
    names = []
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            names.append(f"{proc.pid}: {' '.join(proc.cmdline())[:200]}")
            proc.kill()
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    sys.stderr.write("\nprocesses started by the suite outlived it (killed now):\n")
    sys.stderr.write("".join(f"  {name}\n" for name in names))


def _is_helper(proc: psutil.Process) -> bool:
    """Python's multiprocessing resource tracker lives as long as this process, by design."""
    try:
        return "multiprocessing.resource_tracker" in " ".join(proc.cmdline())
    except psutil.Error:
        return True
