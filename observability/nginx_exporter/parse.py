"""One access-log line -> `Entry`: NGINX's JSON format (nginx/conf.d/10-logging.conf) or the
classic `combined` text format with ` $upstream_response_time` appended."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
# "$http_referer" "$http_user_agent" $upstream_response_time
TEXT_LINE = re.compile(
    r"^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)" '
    r"(?P<upstream>[-0-9., :]+)$"
)


class ParseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Entry:
    method: str  # one of METHODS, else "other"
    uri: str  # the path as requested (JSON `path`; the text format's includes the query)
    status: int
    body_bytes: int
    request_time: float | None  # seconds; the text format has none
    upstream_time: float | None  # seconds, summed over retries; None without an upstream

    @property
    def duration(self) -> float | None:
        """request_time when logged (JSON), else the upstream's time (text format)."""
        return self.request_time if self.request_time is not None else self.upstream_time


def upstream_seconds(value: str) -> float | None:
    """ "0.004", "0.002, 0.003" (retries), "0.001 : 0.002" (internal redirect), "-" or ""."""
    parts = [part.strip() for part in re.split(r"[,:]", value)]
    times = [part for part in parts if part not in ("", "-")]
    try:
        return sum(float(t) for t in times) if times else None
    except ValueError as exc:
        raise ParseError(f"upstream_response_time {value!r}") from exc


def _method(value: str) -> str:
    return value if value in METHODS else "other"


def _status(value: object) -> int:
    try:
        status = int(str(value))
    except ValueError as exc:
        raise ParseError(f"status {value!r}") from exc
    if not 100 <= status <= 599:
        raise ParseError(f"status {value!r}")
    return status


def _count(value: object) -> int:
    if value in ("-", ""):
        return 0
    try:
        count = int(str(value))
    except ValueError as exc:
        raise ParseError(f"byte count {value!r}") from exc
    if count < 0:
        raise ParseError(f"byte count {value!r}")
    return count


def _seconds(value: object) -> float | None:
    if value is None or value in ("-", ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ParseError(f"time {value!r}")
    try:
        return float(value)
    except ValueError as exc:
        raise ParseError(f"time {value!r}") from exc


def parse_json(line: str) -> Entry:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ParseError("not JSON") from exc
    if not isinstance(record, dict):
        raise ParseError("not a JSON object")
    try:
        method, status, size = record["method"], record["status"], record["body_bytes_sent"]
        # `path` (+ a redacted `query`) since issue 28; `uri` in lines written before it
        uri = record["path"] if "path" in record else record["uri"]
    except KeyError as exc:
        raise ParseError(f"missing field {exc.args[0]}") from exc
    if not isinstance(method, str) or not isinstance(uri, str):
        raise ParseError("method and path must be strings")
    upstream = record.get("upstream_response_time")
    return Entry(
        method=_method(method),
        uri=uri,
        status=_status(status),
        body_bytes=_count(size),
        request_time=_seconds(record.get("request_time")),
        upstream_time=upstream_seconds(upstream)
        if isinstance(upstream, str)
        else _seconds(upstream),
    )


def parse_text(line: str) -> Entry:
    match = TEXT_LINE.match(line)
    if match is None:
        raise ParseError("neither JSON nor combined + $upstream_response_time")
    parts = match.group("request").split(" ")
    # a garbage request line ("-", TLS bytes on the plain port) is still a logged request
    method, uri = (parts[0], parts[1]) if len(parts) == 3 else ("other", "")
    return Entry(
        method=_method(method),
        uri=uri,
        status=_status(match.group("status")),
        body_bytes=_count(match.group("bytes")),
        request_time=None,
        upstream_time=upstream_seconds(match.group("upstream")),
    )


def parse_line(line: str) -> Entry:
    stripped = line.strip()
    return parse_json(stripped) if stripped.startswith("{") else parse_text(stripped)
