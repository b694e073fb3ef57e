"""docs/examples.md as something a program can run (and tools/openapi_examples.py read):
its ```sh blocks in one bash session (the variables one block sets are there for the
next), each block's output against the ```json / ```text block that follows it (none: the
block prints nothing).

The expected output is matched line by line after trailing blanks are dropped; these
placeholders stand for what changes from run to run (the page lists them too):
`<uuid>` a UUID, `<request-id>` a request id, `<time>` an RFC 3339 time, `<jwt>` an
access token, `<token>` an opaque url-safe token, `<n>` a whole number.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

PLACEHOLDERS = {
    "<uuid>": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "<time>": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)",
    "<request-id>": r"[A-Za-z0-9._:-]{1,128}",
    "<jwt>": r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
    "<token>": r"[A-Za-z0-9_-]{20,}",
    "<n>": r"\d+",
}
_PLACEHOLDER = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")
OUTPUT_KINDS = ("json", "text")
_MARKDOWN = MarkdownIt("commonmark")


@dataclass(frozen=True)
class Example:
    line: int  # where the command block starts in the page (1-based)
    command: str
    expected: str | None  # None: the command prints nothing
    heading: str = ""  # the title of the ## or ### section it is in
    intro: str = ""  # the paragraph right above it, on one line ("": none)


def fenced(page: str, kind: str) -> list[str]:
    """The text of every ```kind block of a Markdown page, in order (CommonMark's parse)."""
    return [t.content for t in _MARKDOWN.parse(page) if t.type == "fence" and t.info == kind]


def examples(page: str) -> list[Example]:
    """Every ```sh block, with the output block right after it (nothing but blank lines
    between), the section it is in and the paragraph right above it."""
    tokens = _MARKDOWN.parse(page)
    found: list[Example] = []
    heading = ""
    for i, token in enumerate(tokens):
        if token.type == "inline" and tokens[i - 1].tag in ("h2", "h3"):
            heading = token.content
        if token.type != "fence" or token.info != "sh" or not token.map:
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else token
        expected = after.content if after.type == "fence" and after.info in OUTPUT_KINDS else None
        above = tokens[i - 2].content if tokens[i - 1].type == "paragraph_close" else ""
        intro = " ".join(line.strip() for line in above.splitlines())
        found.append(Example(token.map[0] + 1, token.content, expected, heading, intro))
    return found


def pattern(expected: str) -> re.Pattern[str]:
    """The expected text as a regular expression: literal but for the placeholders."""
    pieces = _PLACEHOLDER.split(expected)  # literal, placeholder, literal, ...
    return re.compile(
        "".join(PLACEHOLDERS[p] if i % 2 else re.escape(p) for i, p in enumerate(pieces))
    )


def tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def matches(expected: str | None, actual: str) -> bool:
    if expected is None:
        return tidy(actual) == ""
    return pattern(tidy(expected)).fullmatch(tidy(actual)) is not None


@dataclass(frozen=True)
class Run:
    outputs: list[str]  # one per example that ran to its end
    stderr: str
    returncode: int


def run(blocks: list[Example], env: dict[str, str], cwd: Path, timeout: float) -> Run:
    """The blocks in one `bash -eu` (a failing command stops the run), a marker line
    between their outputs."""
    marker = "@@fixup-example-end@@"
    script = "".join(f"{b.command}\nprintf '\\n%s\\n' '{marker}'\n" for b in blocks)
    done = subprocess.run(
        ["bash", "-eu", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    outputs = done.stdout.split(f"\n{marker}\n")[:-1]
    return Run(outputs, done.stderr, done.returncode)
