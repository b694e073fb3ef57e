"""The access-log series. Labels: status_code ("200"), method (GET ... or "other"),
path (a route template from `routes`, "/docs/" or "other"): bounded by the route table."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from observability.nginx_exporter.parse import Entry, ParseError, parse_line
from observability.nginx_exporter.routes import Templater

LABELS = ("status_code", "method", "path")
GATEWAY_FAILURE = "502"  # the upstream refused or failed: NGINX's own answer
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 75.0)


class AccessLogMetrics:
    def __init__(self, registry: CollectorRegistry, templater: Templater) -> None:
        self.templater = templater
        self.requests = Counter(
            "nginx_http_requests", "requests in nginx's access log", LABELS, registry=registry
        )
        self.duration = Histogram(
            "nginx_http_request_duration_seconds",
            "request time from the access log ($request_time; the text format: the upstream's)",
            LABELS,
            buckets=BUCKETS,
            registry=registry,
        )
        self.size = Counter(
            "nginx_size_bytes",
            "response body bytes sent ($body_bytes_sent)",
            LABELS,
            registry=registry,
        )
        self.parse_errors = Counter(
            "nginx_exporter_parse_errors",
            "access-log lines that could not be parsed",
            registry=registry,
        )
        self.reopened = Counter(
            "nginx_exporter_log_reopened",
            "times the access log was followed to a new file (rename) or read again (truncate)",
            ["reason"],
            registry=registry,
        )
        for reason in ("rename", "truncate"):
            self.reopened.labels(reason)
        # the series the overview and GatewayErrorRatio read, at 0 before the first request
        # (lib/metrics.py says why): NGINX's own failure status on every route it knows
        for path in sorted(templater.labels()):
            self.requests.labels(GATEWAY_FAILURE, "GET", path)
            self.duration.labels(GATEWAY_FAILURE, "GET", path)
        self.lines = Counter(
            "nginx_exporter_lines", "access-log lines read (parsed or not)", registry=registry
        )

    def observe(self, entry: Entry) -> None:
        labels = (str(entry.status), entry.method, self.templater.template(entry.uri))
        self.requests.labels(*labels).inc()
        self.size.labels(*labels).inc(entry.body_bytes)
        duration = entry.duration
        if duration is not None:  # unknown (text format, no upstream): not observed
            self.duration.labels(*labels).observe(duration)

    def observe_line(self, line: str) -> None:
        if not line.strip():
            return
        self.lines.inc()
        try:
            entry = parse_line(line)
        except ParseError:
            self.parse_errors.inc()
            return
        self.observe(entry)
