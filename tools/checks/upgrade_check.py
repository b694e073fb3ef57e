"""The upgrade drill (issue 38): `python -m tools.checks.upgrade_check` (`make upgrade-check`).

Builds .venv-upgrade/ with the newest release of every runtime dependency (pins dropped),
the test tools at their pins and the project; runs the tests of SUITES with it; prints each
dependency's pin -> installed version, then the failed tests or "green" (exit 1 when a test
failed). It runs in .venv, apart from the venv it builds; pyproject's requirements are
read by `packaging`, pip's own parser.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
import venv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-upgrade"
# the extras the tests need besides the runtime, pins kept, when present (bench: the
# benchmark's peers and scripts run in tests/integration)
TOOL_EXTRAS = ("ops", "codegen", "test", "dev", "bench")
# pins held back for a known upstream break: what the drill's failures then mean
HELD_BACK = {
    "PyMySQL": "aiomysql 0.3.2 imports escape_bytes_prefixed, which PyMySQL 1.2 replaced by a "
    "placeholder: every bytes argument fails (https://github.com/aio-libs/aiomysql/issues/1080)",
}
SUITES: tuple[tuple[str, ...], ...] = (
    ("tests/unit", "--no-servers"),
    ("tests/codegen", "tests/integration"),  # the generated code against the real servers
)


def _requirement(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"cannot unpin {text!r}: {exc}") from None


def unpinned(requirement: str) -> str:
    """The requirement with its version specifiers dropped, extras and marker kept, in
    packaging's normal form: "betterproto2[grpclib]==0.10.0" -> "betterproto2[grpclib]"."""
    parsed = _requirement(requirement)
    if parsed.url:
        return requirement  # a direct reference names one artifact: nothing to unpin
    parsed.specifier = SpecifierSet()
    return str(parsed)


def pins(requirements: Sequence[str]) -> dict[str, str]:
    """Distribution name -> its pinned version ("==" dropped), or its specifier when it is
    not an exact pin ("" when there is none)."""
    out: dict[str, str] = {}
    for requirement in requirements:
        parsed = _requirement(requirement)
        specs = list(parsed.specifier)
        exact = len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version
        out[parsed.name] = specs[0].version if exact else str(parsed.specifier)
    return out


def report(pinned: Mapping[str, str], installed: Mapping[str, str | None]) -> list[str]:
    """One line per dependency, "name  pin -> installed", moved ones marked with "*"."""
    width = max(map(len, pinned), default=0)
    lines = []
    for name, pin in pinned.items():
        got = installed.get(name)
        mark = "" if got == pin else "  *" if got else "  * not installed"
        lines.append(f"  {name:<{width}}  {pin or '(unpinned)'} -> {got or '-'}{mark}")
    moved = sum(1 for name, pin in pinned.items() if installed.get(name) != pin)
    lines.append(f"  {moved} of {len(pinned)} moved")
    return lines


@dataclass(frozen=True)
class Outcome:
    failed: tuple[str, ...]  # the test ids of the short summary's FAILED and ERROR lines
    summary: str  # pytest's closing line, "3 failed, 120 passed in 60.12s"


def outcome(output: str) -> Outcome:
    """What a pytest run printed (with -ra) -> its failed test ids and closing line."""
    lines = output.splitlines()
    failed: list[str] = []
    in_summary = False
    for line in lines:
        if re.fullmatch(r"=+ short test summary info =+", line.strip()):
            in_summary = True
        elif in_summary and line.startswith(("FAILED ", "ERROR ")):
            test_id = line.split(" ", 1)[1].split(" - ", 1)[0].strip()
            if test_id not in failed:
                failed.append(test_id)
    closing = next((line.strip("= ") for line in reversed(lines) if line.strip()), "")
    return Outcome(tuple(failed), closing)


def tool_requirements(optional: Mapping[str, list[str]]) -> list[str]:
    """The test tools, pins kept, from the extras of TOOL_EXTRAS that exist."""
    return [r for extra in TOOL_EXTRAS for r in optional.get(extra, [])]


def environment() -> dict[str, str]:
    """os.environ as if the drill's venv were activated, the project on the path."""
    env = dict(os.environ, VIRTUAL_ENV=str(VENV), PYTHONPATH=str(ROOT))
    env["PATH"] = os.pathsep.join([str(VENV / "bin"), env.get("PATH", "")])
    env.pop("PYTHONHOME", None)
    return env


def build(runtime: Sequence[str], tools: Sequence[str]) -> Path:
    """A fresh venv: newest runtime dependencies, pinned tools, the project. -> its python."""
    venv.EnvBuilder(clear=True, with_pip=True).create(VENV)
    python = VENV / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    env = environment()
    subprocess.run([*pip, "--upgrade", "pip"], check=True, env=env)
    subprocess.run([*pip, "--upgrade", *map(unpinned, runtime), *tools], check=True, env=env)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, env=env, cwd=ROOT)
    return python


def installed_versions(python: Path, names: Sequence[str]) -> dict[str, str | None]:
    """Each distribution's version in the venv of `python` (None: not installed)."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try:\n        return m.version(n)\n"
        "    except m.PackageNotFoundError:\n        return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [str(python), "-c", code, *names], check=True, capture_output=True, text=True
    )
    versions: dict[str, str | None] = json.loads(done.stdout)
    return versions


def run_suite(python: Path, args: Sequence[str]) -> tuple[int, Outcome]:
    """pytest with `python`, its output shown as it comes and kept for the report."""
    command = [str(python), "-m", "pytest", *args, "-ra", "-p", "no:cacheprovider"]
    print("$", " ".join(command[1:]), flush=True)
    kept: list[str] = []
    with subprocess.Popen(
        command, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            kept.append(line)
    return proc.returncode, outcome("".join(kept))


def main() -> int:
    started = time.monotonic()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime: list[str] = project["dependencies"]
    python = build(runtime, tool_requirements(project.get("optional-dependencies", {})))
    pinned = pins(runtime)
    versions = installed_versions(python, list(pinned))
    results = [(args, *run_suite(python, args)) for args in SUITES]
    print("\nupgrade drill: runtime dependencies, pinned -> newest installed (* moved)")
    print("\n".join(report(pinned, versions)))
    failed = False
    for args, code, result in results:
        print(f"{' '.join(args)}: {result.summary} (pytest exit {code})")
        print("".join(f"  FAILED {test_id}\n" for test_id in result.failed), end="")
        failed = failed or code != 0
    for name, why in HELD_BACK.items():
        if versions.get(name) not in (None, pinned.get(name)):
            print(f"held back: {name} {pinned.get(name)} -> {versions[name]}: {why}")
    print(f"{'FAILED' if failed else 'green'} in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
