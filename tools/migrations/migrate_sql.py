"""Migration files as statements, for tools/migrations/migrate_lint.py and its MariaDB checks
(tools/migrations/migrate_lint_mysql.py): comments removed, split at top-level `;`, each with the
line it starts on; and the finding a check reports about one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from yoyo.migrations import parse_metadata_from_sql_comments


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    path: str
    line: int  # 1-based
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


@dataclass(frozen=True, slots=True)
class Statement:
    line: int  # 1-based line of its first character in the file
    sql: str  # comments removed, whitespace collapsed, upper-case keywords untouched


def strip_comments(text: str) -> str:
    """SQL without -- and /* */ comments; string literals and line breaks kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            end = i + 1
            while end < n and not (text[end] == "'" and text[end - 1] != "\\"):
                end += 1
            out.append(text[i : end + 1])
            i = end + 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            chunk = text[i : n if end < 0 else end + 2]
            out.append("\n" * chunk.count("\n"))
            i = n if end < 0 else end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """`text` split at `sep` outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_DOLLAR_QUOTED = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)


def _blank_body(match: re.Match[str]) -> str:
    """A function body as a string literal of blanks: its `;` split nothing, lines kept."""
    return "'" + re.sub(r"[^\n]", " ", match.group(0)[2:]) + "'"


def statements(text: str) -> list[Statement]:
    """The file's statements with the line each starts on ($$ bodies are one literal)."""
    code = _DOLLAR_QUOTED.sub(_blank_body, strip_comments(text))
    found, offset = [], 0
    for chunk in split_top_level(code, ";") if code.strip() else []:
        at = code.index(chunk, offset)
        offset = at + len(chunk)
        found.append(Statement(code.count("\n", 0, at) + 1, " ".join(chunk.split())))
    return found


def identifier(raw: str) -> str:
    """An identifier without quotes or schema, lower-cased."""
    return raw.strip().strip('"`').split(".")[-1].strip('"`').lower()


def is_transactional(text: str) -> bool:
    directives, _, _ = parse_metadata_from_sql_comments(text)
    return str(directives.get("transactional", "true")).strip().lower() != "false"


ALTER_TABLE = re.compile(
    r"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(\S+)\s+(.*)$", re.I | re.S
)
