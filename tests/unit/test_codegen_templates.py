"""The plugin's templates (codegen/templates/*.tmpl): the rules of codegen/template.py, and a
section for every command in every driver's template."""

from __future__ import annotations

from string import Template

import pytest

from codegen.__main__ import DRIVERS
from codegen.naming import RUNTIME
from codegen.plan import COMMANDS, REFUSED_COMMANDS
from codegen.template import Section, load, parse_section

ALL_DRIVERS = sorted({d for drivers in DRIVERS.values() for d in drivers})


def section(text: str) -> Section:
    return parse_section(text.split("\n"))


def test_a_multi_line_value_is_indented_like_its_line_and_keeps_blank_lines() -> None:
    s = section("def f():\n    $body")
    assert s.render(set(), body="x = 1\n\nreturn x") == "def f():\n    x = 1\n\n    return x"


def test_a_line_that_is_only_an_empty_placeholder_is_left_out() -> None:
    s = section("call(\n    $maybe\n    b,\n)")
    assert s.render(set(), maybe="") == "call(\n    b,\n)"
    assert s.render(set(), maybe="a,") == "call(\n    a,\n    b,\n)"


def test_uses_lines_add_imports_and_comment_lines_are_dropped() -> None:
    s = section("uses: from $runtime import thing\n#: a note for the reader\nthing($x)")
    imports: set[str] = set()
    assert s.render(imports, x="1") == "thing(1)"
    assert imports == {f"from {RUNTIME} import thing"}


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(KeyError, match="x"):
        section("f($x)").render(set())


@pytest.mark.parametrize("driver", ALL_DRIVERS)
def test_every_driver_template_has_every_command_and_the_stream_form(driver: str) -> None:
    """Every command but those the plugin refuses for the driver's engine (SQLite's
    :copyfrom), which have no section either."""
    engine = next(e for e, drivers in DRIVERS.items() if driver in drivers)
    commands = COMMANDS - REFUSED_COMMANDS.get(engine, frozenset())
    names = set(load(driver))
    assert commands | {"stream", ":many page", ":one row"} <= names
    assert names <= commands | {"stream", ":many page", ":one row", ":one void"}


@pytest.mark.parametrize("name", ["module", *ALL_DRIVERS])
def test_every_placeholder_of_a_template_is_a_plain_name(name: str) -> None:
    """`$$`, `${x}x` or a stray `$` would render something the emitters never fill in."""
    for sec in load(name).values():
        for _, line, _ in sec.lines:
            assert isinstance(line, Template)
            assert all(m.group("invalid") is None for m in line.pattern.finditer(line.template))
