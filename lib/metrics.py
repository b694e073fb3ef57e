"""Every Prometheus metric lib/ exposes, by the names dashboards and alerts use.

With WORKERS > 1 prometheus_client's multiprocess mode is on
(PROMETHEUS_MULTIPROC_DIR), and /metrics sums all workers (see lib.http.health).

Every series a dashboard or rule reads exists from start-up, at 0: a labelled child that
appeared only with its first event would show "No data" instead of 0, and `rate()` would
miss that first event (it needs two samples). The module that owns a metric creates its
known children when it starts (the pool its `service`, a breaker its `dependency`, the
request metrics below every route); tests/e2e/test_metrics_from_startup.py reads every
dashboard and rule expression and checks each named series on freshly started services.

Domain facts (logins, offers, jobs, messages, points, mails: `lib.db.facts.Facts`,
defined in the service that owns them) count once per committed fact, labelled only by bounded
values (outcome, role, reason), never by a user or an id.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests being handled.",
    ["service"],
    multiprocess_mode="livesum",
)
DB_POOL = Gauge(
    "db_pool_connections",
    "Database pool connections by state.",
    ["service", "state"],
    multiprocess_mode="livesum",
)
DB_POOL_TIMEOUTS = Counter(
    "db_pool_acquire_timeouts_total",
    "Requests answered 503 because no pooled connection freed up within the timeout.",
    ["service"],
)
BREAKER_STATE = Gauge(
    "circuit_breaker_state",
    "Circuit breaker state per dependency: 0 closed, 1 open, 2 half-open.",
    ["service", "dependency"],
    multiprocess_mode="max",
)
OUTBOX_PENDING = Gauge(
    "outbox_pending",
    "Outbox rows not yet delivered.",
    ["service"],
    multiprocess_mode="max",
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet delivered (0 when none is pending).",
    ["service"],
    multiprocess_mode="max",
)
# the page cache of conditional GETs (lib/http/conditional.py, ADR 0056)
PAGE_CACHE_HITS = Counter(
    "page_cache_hits_total",
    "Conditional GETs answered from the page cache (the stamp unmoved since the page).",
    ["service"],
)
PAGE_CACHE_MISSES = Counter(
    "page_cache_misses_total",
    "Conditional GETs the page cache could not answer (no page, or the stamp moved).",
    ["service"],
)
PAGE_CACHE_EVICTIONS = Counter(
    "page_cache_evictions_total",
    "Pages dropped from the page cache to stay within PAGE_CACHE_BYTES.",
    ["service"],
)
PAGE_CACHE_BYTES = Gauge(
    "page_cache_bytes",
    "Bytes the page cache holds (bodies, headers, keys, per-entry overhead).",
    ["service"],
    multiprocess_mode="livesum",
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "gRPC calls handled, by method and status code.",
    ["method", "code"],
)
GRPC_DURATION = Histogram(
    "grpc_server_handling_seconds",
    "gRPC call latency by method.",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# The statuses a service answers on its own failure (unhandled error, a pool or dependency
# unavailable): created for every route at start-up, so the first one counts in the error
# ratio. Other statuses appear with their first request.
FAILURE_STATUSES = ("500", "503")
FAILURE_CODES = ("INTERNAL", "UNAVAILABLE")  # their gRPC counterparts


def start_http_series(service: str, routes: Iterable[tuple[str, str]]) -> None:
    """The request series of every (method, route template), at 0."""
    HTTP_IN_FLIGHT.labels(service)
    for method, route in routes:
        HTTP_DURATION.labels(service, method, route)
        for status in FAILURE_STATUSES:
            HTTP_REQUESTS.labels(service, method, route, status)


def start_page_cache_series(service: str) -> None:
    """The page cache's series, at 0 (also with the cache off: the dashboards read them)."""
    for metric in (PAGE_CACHE_HITS, PAGE_CACHE_MISSES, PAGE_CACHE_EVICTIONS, PAGE_CACHE_BYTES):
        metric.labels(service)


def start_grpc_series(methods: Iterable[str]) -> None:
    """The call series of every gRPC method (`/package.Service/Method`), at 0."""
    for method in methods:
        GRPC_DURATION.labels(method)
        for code in FAILURE_CODES:
            GRPC_HANDLED.labels(method, code)
