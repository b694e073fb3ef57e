"""Lift the executed examples of docs/examples.md and each service's own
`services/<service>/examples.md` into the OpenAPI documents' `examples` (docs/architecture.md).

`python -m tools.openapi_examples gen|check` (`make swag-gen` / `make swag-check`) writes
docs/openapi/examples/<service>.json, which `build_spec` adds to each document. A block
becomes an example when it runs ONE `curl` through NGINX (`$API/<service>/…`) and shows
its whole JSON answer or, with `-o /dev/null -w '%{http_code}\\n'`, only its status; a
request body is lifted only from a success. What changes from run to run becomes one fixed
value (VOLATILE); a UUID is derived from its field's or variable's name (uuid5).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import registry
from lib.http.openapi_examples import EXAMPLES_DIR
from tools import swag
from tools.deploy.generated import write_or_check
from tools.examples_page import Example, examples

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "docs/examples.md"
UUID_NAMESPACE = uuid.UUID("6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b")
# the stand-in of each placeholder (<uuid>: by name, below); a <jwt> is JWT-shaped only
VOLATILE = {
    "<time>": "2031-04-30T12:00:00Z",
    "<request-id>": "0f3c9a7e5b1d4c2a8e6f4b2d0c9a7e5b",
    "<jwt>": "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJleGFtcGxlIn0.ZXhhbXBsZQ",
    "<token>": "example-opaque-token-0123456789",
    "<n>": "1767225600",
    "<code>": "123456",  # not a page placeholder: what a `*_CODE` variable stands for
}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(\S.*)$", re.MULTILINE)
_STATUS_ONLY = "%{http_code}\\n"


def example_uuid(name: str) -> str:
    return str(uuid.uuid5(UUID_NAMESPACE, name.lower()))


def fill(text: str, name: str) -> str:
    """A string of the page's output with its placeholders replaced."""
    text = text.replace("<uuid>", example_uuid(name))
    for placeholder, value in VOLATILE.items():
        text = text.replace(placeholder, value)
    return text


def answer(expected: str) -> Any:
    """The JSON a block shows, with fixed values for its placeholders (None: not JSON)."""
    bare = re.sub(r"(?<!\")<n>(?!\")", VOLATILE["<n>"], expected)  # a number, unquoted
    try:
        shown = json.loads(bare)
    except ValueError:
        return None

    def walk(value: Any, name: str, item: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k, item) for k, v in value.items()}
        if isinstance(value, list):  # the second item of a list: other UUIDs
            return [walk(v, name, f"{item}#{i}" if i else item) for i, v in enumerate(value)]
        return fill(value, name + item) if isinstance(value, str) else value

    return walk(shown, "value", "")


@dataclass(frozen=True)
class Call:
    method: str
    service: str
    path: str  # as the page wrote it, variables and all; no query
    body: str | None
    status_only: bool


def call_of(command: str) -> Call | None:
    """The one curl of a block through $API (None: none, several, or not through it)."""
    joined = command.replace("\\\n", " ")
    if len(re.findall(r"\bcurl\b", joined)) != 1:
        return None
    start = joined.index("curl")
    lexer = shlex.shlex(joined[start:], posix=True, punctuation_chars="|;&<>()\n")
    lexer.whitespace, lexer.whitespace_split = " \t", True
    words = []
    for word in lexer:  # up to the end of the command (a quoted newline is in a word)
        if word in ("|", "||", ";", "&&", ")", "<<", "<<<", "&", "\n"):
            heredoc = word == "<<"
            break
        words.append(word)
    else:
        heredoc = False
    method, url, body, out, fmt, form = "", "", None, "", "", False
    args = iter(words[1:])
    for word in args:
        if word == "-X":
            method = next(args)
        elif word in ("-d", "--data", "--data-binary"):
            body = next(args)
        elif word == "-F":
            form = True
            next(args)
        elif word == "-o":
            out = next(args)
        elif word == "-w":
            fmt = next(args)
        elif word in ("-H", "-D"):
            next(args)
        elif word.startswith("$API/"):
            url = word.removeprefix("$API/")
    if not url:
        return None
    if body == "@-" and heredoc:  # the lines up to EOF
        opened = re.search(r"<<EOF[^\n]*\n", joined[start:])
        after = joined[start:][opened.end() :].split("\n") if opened else []
        body = "\n".join(after[: after.index("EOF")] if "EOF" in after else after)
    service, _, path = url.split("?", 1)[0].partition("/")
    if not method:
        method = "POST" if body is not None or form else "GET"
    status_only = out == "/dev/null" and fmt == _STATUS_ONLY
    return Call(method, service, "/" + path, None if form else body, status_only)


def assignments(page_commands: list[str]) -> dict[str, str]:
    """The page's variables set to a literal (`NAME=ada-$RUN@…`), unexpanded."""
    found: dict[str, str] = {}
    for command in page_commands:
        for name, value in _ASSIGNMENT.findall(command):
            if "$(" in value or value.startswith("("):
                continue
            words = shlex.split(value, comments=True)
            if len(words) == 1:
                found[name] = re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", words[0])
    return found


def expand(text: str, known: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in known:
            return expand(known[name], known)
        if name == "RUN":
            return VOLATILE["<n>"]
        if name.endswith("_ID"):
            return example_uuid(name)
        if "TOKEN" in name:
            return VOLATILE["<token>"]
        if name.endswith("_CODE"):  # a one-time code of an authenticator app
            return VOLATILE["<code>"]
        raise ValueError(f"no example value for ${name}")

    return _VARIABLE.sub(value, text)


def operation_of(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The document's path that a page path matches (its literal segments win)."""
    segments = path.strip("/").split("/")
    best: tuple[int, str, dict[str, Any]] | None = None
    for template, item in spec["paths"].items():
        parts = template.strip("/").split("/")
        if len(parts) != len(segments) or method.lower() not in item:
            continue
        literal = 0
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                continue
            if part != segment:
                break
            literal += 1
        else:
            if best is None or literal > best[0]:
                best = (literal, template, item[method.lower()])
    return None if best is None else (best[1], best[2])


def success_status(method: str, op: dict[str, Any]) -> str:
    successes = sorted(s for s in op["responses"] if s.startswith("2"))
    return "201" if method == "POST" and "201" in successes else successes[0]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def pages(root: Path = ROOT) -> dict[str, str]:
    """Every executed page by its root-relative path: docs/examples.md first, then the
    services' own (those of lib/registry.py that have one)."""
    found = {SOURCE: (root / SOURCE).read_text()}
    for service in registry.built_services():
        own = Path("services", service.name, "examples.md")
        if (root / own).exists():
            found[own.as_posix()] = (root / own).read_text()
    return found


def lift_pages(pages_of: dict[str, str], specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """service -> "METHOD /path" -> {"request": {name: example}, "responses": {status: …}},
    from every page by its path; an earlier page's example of a name wins."""
    lifted: dict[str, dict[str, Any]] = {service: {} for service in specs}
    problems: list[str] = []
    for source, page in pages_of.items():
        blocks = examples(page)
        for i, block in enumerate(blocks):
            found = lift_block(block, blocks[:i], specs, source)
            if isinstance(found, str):
                problems.append(found)
            elif found is not None:
                service, key, status, name, request, response = found
                entry = lifted[service].setdefault(key, {"request": {}, "responses": {}})
                if request is not None:
                    entry["request"].setdefault(name, request)
                if response is not None:
                    entry["responses"].setdefault(status, {}).setdefault(name, response)
    if problems:
        raise ValueError("\n".join(problems))
    return {s: {k: lifted[s][k] for k in sorted(lifted[s])} for s in sorted(lifted)}


def lift_block(
    block: Example,
    before: list[Example],
    specs: dict[str, dict[str, Any]],
    source: str = SOURCE,
) -> tuple[str, str, str, str, Any, Any] | str | None:
    call = call_of(block.command)
    if call is None or call.service not in specs or block.expected is None:
        return None
    shown = answer(block.expected)
    matched = operation_of(specs[call.service], call.method, call.path)
    if call.status_only and re.fullmatch(r"\d{3}", block.expected.strip()):
        status, response = block.expected.strip(), None
    elif isinstance(shown, dict) and ("data" in shown or {"type", "status"} <= shown.keys()):
        status, response = str(shown.get("status", "")), shown
    elif isinstance(shown, dict) and matched and bare(call.method, matched[1]):
        status, response = "", shown  # an answer without the envelope (the JWK Set)
    else:
        return None  # a part of an answer (a jq filter), several, or none
    where = f"{source}:{block.line}"
    if matched is None:
        return f"{where}: {call.method} {call.path} is no operation of {call.service}"
    template, op = matched
    if response is not None and not status:
        status = success_status(call.method, op)
    declared = op["responses"].get(status)
    if declared is None or (response is not None and "content" not in declared):
        return f"{where}: the page shows {status}, which {call.method} {template} does not declare"
    value = {"summary": f"{block.heading} ({source})"}
    if block.intro:  # the paragraph right above the block
        value["description"] = block.intro.rstrip(":") + "."
    request = None
    if call.body is not None and status.startswith("2"):
        known = assignments([b.command for b in before] + [block.command])
        try:
            request = value | {"value": json.loads(expand(call.body, known))}
        except ValueError as exc:
            return f"{where}: {exc}"
    return (
        call.service,
        f"{call.method} {template}",
        status,
        slug(block.heading),
        request,
        None if response is None else value | {"value": response},
    )


def bare(method: str, op: dict[str, Any]) -> bool:
    """The operation answers a JSON body that is not the `{"data": ...}` envelope."""
    success = op["responses"].get(success_status(method, op), {})
    schema = success.get("content", {}).get("application/json", {}).get("schema", {})
    return "$ref" in schema  # an envelope is written inline, the bare body by reference


def specs() -> dict[str, dict[str, Any]]:
    return {service: swag.spec_of(service) for service in swag.DOCUMENTED}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi_examples", description=__doc__)
    parser.add_argument("command", choices=["gen", "check"])
    args = parser.parse_args(argv)
    try:
        lifted = lift_pages(pages(), specs())
    except ValueError as exc:
        print(f"openapi-examples: {exc}", file=sys.stderr)
        return 2
    files = {EXAMPLES_DIR / f"{s}.json": swag.render(found) for s, found in lifted.items() if found}
    unshown = [EXAMPLES_DIR / f"{s}.json" for s, found in lifted.items() if not found]
    for path in unshown:  # a service the pages do not show: no file
        if args.command == "check" and path.exists():
            print(
                f"openapi-examples: {path.name} shows nothing; run make swag-gen", file=sys.stderr
            )
            return 1
        path.unlink(missing_ok=True)
    return write_or_check(files, args.command == "check", "make swag-gen")


if __name__ == "__main__":
    sys.exit(main())
