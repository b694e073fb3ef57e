"""docs/recipes.md's "Add a service" followed as written, with its own name, on a clone of
HEAD: each `make new-service` command the recipe gives, and the same command on every
other engine it names (`db=mysql`), then the clone's whole tests/unit, which must stay
green on the tree of a person who followed the recipe. A unit test that takes the
recipe's name (`invoices`) as a free one fails there. tests/e2e/test_new_service.py checks
the scaffold itself, with names no person would choose; this one, only the recipe's names.

One tree holds every variant, so tests/unit runs once over all of them: the recipe's
first command with its own name, each other one with the name and what varies appended
(`invoicesgrpc`, `invoicesmysql`). Each scaffold costs about twenty seconds at load 3 (its
repository typed by the test server), tests/unit on two workers two to three minutes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recipes_support import run_in, section
from tests.servers import DatabaseFactory
from tools.local.service_process import ROOT
from tools.time_scale import scaled

# what `make test svc=` selects it for (tests/selection.py): none, the service it
# scaffolds is the recipe's, in a clone
EXERCISES = ()

VENV = Path(sys.executable).parent.parent
MAKE = ["make", "--no-print-directory", "-o", "install", "-o", ".venv/.installed-stamp"]
# tests/unit's scanners and linters, installed beside the tree (not tracked)
BESIDE = (".venv-scan", *(f"tools/{t}/node_modules" for t in ("dclint", "apilint", "gatewaylint")))
# one scaffold (about twenty seconds at load 3), times the factor
STEP_TIMEOUT = scaled(80.0)
# tests/unit on two workers over the tree with every variant: two to three minutes at load 3
UNIT_TIMEOUT = scaled(240.0)  # about 180 s on an idle 2-core machine


def scaffold_commands() -> list[str]:
    """The recipe's `make new-service` commands, and its first on each other engine it names
    (`db=mysql` for MariaDB)."""
    text = section("Add a service")
    commands = re.findall(r"`make (new-service [^`]+)`", text)
    first = commands[0]
    for engine in re.findall(r"`db=([a-z]+)`", text):
        variant = re.sub(r"\bdb=[a-z]+", f"db={engine}", first)
        if variant not in commands:
            commands.append(variant)
    return commands


COMMANDS = scaffold_commands()


def clone(tmp_path: Path) -> Path:
    """HEAD as a repository of its own; `.venv` and the tools tests/unit runs link to ours."""
    tree = tmp_path / "tree"
    subprocess.run(
        ["git", "clone", "--quiet", "--shared", str(ROOT), str(tree)], check=True, timeout=120
    )
    (tree / ".venv").symlink_to(VENV)
    for tool in BESIDE:
        if (ROOT / tool).exists():
            (tree / tool).symlink_to(ROOT / tool)
    return tree


def arg(command: str, key: str) -> str:
    """`key=value`'s value in a make command."""
    found = re.search(rf"\b{key}=([a-z]+)", command)
    assert found, f"{key}= not in {command!r}"
    return found[1]


def test_every_variant_of_the_recipe_is_followed() -> None:
    assert {arg(c, "db") for c in COMMANDS} == {"postgresql", "mysql"}, COMMANDS
    assert any(c.endswith(" grpc=1") for c in COMMANDS), COMMANDS
    assert len({arg(c, "name") for c in COMMANDS}) == 1, COMMANDS  # the recipe's service


def variant_name(index: int, command: str) -> str:
    """The recipe's name for its first command; the name and what varies for the others
    (a grpc=1 flag, else the engine), so one tree holds them all."""
    name = arg(command, "name")
    if index == 0:
        return name
    return name + ("grpc" if command.endswith(" grpc=1") else arg(command, "db"))


@pytest.mark.timeout(STEP_TIMEOUT * len(COMMANDS) + UNIT_TIMEOUT + scaled(40.0))  # and the clone
def test_tests_unit_stay_green_after_the_recipe(tmp_path: Path, databases: DatabaseFactory) -> None:
    tree = clone(tmp_path)
    env = dict(os.environ)
    for index, command in enumerate(COMMANDS):
        name, engine = variant_name(index, command), arg(command, "db")
        command = re.sub(r"\bname=[a-z]+", f"name={name}", command)
        # make sqlc types the new repository on the test server (a database of this run)
        env[f"{name.upper()}_DATABASE_URL"] = databases.create(name, engine)
        run_in(tree, [*MAKE, *command.split()], STEP_TIMEOUT, env)
        assert (tree / "services" / name).is_dir(), command
        assert f'Microservice("{name}",' in (tree / "lib" / "registry.py").read_text()
    # bench/'s imports are its own: the scaffold writes nothing there
    bench = "tests/unit/test_dependencies.py::test_every_import_is_declared[bench]"
    pytest_ = [str(VENV / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "-n", "2", "-x"]
    run_in(tree, [*pytest_, "tests/unit", "--deselect", bench], UNIT_TIMEOUT, env)
