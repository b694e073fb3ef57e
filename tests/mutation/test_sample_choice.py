"""The CI sample's choice (tests/mutation/test_sample.py runs it): fixed by its seed, and
every test of mutmut's selection can be named on a command line. In a file of their own so
that another worker runs them while the sample holds its own (docs/testing.md)."""

from __future__ import annotations

import os
import subprocess
import sys

from tools.checks import mutation
from tools.time_scale import scaled


def test_the_sample_is_fixed_by_the_seed_and_skips_equivalents() -> None:
    known = mutation.equivalent()
    first = mutation.choose(mutation.DEFAULT_SEED, 3, known)
    again = mutation.choose(mutation.DEFAULT_SEED, 3, known)
    assert first == again
    assert set(first) == {p for p in mutation.modules() if p.name != "__init__.py"}
    for path, names in first.items():
        prefix = mutation.module_name(path) + "."
        assert len(names) == 3
        assert all(name.startswith(prefix) and name not in known for name in names)
    assert mutation.choose(mutation.DEFAULT_SEED + 1, 3, known) != first


def test_every_selected_test_can_be_named_on_the_command_line() -> None:
    """mutmut runs a mutant's tests by node id; an id pytest cannot resolve (a parameter
    id holding "::", as SQL casts do, or one made of a random value) makes that run a usage
    error, which mutmut counts as a kill. So no test of the selection may have one."""
    config = mutation.mutmut_config()
    selection = [*config["pytest_add_cli_args_test_selection"], *config["pytest_add_cli_args"]]

    ids = collected(*selection)
    assert len(ids) > 500
    assert [i for i in ids if "::" in i.partition("[")[2]] == []
    # named back in another process (an id made of a random value is not found there),
    # after a collection of the files in that same process, as mutmut does (a repr() id
    # with quotes and backslashes is not found there)
    again = subprocess.run(
        [sys.executable, "-c", _RENAME, *config["pytest_add_cli_args"], "--", *ids],
        cwd=mutation.ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert again.returncode == 0, again.stdout[-3000:]


_RENAME = """
import sys, pytest
split = sys.argv.index("--")
extra, ids = sys.argv[1:split], sys.argv[split + 1 :]
files = sorted({i.split("::")[0] for i in ids})
pytest.main(["--collect-only", "-q", "-p", "no:randomly", *extra, *files])
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:randomly", *extra, *ids]))
"""


def collected(*args: str, mutmut: bool = False) -> list[str]:
    """The ids `pytest --collect-only` lists, in its order (`mutmut`: as under mutmut)."""
    env = {k: v for k, v in os.environ.items() if k != "MUTANT_UNDER_TEST"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *args],
        cwd=mutation.ROOT,
        env=env | ({"MUTANT_UNDER_TEST": ""} if mutmut else {}),
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=True,
    )
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_under_mutmut_each_files_tests_run_together_in_the_order_first_named() -> None:
    """mutmut names its tests one by one in no file order; tests/conftest.py keeps each
    file's together (its module fixtures set up once), the file named first first."""
    files = ("tests/unit/test_jwks.py", "tests/unit/test_http_parsing.py")
    ids = collected(*files)
    jwks, parsing = ([i for i in ids if i.startswith(f + "::")][:2] for f in files)
    interleaved = [parsing[0], jwks[0], parsing[1], jwks[1]]
    assert collected(*interleaved, mutmut=True) == [parsing[0], parsing[1], jwks[0], jwks[1]]
    assert collected(*interleaved) == interleaved  # outside mutmut the order given stays
