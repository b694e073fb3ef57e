"""docs/architecture.md's lib/ table is lib/'s docstrings rendered (tools.deploy.libtable's rows,
written by python -m tools.deploy.servicetable): a module added, removed or re-described
without the table, or a table row edited by hand, fails here; so does a module whose
docstring has no one-line summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.deploy import libtable, servicetable


def test_the_table_is_current() -> None:
    assert servicetable.main(["servicetable", "check"]) == 0


def test_every_lib_module_has_a_row_and_pb_is_one() -> None:
    names = [name for name, _ in libtable.modules()]
    on_disk = {
        p.relative_to(libtable.LIB).with_suffix("").as_posix().replace("/", ".")
        for p in libtable.LIB.rglob("*.py")
        if p.parts[len(libtable.LIB.parts)] != "pb"
    }
    expected = {n.removesuffix(".__init__") for n in on_disk} - {"__init__"}
    assert set(names) == expected | {"pb"}
    assert "http.body" in names
    assert "db" in names
    table = libtable.render()
    for name in names:
        assert f"[`{name}`](" in table


def test_the_row_is_the_docstrings_first_line_and_links_to_the_module() -> None:
    table = libtable.render()
    assert (
        "| [`resilience.breaker`](../lib/resilience/breaker.py) | Circuit breaker: stop calling"
        in table
    )
    for name, path in libtable.modules():
        assert (Path(libtable.PAGE.parent) / f"../{path.relative_to(libtable.ROOT)}").exists(), name


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.py"
    path.write_text(text)
    return path


def test_a_summary_that_runs_on_is_refused_naming_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libtable, "ROOT", tmp_path)
    assert libtable.summary(write(tmp_path, '"""One line.\n\nMore."""\n')) == "One line."
    assert libtable.summary(write(tmp_path, '"""One line only."""\n')) == "One line only."
    with pytest.raises(libtable.LibTableError, match=r"m\.py: the docstring's first line runs on"):
        libtable.summary(write(tmp_path, '"""A sentence that\ngoes on."""\n'))
    with pytest.raises(libtable.LibTableError, match=r"m\.py: .* ends with ':'"):
        libtable.summary(write(tmp_path, '"""The chain, outermost first:\n\na -> b"""\n'))
    with pytest.raises(libtable.LibTableError, match=r"m\.py: no module docstring"):
        libtable.summary(write(tmp_path, "x = 1\n"))


def test_a_stale_row_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "architecture.md"
    page.write_text(libtable.PAGE.read_text().replace("Circuit breaker: stop", "Breaker: stop"))
    monkeypatch.setattr(servicetable, "PAGE", page)
    assert servicetable.main(["servicetable", "check"]) == 1
    assert servicetable.main(["servicetable"]) == 0
    assert servicetable.main(["servicetable", "check"]) == 0
    assert "Circuit breaker: stop" in page.read_text()


def test_a_page_without_the_markers_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "architecture.md"
    page.write_text("# no table\n")
    monkeypatch.setattr(servicetable, "PAGE", page)
    monkeypatch.setattr(servicetable, "ROOT", tmp_path)
    assert servicetable.main(["servicetable", "check"]) == 1
    assert "has no" in capsys.readouterr().err
