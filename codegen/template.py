"""The shape of generated code lives in templates/*.tmpl (module.tmpl for what every driver
shares, one file per driver for its calls), so a reader sees a generated file in one place.

A template file is a list of sections; a line `== name ==` opens one. Lines `uses: <import>`
right after the header name the imports the section needs; `#:` lines are comments. The rest
is Python with `$placeholders` (string.Template): a multi-line value is indented like the line
it stands on, and a line holding only a placeholder whose value is empty is left out. Code
computes the values (expressions, argument lists); templates hold every statement and line.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from string import Template

from .naming import PACKAGE, RUNTIME

_HEADER = re.compile(r"^== (.+) ==$")
# a sync driver whose template is its async twin's read without `async ` and `await `
SYNC_TWINS = {"psycopg-sync": "psycopg"}
_ONLY_PLACEHOLDER = re.compile(r"^\s*\$(\w+|\{\w+\})$")


@dataclass(frozen=True)
class Section:
    uses: tuple[Template, ...]
    lines: tuple[tuple[str, Template, bool], ...]  # (indent, template, only a placeholder)

    def render(self, into: set[str], **values: str) -> str:
        """The section's text with `values` (the imports it uses are added `into`)."""
        into.update(use.substitute(values, runtime=RUNTIME) for use in self.uses)
        out: list[str] = []
        for indent, line, alone in self.lines:
            text = line.substitute(values, runtime=RUNTIME)
            if alone and not text.strip():
                continue
            first, *rest = text.split("\n")
            out.append(first if first.strip() else "")
            out += [f"{indent}{piece}" if piece else "" for piece in rest]
        return "\n".join(out)


def parse_section(lines: list[str]) -> Section:
    uses: list[Template] = []
    while lines and lines[0].startswith("uses: "):
        uses.append(Template(lines.pop(0).removeprefix("uses: ")))
    body = tuple(
        (line.removesuffix(line.lstrip()), Template(line), bool(_ONLY_PLACEHOLDER.match(line)))
        for line in lines
        if not line.startswith("#:")
    )
    return Section(tuple(uses), body)


@functools.cache
def load(name: str) -> dict[str, Section]:
    """The sections of templates/<name>.tmpl (shipped as package data), or of a sync
    twin's async template (SYNC_TWINS) without `async` and `await`."""
    twin = SYNC_TWINS.get(name)
    path = resources.files(PACKAGE).joinpath("templates", f"{twin or name}.tmpl")
    text = path.read_text("utf-8")
    if twin is not None:
        text = text.replace("async ", "").replace("await ", "")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if match := _HEADER.match(line):
            current = sections.setdefault(match[1], [])
        elif current is not None:
            current.append(line)
    return {key: parse_section(lines) for key, lines in sections.items()}
