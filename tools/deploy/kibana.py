"""The Kibana saved objects as code: `python -m tools.deploy.kibana [check]`.

Writes observability/elk/kibana/objects.ndjson (imported by the ELK setup container through
Kibana's saved objects API): the `fixup-logs` data view, the saved searches "errors" and
"by request id" and "by trace id", and a dashboard of status codes and latency by service.
The data view shows `trace_id` as a link to the trace in Jaeger (ADR 0012). Every field used
here is a typed field of the index template (tests/unit/test_elk.py) that a real log line
carries (tests/e2e/test_logs_fields.py). `check` (CI) fails when the file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.deploy.generated import ROOT, write_or_check

OBJECTS = ROOT / "observability" / "elk" / "kibana" / "objects.ndjson"
DATA_VIEW = "fixup-logs"
INDEX_PATTERN = "fixup-logs-*"
SOURCE_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
JAEGER_UI = "http://localhost:16686"  # Compose publishes Jaeger's UI there
TRACE_LINK = {
    "trace_id": {
        "id": "url",
        "params": {"urlTemplate": JAEGER_UI + "/trace/{{value}}", "labelTemplate": "{{value}}"},
    }
}


def search_source(query: str) -> dict[str, Any]:
    source = {
        "query": {"query": query, "language": "kuery"},
        "filter": [],
        "indexRefName": SOURCE_REF,
    }
    return {"searchSourceJSON": json.dumps(source)}


def on_data_view() -> list[dict[str, str]]:
    return [{"name": SOURCE_REF, "type": "index-pattern", "id": DATA_VIEW}]


def saved_search(id_: str, title: str, query: str, columns: list[str], order: str) -> Any:
    return {
        "type": "search",
        "id": id_,
        "attributes": {
            "title": title,
            "columns": columns,
            "sort": [["@timestamp", order]],
            "kibanaSavedObjectMeta": search_source(query),
        },
        "references": on_data_view(),
    }


def agg(id_: str, type_: str, schema: str, **params: Any) -> dict[str, Any]:
    return {"id": id_, "enabled": True, "type": type_, "schema": schema, "params": params}


def over_time(id_: str) -> dict[str, Any]:
    return agg(id_, "date_histogram", "segment", field="@timestamp", interval="auto")


def xy_params(chart: str, mode: str, label: str) -> dict[str, Any]:
    return {
        "type": chart,
        "addLegend": True,
        "addTooltip": True,
        "legendPosition": "right",
        "categoryAxes": [
            {"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True}
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": "left",
                "show": True,
                "scale": {"type": "linear", "mode": "normal"},
                "title": {"text": label},
            }
        ],
        "seriesParams": [
            {
                "data": {"id": "1", "label": label},
                "mode": mode,
                "show": True,
                "type": chart,
                "valueAxis": "ValueAxis-1",
            }
        ],
    }


def visualization(id_: str, title: str, kind: str, params: Any, aggs: list[Any]) -> Any:
    vis_state = {"title": title, "type": kind, "params": params, "aggs": aggs}
    return {
        "type": "visualization",
        "id": id_,
        "attributes": {
            "title": title,
            "visState": json.dumps(vis_state),
            "uiStateJSON": "{}",
            "description": "",
            "kibanaSavedObjectMeta": search_source(""),
        },
        "references": on_data_view(),
    }


def visualizations() -> list[Any]:
    status = visualization(
        "fixup-status-codes",
        "Status codes by service",
        "histogram",
        xy_params("histogram", "stacked", "requests"),
        [
            agg("1", "count", "metric"),
            over_time("2"),
            agg("3", "terms", "group", field="status", size=20, order="desc", orderBy="1"),
            agg(
                "4", "terms", "split", field="service", size=10, order="desc", orderBy="1", row=True
            ),
        ],
    )
    latency = visualization(
        "fixup-latency",
        "p95 latency by service (ms)",
        "line",
        xy_params("line", "normal", "p95 duration_ms"),
        [
            agg("1", "percentiles", "metric", field="duration_ms", percents=[95]),
            over_time("2"),
            agg("3", "terms", "group", field="service", size=10, order="desc", orderBy="_key"),
        ],
    )
    table = visualization(
        "fixup-latency-table",
        "Requests and latency by service and route",
        "table",
        {"perPage": 20, "showPartialRows": False, "showMetricsAtAllLevels": False},
        [
            agg("1", "count", "metric"),
            agg("2", "avg", "metric", field="duration_ms"),
            agg("3", "percentiles", "metric", field="duration_ms", percents=[50, 95, 99]),
            agg("4", "terms", "bucket", field="service", size=10, order="desc", orderBy="1"),
            agg("5", "terms", "bucket", field="route", size=20, order="desc", orderBy="1"),
        ],
    )
    return [status, latency, table]


def dashboard(panels: list[Any]) -> Any:
    width, height = 24, 15
    layout = [
        {
            "panelIndex": str(i),
            "gridData": {"x": (i % 2) * width, "y": (i // 2) * height, "w": width, "h": height,
                         "i": str(i)},
            "embeddableConfig": {},
            "panelRefName": f"panel_{i}",
        }
        for i in range(len(panels))
    ]  # fmt: skip
    return {
        "type": "dashboard",
        "id": "fixup-logs-overview",
        "attributes": {
            "title": "Fixup logs: status codes and latency by service",
            "description": "From the services' and NGINX's JSON logs (observability/elk)",
            "panelsJSON": json.dumps(layout),
            "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-1h",
            "timeTo": "now",
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps(
                    {"query": {"query": "", "language": "kuery"}, "filter": []}
                )
            },
        },
        "references": [
            {"name": f"panel_{i}", "type": p["type"], "id": p["id"]} for i, p in enumerate(panels)
        ],
    }


def objects() -> list[Any]:
    data_view = {
        "type": "index-pattern",
        "id": DATA_VIEW,
        "attributes": {
            "title": INDEX_PATTERN,
            "name": DATA_VIEW,
            "timeFieldName": "@timestamp",
            "fieldFormatMap": json.dumps(TRACE_LINK),  # a log line -> its trace in Jaeger
        },
        "references": [],
    }
    columns = ["service", "level", "status", "method", "route", "duration_ms", "request_id"]
    columns.append("trace_id")
    errors = saved_search("fixup-errors", "errors", "level:error or status >= 500", columns, "desc")
    # Discover: replace * with the id to follow one request through NGINX and each service
    by_request = saved_search(
        "fixup-by-request-id", "by request id", "request_id:*", ["log_source", *columns], "asc"
    )
    # every line of one trace (NGINX's and each service's): its trace_id links to Jaeger
    by_trace = saved_search(
        "fixup-by-trace-id", "by trace id", "trace_id:*", ["log_source", *columns, "span_id"], "asc"
    )
    vis = visualizations()
    return [data_view, errors, by_request, by_trace, *vis, dashboard(vis)]


def render() -> str:
    return "".join(json.dumps(o, sort_keys=True) + "\n" for o in objects())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy.kibana", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["write", "check"], default="write")
    args = parser.parse_args(argv)
    return write_or_check(
        {OBJECTS: render()}, args.command == "check", "python -m tools.deploy.kibana"
    )


if __name__ == "__main__":
    sys.exit(main())
