"""Mutation testing with mutmut (ADR 0017, docs/mutation.md).

    python -m tools.checks.mutation run [--only PATH]   # make mutate: every mutant, then report
    python -m tools.checks.mutation sample              # CI: a fixed-seed sample per module

The modules are `[tool.mutmut] only_mutate` of pyproject.toml. A surviving mutant must be
killed by a test or listed, with the reason it is equivalent, in docs/mutation.md as a
bullet starting with its name in backticks: `run` and `sample` fail on any other.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tools.checks import mutant_databases
from tools.local.databases import MYSQL_DEFAULT, PG_DEFAULT

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT_DOC = ROOT / "docs" / "mutation.md"
MIN_KILL_RATE = 0.90
DEFAULT_SEED = 20261123
DEFAULT_PER_MODULE = 2  # x 40 modules: the sample stays under 2 minutes (ADR 0017)
# what a scratch copy for `sample` needs: the mutated packages, the tests, their data
SCRATCH_LINKS = ("lib", "codegen", "observability", "services", "tests", "docs", "tools",
                 ".env.example")  # fmt: skip

KILLED = {1, 3}  # a test failed; pytest's internal error counts as a kill (mutmut's rule)
TIMEOUT = {24, -24, 36, 152, 255}  # the tests hung on the mutant: detected too
NAME = re.compile(r"^- `([^`]+__mutmut_\d+)`", re.MULTILINE)


def mutmut_config(root: Path = ROOT) -> dict[str, list[str]]:
    data = tomllib.loads((root / "pyproject.toml").read_text())
    config: dict[str, list[str]] = data["tool"]["mutmut"]
    return config


def modules(root: Path = ROOT) -> list[Path]:
    """The files `only_mutate` names (globs expanded), relative to `root`."""
    found: list[Path] = []
    for pattern in mutmut_config(root)["only_mutate"]:
        for path in sorted(root.glob(pattern)):
            if path.suffix == ".py" and fnmatch.fnmatch(str(path.relative_to(root)), pattern):
                found.append(path.relative_to(root))
    return found


def module_name(path: Path) -> str:
    """lib/auth/tokens.py -> lib.auth.tokens (mutmut's prefix of that file's mutants)."""
    dotted = str(path.with_suffix("")).replace(os.sep, ".")
    return dotted.removesuffix(".__init__")


def equivalent(doc: Path = EQUIVALENT_DOC) -> set[str]:
    """The mutant names docs/mutation.md lists as equivalent (with the reason beside each)."""
    return set(NAME.findall(doc.read_text())) if doc.exists() else set()


@functools.cache  # a module's mutants take mutmut a parse and a walk of its tree
def mutant_names(path: Path, root: Path = ROOT) -> tuple[str, ...]:
    """Every mutant mutmut makes of `path`, named as mutmut names them, in its order (its
    text as it is when first asked: the tools and tests never change the tree they ask of)."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    mutated = mutate_file_contents(str(path), (root / path).read_text())
    return tuple(get_mutant_name(path, name) for name in mutated.mutant_names)


@dataclass
class Tally:
    module: str
    total: int = 0
    killed: int = 0
    equivalent: list[str] = field(default_factory=list)
    unexplained: dict[str, str] = field(default_factory=dict)  # name -> status
    stale: list[str] = field(default_factory=list)  # listed as equivalent, yet killed

    @property
    def kill_rate(self) -> float:
        """Killed (timeouts included) over every mutant: equivalent ones count against."""
        return self.killed / self.total if self.total else 1.0

    @property
    def score(self) -> float:
        """The mutation score: killed over the mutants that can be killed (equivalent ones
        are left out of the denominator); the 90% minimum applies to it."""
        killable = self.total - len(self.equivalent)
        return self.killed / killable if killable else 1.0


def status_of(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    return {None: "not checked", 0: "survived", 5: "no tests", 33: "no tests"}.get(
        code, f"suspicious (exit {code})"
    )


def results(workdir: Path, paths: list[Path]) -> dict[Path, dict[str, int | None]]:
    """Each module's mutant -> mutmut's exit code, from mutants/<path>.meta."""
    found: dict[Path, dict[str, int | None]] = {}
    for path in paths:
        meta = workdir / "mutants" / f"{path}.meta"
        if not meta.exists():
            raise SystemExit(f"{meta} is missing: run `make mutate` first")
        found[path] = json.loads(meta.read_text())["exit_code_by_key"]
    return found


def tally(
    codes: dict[Path, dict[str, int | None]], known: set[str], only: set[str] | None = None
) -> list[Tally]:
    tallies = []
    for path, by_name in codes.items():
        t = Tally(module_name(path))
        for name, code in sorted(by_name.items()):
            if only is not None and name not in only:
                continue
            t.total += 1
            status = status_of(code)
            if status in ("killed", "timeout"):
                t.killed += 1
                if name in known:
                    t.stale.append(name)
            elif name in known:
                t.equivalent.append(name)
            else:
                t.unexplained[name] = status
        tallies.append(t)
    return tallies


def table(tallies: list[Tally]) -> str:
    lines = [
        "| module | mutants | killed | equivalent | unexplained | killed of all | score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in tallies:
        if not t.total:
            continue  # a package's __init__: nothing to mutate
        lines.append(
            f"| {t.module} | {t.total} | {t.killed} | {len(t.equivalent)} | "
            f"{len(t.unexplained)} | {t.kill_rate:.1%} | {t.score:.1%} |"
        )
    return "\n".join(lines)


def verdict(tallies: list[Tally], *, min_rate: float) -> list[str]:
    """What is wrong: an unexplained survivor, or a module under the minimum kill rate."""
    problems = []
    for t in tallies:
        for name, status in t.unexplained.items():
            problems.append(f"{name}: {status} (kill it with a test or list it as equivalent)")
        for name in t.stale:
            problems.append(f"{name}: listed as equivalent but killed (drop its line)")
        if t.total and t.score < min_rate:
            problems.append(f"{t.module}: mutation score {t.score:.1%} < {min_rate:.0%}")
    return problems


WAIT_CRASH = "in wait_for_result"  # mutmut's traceback when os.wait returned no worker
WAIT_ATTEMPTS = 2


def run_mutmut(workdir: Path, names: list[str], max_children: int, *, niced: bool) -> None:
    """mutmut run in `workdir`; the names limit it. `niced` for the hour-long full run (the
    machine is shared); the sample runs as `make test`'s other workers do, since niced
    beside them it got a tenth of a core's share (26 minutes in CI, and a test's mail
    wait ran out in its clean run). The databases its pytest sessions kept for each other
    are dropped after it."""
    command = ["nice", "-n", "10"] if niced else []
    command += [sys.executable, "-m", "mutmut", "run"]
    command += ["--max-children", str(max_children), *names]
    for attempt in range(1, WAIT_ATTEMPTS + 1):
        try:
            done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
        finally:
            drop_kept_databases()
        if done.returncode == 0 or WAIT_CRASH not in done.stdout + done.stderr:
            break
        # mutmut 3.8.1 waits for any child (os.wait) and takes it for a worker: a child its
        # in-process sessions started ends its run with KeyError. Its results are kept per
        # mutant, so a second run goes on where the first stopped; the verdicts are its own
        sys.stderr.write(f"mutmut took a child of its own for a worker (run {attempt})\n")
    if done.returncode != 0:
        sys.stdout.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"mutmut run failed (exit {done.returncode})")


def drop_kept_databases() -> list[str]:
    """Drop the migrated databases mutmut's sessions kept for each other
    (tools/checks/mutant_databases.py), but those a session of a run still going holds."""
    pg = os.environ.get("TEST_PG_DSN") or PG_DEFAULT
    my = os.environ.get("TEST_MYSQL_DSN") or MYSQL_DEFAULT
    try:
        return mutant_databases.drop_unclaimed(pg, my, scope=mutant_databases.scope_from_env())
    except Exception as exc:  # the servers of a run in containers are gone with them
        print(f"the kept databases were not dropped ({exc})")
        return []


def selected(only: list[str]) -> list[Path]:
    """The modules `--only` names (each must be one of `only_mutate`'s); all when empty."""
    every = modules()
    chosen = [Path(path) for path in only]
    unknown = [str(path) for path in chosen if path not in every]
    if unknown:
        raise SystemExit(f"not in [tool.mutmut] only_mutate: {', '.join(unknown)}")
    return chosen or every


def report(
    workdir: Path = ROOT, *, min_rate: float = MIN_KILL_RATE, only: list[str] | None = None
) -> int:
    paths = selected(only or [])
    prefixes = tuple(module_name(path) + "." for path in paths)
    known = {name for name in equivalent() if name.startswith(prefixes)}
    codes = results(workdir, paths)
    tallies = tally(codes, known)
    print(table(tallies))
    every = {name for by_name in codes.values() for name in by_name}
    problems = verdict(tallies, min_rate=min_rate)
    problems += [f"{n}: listed as equivalent but no such mutant" for n in sorted(known - every)]
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


def run(max_children: int, only: list[str] | None = None) -> int:
    """Every mutant (of the `only` modules when given: the others stay unchecked), from a
    fresh mutants/ (its copies of unmutated files go stale)."""
    names = [module_name(path) + ".*" for path in selected(only or [])] if only else []
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    started = time.monotonic()
    run_mutmut(ROOT, names, max_children, niced=True)
    print(f"mutmut: {time.monotonic() - started:.0f} s")
    return report(ROOT, only=only)


def choose(seed: int, per_module: int, known: set[str]) -> dict[Path, list[str]]:
    """`per_module` mutants of each module, none of them a listed equivalent, by `seed`."""
    rng = random.Random(seed)
    chosen = {}
    for path in modules():
        candidates = [n for n in mutant_names(path) if n not in known]
        if not candidates:
            continue  # a package's __init__: nothing to mutate
        chosen[path] = sorted(rng.sample(candidates, min(per_module, len(candidates))))
    return chosen


def sample(seed: int, per_module: int, max_children: int) -> int:
    """Run the chosen mutants in a scratch copy (a developer's mutants/ stays as it is);
    fail when one is not killed."""
    known = equivalent()
    chosen = choose(seed, per_module, known)
    names = [name for names in chosen.values() for name in names]
    print(f"seed {seed}: {len(names)} mutants, {per_module} per module of {len(chosen)}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fixup-mutation-") as scratch:
        workdir = Path(scratch)
        for name in SCRATCH_LINKS:
            (workdir / name).symlink_to(ROOT / name)
        shutil.copy2(ROOT / "pyproject.toml", workdir / "pyproject.toml")
        run_mutmut(workdir, names, max_children, niced=False)
        tallies = tally(results(workdir, list(chosen)), known, only=set(names))
    print(table(tallies))
    problems = verdict(tallies, min_rate=1.0)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"sample: {time.monotonic() - started:.0f} s")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.checks.mutation", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="every mutant (make mutate), then report")
    run_parser.add_argument("--max-children", type=int, default=2)
    run_parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATH",
        help="only this module of only_mutate (a path; repeatable)",
    )
    sample_parser = commands.add_parser("sample", help="a fixed-seed sample (CI)")
    sample_parser.add_argument("--max-children", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.max_children, args.only)
    return sample(DEFAULT_SEED, DEFAULT_PER_MODULE, args.max_children)


if __name__ == "__main__":
    sys.exit(main())
