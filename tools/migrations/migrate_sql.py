"""Migration files as statements, for tools/migrations/migrate_lint.py and its MariaDB checks
(tools/migrations/migrate_lint_mysql.py): comments removed, split at top-level `;`, each with the
line it starts on (sqlparse's split); and the finding a check reports about one."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlparse
from sqlparse.tokens import Comment, Punctuation
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


def split_top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses and quotes."""
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
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def statements(text: str) -> list[Statement]:
    """The file's statements as sqlparse splits them (yoyo applies them so; a $$ body is one
    literal), each with the line its first word is on."""
    found, line = [], 1
    for statement in sqlparse.parse(text):
        start, parts = 0, []
        for token in statement.flatten():  # type: ignore[no-untyped-call]  # sqlparse: unannotated
            if token.ttype in Comment:
                parts.append(" ")
            elif not token.match(Punctuation, ";"):
                start = start or (0 if token.is_whitespace else line)
                parts.append(token.value)
            line += token.value.count("\n")
        if start:
            found.append(Statement(start, " ".join("".join(parts).split())))
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
