"""Every relative link of README.md and docs/**/*.md reaches a file of the repository (and,
for `page.md#anchor`, a heading of that page), so a moved or renamed page cannot leave a
dead link; and no file of the repository points outside it to the design notes the project
was written from (the `shared` folder beside the checkout)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and [text](target "title"), not images' remote URLs; code spans removed first
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCED.sub("", page.read_text())
    found: set[str] = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        name, n = base, 1
        while name in found:  # GitHub numbers repeated headings
            name, n = f"{base}-{n}", n + 1
        found.add(name)
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(CODE.sub("", page.read_text()))


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("//")


def dead_links(page: Path) -> list[str]:
    dead = []
    for target in links(page):
        if not relative(target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or not resolved.is_relative_to(ROOT):
            dead.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            dead.append(f"{target} (no heading #{anchor} in {resolved.relative_to(ROOT)})")
    return dead


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert dead_links(page) == []


def test_the_readme_reaches_every_docs_page_in_one_click() -> None:
    readme = ROOT / "README.md"
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(readme) if relative(t)}
    pages = {p.resolve() for p in (ROOT / "docs").glob("*.md")}
    assert sorted(str(p.relative_to(ROOT)) for p in pages - linked) == []
    assert (ROOT / "docs" / "adr").resolve() in linked


def test_the_readme_stays_an_index() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_the_checker_finds_a_dead_file_and_a_dead_anchor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Title\n\n## A section — with `code`\n")
    page.write_text(
        "[ok](other.md#a-section--with-code) [gone](missing.md) [bad](other.md#nope)\n"
        "`[not a link](missing.md)` [web](https://example.com/x.md) [self](#top)\n# Top\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert dead_links(page) == [
        "missing.md (no such file)",
        "other.md#nope (no heading #nope in other.md)",
    ]


def test_nothing_points_to_the_shared_design_notes() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    pattern = re.compile(rb"\.\./shared/|shared/(?:DESIGN|API)")
    offenders = []
    for name in filter(None, files):
        path = ROOT / name.decode()
        if path.is_file() and pattern.search(path.read_bytes()):
            offenders.append(name.decode())
    assert offenders == []
