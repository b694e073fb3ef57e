"""`make remove-service` refuses, before it deletes anything, a service something else uses,
naming each use (tools/new_service.py; tools/service_uses.py's `dependents`); and the shared
writer of generated files (tools/deploy/generated.py) rewrites and names only the files
whose text changes, so `new-service`, `remove-service` and every `*-gen` list what they
changed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tools import new_service
from tools.checks.closed_checkout import copy_tree
from tools.deploy.generated import write_or_check
from tools.new_service import ScaffoldError, owned_paths
from tools.service_uses import dependents
from tools.time_scale import scaled


def digest(tree: Path) -> dict[str, str]:
    return {
        str(p.relative_to(tree)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and "var" not in p.relative_to(tree).parts
    }


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the working tree's files (what git tracks or would track)."""
    copy_tree(tmp_path / "tree")
    return tmp_path / "tree"


def test_a_service_others_use_is_refused_naming_them_and_nothing_is_deleted(tree: Path) -> None:
    """departments: users calls it through lib/clients/departments.py. The command, run on
    the copy as `make remove-service` runs it, exits 2 and leaves every file as it was."""
    before = digest(tree)
    assert (tree / "services/departments/app.py").exists()
    done = subprocess.run(
        [sys.executable, "-m", "tools.new_service", "remove", "departments"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=scaled(60.0),
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.strip()
    assert message.startswith("remove-service: departments is used by "), message
    for use in ("services/users/handlers.py:", "lib/clients/departments.py", "lib/registry.py:"):
        assert use in message, message
    assert message.endswith(
        "remove those uses first (remove-service takes out only what make new-service wrote)"
    )
    assert "removed" not in done.stdout
    assert digest(tree) == before
    # the same refusal from the function, on the copy
    with pytest.raises(ScaffoldError, match=r"^departments is used by services/users/"):
        new_service.check_remove("departments", tree)


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_each_kind_of_use_is_named_and_the_service_s_own_files_are_not(tmp_path: Path) -> None:
    name = "zzqledgers"
    write(tmp_path, f"services/{name}/app.py", f'SERVICE = "{name}"\n')  # its own
    write(tmp_path, f"deploy/k8s/services/{name}/workload.yaml", f"name: {name}\n")  # its own
    write(tmp_path, "bench/mentions.py", f'"""The {name} service, in a docstring."""\n')
    write(tmp_path, "lib/registry.py", f'X = (\n    Microservice("{name}", 7, 8107),\n)\n')
    assert dependents(name, tmp_path, [tmp_path / p for p in owned_paths(name)]) == []

    write(tmp_path, "services/shop/deps.py", f"\n\nfrom lib.clients.{name} import Client\n")
    write(tmp_path, "services/shop/peer.py", f"from services import {name}\n")
    write(tmp_path, f"lib/clients/{name}.py", "class Client: ...\n")
    write(tmp_path, "lib/clients/settings.py", f'url = registry.get("{name}").local_url\n')
    write(tmp_path, "tools/run.py", f'MODULE = "services.{name}.app"\n')
    registry_text = (tmp_path / "lib/registry.py").read_text()
    shop = f'    Microservice("shop", 8, 8108, breakers=("{name}",)),\n'
    write(tmp_path, "lib/registry.py", registry_text.replace(")\n", shop + ")\n", 1))
    write(tmp_path, "deploy/k8s/services/shop/network-policy.yaml", f"a: 1\nto: {name}\n")
    assert dependents(name, tmp_path, [tmp_path / p for p in owned_paths(name)]) == [
        "services/shop/deps.py:3",
        "services/shop/peer.py:1",
        "lib/clients/settings.py:1",
        f"lib/clients/{name}.py",
        "lib/registry.py:3",
        "tools/run.py:1",
        "deploy/k8s/services/shop/network-policy.yaml:2",
    ]


def test_the_writer_rewrites_and_names_only_changed_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same, changed, new = tmp_path / "same.txt", tmp_path / "changed.txt", tmp_path / "d" / "new.txt"
    same.write_text("as it was\n")
    changed.write_text("old\n")
    stamp = same.stat().st_mtime_ns
    files = {same: "as it was\n", changed: "new\n", new: "fresh\n"}
    assert write_or_check(files, check=False, command="make x") == 0
    wrote = capsys.readouterr().out.splitlines()
    assert wrote == [f"wrote {changed}", f"wrote {new}"]
    assert same.stat().st_mtime_ns == stamp
    assert changed.read_text() == "new\n"
    assert new.read_text() == "fresh\n"
    assert write_or_check(files, check=False, command="make x") == 0
    assert capsys.readouterr().out == ""
    assert write_or_check(files, check=True, command="make x") == 0
