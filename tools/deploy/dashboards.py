"""Grafana dashboards as code: `python -m tools.deploy.dashboards [check]`.

Writes observability/grafana/dashboards/*.json from the panels below and lib/registry.py
(one dashboard per built service, with its domain row; the marketplace overview); `check`
(CI) fails when a committed JSON is stale.
Every expression is evaluated against a live Prometheus by tests/e2e/test_observability.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lib import registry
from tools.deploy.dashboard_parts import ROW, Panel, p, row
from tools.deploy.dashboards_domain import domain_row, marketplace
from tools.deploy.generated import ROOT, write_or_check

DASHBOARDS = ROOT / "observability" / "grafana" / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources/
# the service of a gateway request: /api/<service>/...
BY_SERVICE = 'label_replace({0}, "service", "$1", "path", "/api/([^/]+)/.*")'


def quantiles(metric: str, selector: str, by: str) -> dict[str, str]:
    rate = f"rate({metric}_bucket{{{selector}}}[5m])"
    return {
        f"p{int(q * 100)} {{{{{by}}}}}": f"histogram_quantile({q}, sum by ({by}, le) ({rate}))"
        for q in (0.5, 0.95, 0.99)
    }


def overview() -> list[Panel]:
    requests = BY_SERVICE.format("rate(nginx_http_requests_total[5m])")
    errors = BY_SERVICE.format('rate(nginx_http_requests_total{status_code=~"5.."}[5m])')
    latency = BY_SERVICE.format("rate(nginx_http_request_duration_seconds_bucket[5m])")
    return [
        p(
            "Requests per service (gateway)",
            "reqps",
            **{"{{service}}": f"sum by (service) ({requests})"},
        ),
        p(
            "5xx ratio per service (gateway)",
            "percentunit",
            **{"{{service}}": f"sum by (service) ({errors}) / sum by (service) ({requests})"},
        ),
        p(
            "p95 per service (gateway)",
            "s",
            **{"{{service}}": f"histogram_quantile(0.95, sum by (service, le) ({latency}))"},
        ),
        p(
            "Top routes",
            "reqps",
            **{
                "{{method}} {{path}}": (
                    "topk(10, sum by (method, path) (rate(nginx_http_requests_total[5m])))"
                )
            },
        ),
        p(
            "Upstream time p95 (the services' own histograms)",
            "s",
            **quantiles("http_request_duration_seconds", "", "service"),
        ),
        p(
            "NGINX connections",
            "short",
            active="nginx_connections_active",
            waiting="nginx_connections_waiting",
        ),
        p("Targets up", "short", **{"{{job}} {{instance}}": "up"}),
    ]


def service_panels(service: registry.Microservice) -> list[Panel]:
    """Only what the service exports (from start-up): no panel that is "No data" forever.
    A gRPC service has no HTTP API (its side port serves probes and /metrics only)."""
    s = f'service="{service.name}"'
    http = [
        p(
            "Requests by route and status",
            "reqps",
            **{
                "{{method}} {{route}} {{status}}": (
                    f"sum by (method, route, status) (rate(http_requests_total{{{s}}}[5m]))"
                )
            },
        ),
        p("Latency quantiles", "s", **quantiles("http_request_duration_seconds", s, "route")),
        p(
            "5xx per route",
            "reqps",
            **{
                "{{route}}": f'sum by (route) (rate(http_requests_total{{{s}, status=~"5.."}}[5m]))'
            },
        ),
        p("In flight", "short", **{"in flight": f"sum(http_requests_in_flight{{{s}}})"}),
        p(
            "Page cache (ADR 0056)",
            "reqps",
            hits=f"sum(rate(page_cache_hits_total{{{s}}}[5m]))",
            misses=f"sum(rate(page_cache_misses_total{{{s}}}[5m]))",
            evictions=f"sum(rate(page_cache_evictions_total{{{s}}}[5m]))",
        ),
        p("Page cache bytes", "bytes", held=f"sum(page_cache_bytes{{{s}}})"),
    ]
    panels = [] if service.grpc_port is not None else http
    panels += [
        p("DB pool", "short", **{"{{state}}": f"sum by (state) (db_pool_connections{{{s}}})"}),
        p(
            "DB pool acquire timeouts",
            "reqps",
            timeouts=f"sum(rate(db_pool_acquire_timeouts_total{{{s}}}[5m]))",
        ),
    ]
    if service.breakers:
        panels.append(
            p(
                "Circuit breakers (0 closed, 1 open, 2 half-open)",
                "short",
                **{"{{dependency}}": f"max by (dependency) (circuit_breaker_state{{{s}}})"},
            )
        )
    if service.outbox:
        panels.append(p("Outbox pending", "short", pending=f"max(outbox_pending{{{s}}})"))
    if service.grpc_port is not None:
        job = f'job="{service.name}"'
        panels += [
            p(
                "gRPC calls by method and code",
                "reqps",
                **{
                    "{{method}} {{code}}": (
                        f"sum by (method, code) (rate(grpc_server_handled_total{{{job}}}[5m]))"
                    )
                },
            ),
            p("gRPC latency", "s", **quantiles("grpc_server_handling_seconds", job, "method")),
        ]
    return panels


def slo_panels(service: registry.Microservice) -> list[Panel]:
    """The SLO row: each SLO of lib/slo.py (`slo` label) from the recording rules of
    observability/prometheus/rules/slo.yml (tools/deploy/slo.py)."""
    s = f'service="{service.name}"'
    return [
        p(
            "SLO: SLI over 30 days (availability, latency)",
            "percentunit",
            **{"{{slo}}": f"1 - slo:sli_error:ratio_rate30d{{{s}}}"},
        ),
        p(
            "SLO: burn rate (1 = the budget lasts exactly 30 days)",
            "short",
            **{
                f"{{{{slo}}}} {window}": (
                    f"slo:sli_error:ratio_rate{window}{{{s}}} / slo:error_budget:ratio{{{s}}}"
                )
                for window in ("5m", "1h", "6h", "3d")
            },
        ),
        p(
            "SLO: error budget left (30 days)",
            "percentunit",
            **{"{{slo}}": f"slo:error_budget_remaining:ratio{{{s}}}"},
        ),
    ]


def database_panels(service: registry.Microservice) -> list[Panel]:
    """The service's database row: its server as Debian's exporters see it (connections
    against max_connections, commits, the longest open transaction, the standbys or the
    replica: what the data tier's alerts of rules/data_tier.yml watch)."""
    # fixup_<db>, or a test run's fixup_<run>_<db>_<n> (tests/e2e/test_observability.py)
    db = f'datname=~"fixup_.*{service.database}.*"'
    if service.engine == "mysql":
        return [
            row(f"Database: MariaDB fixup_{service.database}"),
            p(
                "Connections",
                "short",
                connected="sum(mysql_global_status_threads_connected)",
                max_connections="max(mysql_global_variables_max_connections)",
            ),
            p("Queries", "ops", queries="sum(rate(mysql_global_status_queries[5m]))"),
            p(
                "Replica: behind the primary, IO and SQL threads (1 running)",
                "s",
                **{
                    "behind {{instance}}": "max by (instance) "
                    "(mysql_slave_status_seconds_behind_master)",
                    "io {{instance}}": "max by (instance) (mysql_slave_status_slave_io_running)",
                    "sql {{instance}}": "max by (instance) (mysql_slave_status_slave_sql_running)",
                },
            ),
        ]
    return [
        row(f"Database: PostgreSQL fixup_{service.database}"),
        p(
            "Backends of this database, and the server's max_connections",
            "short",
            backends=f"sum(pg_stat_database_numbackends{{{db}}})",
            max_connections="max(pg_settings_max_connections)",
        ),
        p(
            "Commits and rollbacks",
            "ops",
            commits=f"sum(rate(pg_stat_database_xact_commit{{{db}}}[5m]))",
            rollbacks=f"sum(rate(pg_stat_database_xact_rollback{{{db}}}[5m]))",
        ),
        p(
            "Longest open transaction",
            "s",
            **{"{{state}}": f"max by (state) (pg_stat_activity_max_tx_duration{{{db}}})"},
        ),
        p(
            "Primary's standbys (streaming, synchronous) and members in recovery",
            "short",
            streaming="max(pg_standbys_streaming)",
            synchronous="max(pg_standbys_sync)",
            standbys="sum(pg_replication_is_replica)",
        ),
        p(
            "Standby replay lag",
            "bytes",
            **{"{{standby}}": "max by (standby) (pg_standby_replay_lag_bytes)"},
        ),
    ]


def databases() -> list[Panel]:
    return [
        p("Up", "short", postgresql="pg_up", mariadb="mysql_up", redis="redis_up"),
        p(
            "PostgreSQL backends per database",
            "short",
            **{
                "{{datname}}": 'sum by (datname) (pg_stat_database_numbackends{datname=~"fixup.*"})'
            },
        ),
        p(
            "PostgreSQL commits",
            "ops",
            **{
                "{{datname}}": (
                    'sum by (datname) (rate(pg_stat_database_xact_commit{datname=~"fixup.*"}[5m]))'
                )
            },
        ),
        p(
            "MariaDB threads and queries",
            "short",
            connected="mysql_global_status_threads_connected",
            queries="rate(mysql_global_status_queries[5m])",
        ),
        p(
            "Redis",
            "short",
            clients="redis_connected_clients",
            commands="rate(redis_commands_processed_total[5m])",
        ),
        p("Redis memory", "bytes", used="redis_memory_used_bytes"),
    ]


def containers() -> list[Panel]:
    named = 'name!=""'
    return [
        p(
            "CPU per container",
            "percentunit",
            **{
                "{{name}}": (
                    f"sum by (name) (rate(container_cpu_usage_seconds_total{{{named}}}[5m]))"
                )
            },
        ),
        p(
            "Memory per container",
            "bytes",
            **{"{{name}}": f"sum by (name) (container_memory_working_set_bytes{{{named}}})"},
        ),
        p(
            "Network received per container",
            "Bps",
            **{
                "{{name}}": (
                    f"sum by (name) (rate(container_network_receive_bytes_total{{{named}}}[5m]))"
                )
            },
        ),
    ]


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    """Two panels a line; a row header starts a new line of its own."""
    out: list[dict[str, Any]] = []
    y, column = 0, 0
    for i, (panel_title, unit, exprs) in enumerate(panels):
        if unit == ROW:
            y, column = y + 8 * column, 0
            out.append(
                {
                    "id": i + 1,
                    "type": "row",
                    "title": panel_title,
                    "collapsed": False,
                    "datasource": PROMETHEUS,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "panels": [],
                    "targets": [],
                }
            )
            y += 1
            continue
        out.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel_title,
                "datasource": PROMETHEUS,
                "gridPos": {"h": 8, "w": 12, "x": 12 * column, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + j),
                        "datasource": PROMETHEUS,
                        "expr": expr,
                        "legendFormat": legend,
                    }
                    for j, (legend, expr) in enumerate(exprs.items())
                ],
            }
        )
        y, column = y + 8 * column, 1 - column
    return {
        "uid": uid,
        "title": title,
        "tags": ["fixup"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "panels": out,
    }


def all_dashboards() -> dict[str, dict[str, Any]]:
    boards = {
        "overview": dashboard("fixup-overview", "Fixup / Overview", overview()),
        "databases": dashboard("fixup-databases", "Fixup / Databases", databases()),
        "containers": dashboard("fixup-containers", "Fixup / Containers", containers()),
        "marketplace": dashboard("fixup-marketplace", "Fixup / Marketplace", marketplace()),
    }
    for service in registry.built_services():
        panels = [*service_panels(service), row("SLO"), *slo_panels(service)]
        panels += database_panels(service)
        boards[f"service-{service.name}"] = dashboard(
            f"fixup-{service.name}", f"Fixup / {service.name}", panels + domain_row(service)
        )
    return boards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy.dashboards", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["write", "check"], default="write")
    args = parser.parse_args(argv)
    files = {
        DASHBOARDS / f"{name}.json": json.dumps(board, indent=2) + "\n"
        for name, board in all_dashboards().items()
    }
    return write_or_check(files, args.command == "check", "python -m tools.deploy.dashboards")


if __name__ == "__main__":
    sys.exit(main())
