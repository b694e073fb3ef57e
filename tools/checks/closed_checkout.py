"""The suite where a newcomer runs it: a sample of the tests that start servers (SAMPLE), run
from a copy of the checkout under a 0700 directory while two CPU-burning processes load the
machine, bounded in time, failing naming what broke (docs/testing.md).

    python -m tools.checks.closed_checkout [--keep] [--burners N]

The copy is the working tree as git sees it (tracked and new files, nothing ignored). `make
test` runs it without burners, the rest of the suite busy beside it
(tests/integration/test_closed_checkout.py); `make test-closed-checkout` by hand, with them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import suppress
from pathlib import Path

from tools.local.server_homes import root_of
from tools.time_scale import scaled

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (
    "tests/integration/test_pgbouncer.py::test_asyncpgs_statement_cache_breaks_there_and_the_pool_turns_it_off",
    "tests/integration/test_backup_restore.py::test_a_time_before_the_first_backup_is_refused",
    "tests/reliability/test_faults.py::test_postgres_stopped_and_restarted_under_write_load",
)
BURNERS = 2  # two busy processes on top of whatever runs: a 2-core machine at load 3 or more
# the sample takes about 70 s alone on two cores, 100 s under the burners
BOUND = scaled(120.0)


def copy_tree(destination: Path) -> None:
    """The working tree's files git knows of (tracked or new, not ignored) into
    `destination`; a tracked file deleted in the tree is left out."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def failed_tests(output: str) -> list[str]:
    """pytest's `-rfE` summary lines: the tests that failed or errored, with why."""
    return [line for line in output.splitlines() if re.match(r"(FAILED|ERROR) ", line)]


def run(keep: bool, burners: int = BURNERS, bound: float = BOUND) -> int:
    """The sample from a fresh 0700 copy beside `burners` CPU burners, within `bound`
    seconds; 0 when every test passed."""
    closed = Path(tempfile.mkdtemp(prefix="fixup-closed-"))  # 0700, like `mktemp -d`
    checkout = closed / "fixup"
    busy: list[subprocess.Popen[bytes]] = []
    try:
        copy_tree(checkout)
        loop = "while True: pass"
        busy = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(burners)]
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p"]
        command += ["no:cacheprovider", "-rfE", "--no-header", *SAMPLE]
        # COLUMNS: pytest's summary keeps each failure's reason on its line
        env = {**os.environ, "PYTHONPATH": str(checkout), "COLUMNS": "400"}
        print(
            f"closed checkout: {checkout} (0700 parent), {burners} CPU burners; {' '.join(SAMPLE)}"
        )
        pytest = subprocess.Popen(
            command, cwd=checkout, env=env, text=True, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = pytest.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            os.killpg(pytest.pid, signal.SIGINT)  # pytest's fixtures stop their servers
            out, _ = pytest.communicate(timeout=bound)
            print(f"{out[-4000:]}\nclosed checkout: the sample did not finish within {bound:.0f} s")
            return 1
        if pytest.returncode != 0:
            broke = failed_tests(out) or [f"pytest exited {pytest.returncode}"]
            print(f"{out[-6000:]}\nclosed checkout: broke:\n  " + "\n  ".join(broke))
            return 1
        print(f"closed checkout: {out.strip().splitlines()[-1]}")
        return 0
    finally:
        for burner in busy:
            burner.kill()
            burner.wait()
        if not keep:
            shutil.rmtree(closed, ignore_errors=True)
            with suppress(OSError):  # the copy's server root, empty once its servers stopped
                root_of(checkout / "var").rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.checks.closed_checkout", description=__doc__
    )
    parser.add_argument("--keep", action="store_true", help="leave the copy (its var/ logs)")
    parser.add_argument(
        "--burners", type=int, default=BURNERS, help=f"CPU-burning processes (default {BURNERS})"
    )
    args = parser.parse_args(argv)
    return run(args.keep, args.burners)


if __name__ == "__main__":
    sys.exit(main())
