"""What the ELK files read and write, parsed from the files themselves (tests/unit/test_elk.py,
tests/e2e/test_logs_fields.py): the Logstash pipeline, the index template, the Kibana objects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tools.deploy.generated import ROOT

ELK = ROOT / "observability" / "elk"
PIPELINE = ELK / "logstash" / "pipeline" / "fixup.conf"
TEMPLATE = ELK / "elasticsearch" / "index-template.json"
KIBANA = ELK / "kibana" / "objects.ndjson"
# stored as parsed, not indexed as typed fields
UNTYPED = {"app", "nginx"}


def pipeline_reads(source: str) -> set[str]:
    """The fields of one source's JSON ([app] services, [nginx] NGINX) the pipeline uses."""
    return set(re.findall(rf"\[{source}\]\[(\w+)\]", PIPELINE.read_text()))


def pipeline_branches() -> dict[str, str]:
    """The filter's two branches: nginx (`if [log_source] == "nginx"`) and app (`else`)."""
    text = PIPELINE.read_text()
    start = text.index('if [log_source] == "nginx" {')
    middle = text.index("\n  } else {\n", start)
    end = text.index("\n  }\n", middle + 1)
    return {"nginx": text[start:middle], "app": text[middle:end]}


def written(branch: str) -> set[str]:
    """Top-level fields a branch sets: copy/rename targets, add_field keys, event.set."""
    return (
        set(re.findall(r'=> "(\w+)"', branch))
        | set(re.findall(r'add_field => \{ "(\w+)"', branch))
        | set(re.findall(r"event\.set\('(\w+)'", branch))
    )


def template() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(TEMPLATE.read_text())
    return doc


def typed_fields() -> set[str]:
    return set(template()["template"]["mappings"]["properties"]) - UNTYPED


def kibana_objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in KIBANA.read_text().splitlines()]


def kuery_fields(query: str) -> set[str]:
    return set(re.findall(r"([\w@.]+)\s*(?::|>=|<=|>|<)", query))


def kibana_fields() -> set[str]:
    """Every field a saved search or visualization queries, shows, sorts or aggregates."""
    fields: set[str] = set()
    for obj in kibana_objects():
        attrs = obj["attributes"]
        fields |= set(attrs.get("columns", []))
        fields |= {column for column, _ in attrs.get("sort", [])}
        source = json.loads(attrs.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
        fields |= kuery_fields(source.get("query", {}).get("query", ""))
        if "visState" in attrs:
            aggs = json.loads(attrs["visState"])["aggs"]
            fields |= {a["params"]["field"] for a in aggs if "field" in a["params"]}
        if obj["type"] == "index-pattern":
            fields.add(attrs["timeFieldName"])
    return fields


def json_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
