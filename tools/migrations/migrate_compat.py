"""`make migrate-compat`: the previous release keeps working on the schema after the new
migrations (the expand/contract rule of ADR 0018, checked by running it).

The previous release (`--base REV`, else the parent of the last commit that changed a
migration) is exported to a temporary folder, its migrations/ replaced by the current
ones, and its own API tests run there. A test that fails is run once more on the same
schema: a failure that holds names the first new migration that breaks them; one that does
not (the release's test under a loaded machine) is named in the report.

Usage: python -m tools.migrations.migrate_compat [--base REV] [--migrations DIR] [--tests PATH ...]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tools.checks.upgrade_check import outcome
from tools.migrations.migrate_lint import up_migrations

ROOT = Path(__file__).resolve().parents[2]

# The services' API tests: every route of every service, against real servers, in a few
# minutes. Paths of the previous release's tree; the ones it does not have are skipped.
DEFAULT_TESTS = (
    "tests/integration/test_departments_api.py",
    "tests/integration/test_users_profiles.py",
    "tests/integration/test_users_handlers.py",
    "tests/integration/test_catalog_api.py",
    "tests/integration/test_orders_api.py",
    "tests/integration/test_orders_moves.py",
    "tests/integration/test_chat_api.py",
    "tests/integration/test_points_grpc.py",
    "tests/integration/test_points_service.py",
)


class CompatError(RuntimeError):
    pass


def git(*args: str) -> str:
    run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise CompatError(f"git {' '.join(args)}: {run.stderr.strip()}")
    return run.stdout.strip()


def default_base() -> str:
    """The commit the running release was built from, as far as migrations go."""
    if git("status", "--porcelain", "--", "migrations/"):
        return git("rev-parse", "HEAD")
    last = git("log", "-1", "--format=%H", "--", "migrations/*/*.sql")
    if not last:
        raise CompatError("no commit changed migrations/: nothing to compare with")
    return git("rev-parse", f"{last}^")


def export(rev: str, into: Path) -> None:
    """The tree of `rev` (tracked files only), like a worktree without registering one."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=False
    )
    if data.returncode != 0:
        raise CompatError(f"git archive {rev}: {data.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as tar:
        tar.extractall(into, filter="data")


def names(folder: Path) -> set[str]:
    """'<db>/<file>' of every up-migration under `folder`."""
    return {p.relative_to(folder).as_posix() for p in up_migrations(folder)}


def use_migrations(tree: Path, source: Path, leave_out: tuple[str, ...] = ()) -> None:
    """tree/migrations := source's migrations, without the up-migrations `leave_out`."""
    target = tree / "migrations"
    shutil.rmtree(target)
    shutil.copytree(source, target)
    for rel in leave_out:
        up = target / rel
        up.unlink()
        up.with_name(up.name.removesuffix(".sql") + ".rollback.sql").unlink(missing_ok=True)


def run_tests(tree: Path, tests: list[str], timeout: float) -> tuple[int, str]:
    env = os.environ | {"PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    try:
        run = subprocess.run(
            [*cmd, "-rf", "--timeout", "120", *tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 1, f"the previous release's tests ran longer than {timeout:g} s"
    return run.returncode, run.stdout + run.stderr


def run_confirmed(tree: Path, tests: list[str], timeout: float) -> tuple[int, str, list[str]]:
    """run_tests, then the tests that failed once more on the same schema: (code, output,
    the tests that passed the second time). A migration that breaks the release fails its
    tests every time; a test that fails once and then passes met a loaded machine (a
    release's tests predate the fixes made since to their own bounds): it is named, not
    failed on."""
    code, output = run_tests(tree, tests, timeout)
    failed = list(outcome(output).failed)
    if code == 0 or not failed or run_tests(tree, failed, timeout)[0] != 0:
        return code, output, []
    return 0, output, failed


def check(base: str, migrations: Path, tests: list[str] | None, timeout: float) -> tuple[int, str]:
    """(0, report) when the release at `base` passes its tests on `migrations`' schema."""
    short = git("rev-parse", "--short", base)
    with tempfile.TemporaryDirectory(prefix="fixup-compat-") as tmp:
        tree = Path(tmp) / "release"
        export(base, tree)
        new = sorted(names(migrations) - names(tree / "migrations"))
        chosen = [t for t in (tests or DEFAULT_TESTS) if (tree / t.split("::")[0]).exists()]
        if not chosen:
            raise CompatError(f"release {short} has none of the tests {tests or DEFAULT_TESTS}")
        use_migrations(tree, migrations)
        code, output, flaked = run_confirmed(tree, chosen, timeout)
        header = f"release {short} with {len(new)} new migration(s) ({', '.join(new) or 'none'})"
        if code == 0:
            again = f"; failed once, then passed on the same schema: {', '.join(flaked)}"
            return 0, (
                f"migrate-compat: ok: {header}: {len(chosen)} test file(s) pass"
                f"{again if flaked else ''}"
            )
        failed = list(outcome(output).failed)
        culprit = new[-1] if new else None
        if len(new) > 1 and failed:  # the first new migration after which they fail
            for k in range(1, len(new)):
                use_migrations(tree, migrations, leave_out=tuple(new[k:]))
                if run_tests(tree, failed, timeout)[0] != 0:
                    culprit = new[k - 1]
                    break
        tail = "\n".join(output.strip().splitlines()[-40:])
        blame = (
            f"migration {culprit} breaks the running release"
            if culprit
            else "no new migration: the release's own tests fail"
        )
        return 1, (
            f"{tail}\n\nmigrate-compat: FAILED: {blame} ({header}); "
            f"failing: {', '.join(failed) or 'see above'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.migrations.migrate_compat", description=__doc__
    )
    parser.add_argument("--base", help="the previous release: a commit or tag")
    parser.add_argument("--migrations", type=Path, default=ROOT / "migrations")
    parser.add_argument("--tests", nargs="+", help="test paths of the release's tree")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the tests")
    args = parser.parse_args(argv)
    try:
        code, report = check(
            args.base or default_base(), args.migrations.resolve(), args.tests, args.timeout
        )
    except CompatError as exc:
        print(f"migrate-compat: {exc}", file=sys.stderr)
        return 2
    print(report)
    return code


if __name__ == "__main__":
    sys.exit(main())
