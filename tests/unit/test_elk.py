"""ELK (observability/elk/) cannot run here: its files are checked against one another,
against Compose and .env.example, and (tests/e2e/test_logs_fields.py) against real log lines.
The Kibana saved objects (kibana/objects.ndjson) are Kibana's own export format: changed in
Kibana and exported again, or by hand."""

from __future__ import annotations

import json
import re

import yaml

from tests import elk_support as elk
from tools.deploy.generated import ROOT

INDEX_PATTERN = "fixup-logs-*"
JAEGER_UI = "http://localhost:16686"  # Compose publishes Jaeger's UI there
COMPOSE_FILE = ROOT / "docker-compose.yml"


def test_each_branch_of_the_pipeline_writes_every_typed_field() -> None:
    branches = elk.pipeline_branches()
    only_app = {"event_name", "span_id"}  # NGINX makes no span: its lines have no span id
    common = elk.typed_fields() - {"@timestamp", "message", "log_source", *only_app}
    assert common == {
        "service", "level", "request_id", "trace_id", "method", "route", "status", "duration_ms"
    }  # fmt: skip
    for name, branch in branches.items():
        assert common <= elk.written(branch), (name, common - elk.written(branch))
        assert f'match => ["[{name}][' in branch  # @timestamp from the line's own time
    assert only_app <= elk.written(branches["app"])
    text = elk.PIPELINE.read_text()
    assert '"status" => "integer"' in text
    assert '"duration_ms" => "float"' in text
    assert {"ts", "time"} <= elk.pipeline_reads("app") | elk.pipeline_reads("nginx")


def test_pipeline_index_template_ilm_and_grafana_agree() -> None:
    template = elk.template()
    assert template["index_patterns"] == [INDEX_PATTERN]
    index = re.search(r'index => "([^"]+)"', elk.PIPELINE.read_text())
    assert index is not None
    assert index.group(1) == "fixup-logs-%{+YYYY.MM.dd}"
    policy = template["template"]["settings"]["index.lifecycle.name"]
    setup = (elk.ELK / "setup" / "setup.sh").read_text()
    assert f"PUT /_ilm/policy/{policy} " in setup
    assert "PUT /_index_template/fixup-logs " in setup
    ilm = json.loads((elk.ELK / "elasticsearch" / "ilm-policy.json").read_text())
    assert ilm["policy"]["phases"]["delete"]["min_age"] == "14d"
    mappings = template["template"]["mappings"]["properties"]
    assert mappings["status"]["type"] == "short"
    assert mappings["duration_ms"]["type"] == "float"
    assert mappings["@timestamp"]["type"] == "date"
    grafana = yaml.safe_load(
        (ROOT / "observability/grafana/provisioning/datasources/datasources.yml").read_text()
    )
    (es,) = [d for d in grafana["datasources"] if d["type"] == "elasticsearch"]
    assert es["jsonData"]["index"] == INDEX_PATTERN
    assert es["jsonData"]["timeField"] == "@timestamp"


def test_kibana_objects_reference_only_the_data_view_and_typed_fields() -> None:
    objects = elk.kibana_objects()
    ids = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, (obj["id"], ref)
    (view,) = [o for o in objects if o["type"] == "index-pattern"]
    assert view["attributes"]["title"] == INDEX_PATTERN
    searches = {o["attributes"]["title"] for o in objects if o["type"] == "search"}
    assert searches == {"errors", "by request id", "by trace id"}
    # a log line's trace_id opens its trace in Jaeger
    link = json.loads(view["attributes"]["fieldFormatMap"])["trace_id"]
    assert link["params"]["urlTemplate"] == JAEGER_UI + "/trace/{{value}}"
    (board,) = [o for o in objects if o["type"] == "dashboard"]
    panels = json.loads(board["attributes"]["panelsJSON"])
    assert len(panels) == len(board["references"]) == 3
    fields = elk.kibana_fields()
    assert fields >= {
        "service", "status", "duration_ms", "level", "request_id", "trace_id", "span_id",
        "@timestamp",
    }  # fmt: skip
    assert fields <= elk.typed_fields(), fields - elk.typed_fields()


def test_compose_runs_elk_with_security_health_checks_and_secrets_from_env() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    stack = ["elasticsearch", "kibana", "elk-setup", "logstash", "filebeat"]
    others = ["minio", "minio-setup", "mailpit", "swagger-ui"]
    for name in stack + others:
        assert name in services, name
        if not name.endswith("setup"):
            assert "CMD-SHELL" in services[name]["healthcheck"]["test"], name
    assert services["elasticsearch"]["environment"]["xpack.security.enabled"] == "true"
    assert services["logstash"]["depends_on"]["elk-setup"] == {
        "condition": "service_completed_successfully"
    }
    assert services["filebeat"]["depends_on"]["logstash"] == {"condition": "service_healthy"}
    assert "nginxlogs:/var/log/nginx:ro" in services["filebeat"]["volumes"]
    assert "nginxlogs:/var/log/nginx" in services["nginx"]["volumes"]
    text = COMPOSE_FILE.read_text()
    used = set(re.findall(r"\$\{(\w+):\?", text))
    env_example = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), flags=re.M))
    assert used <= env_example, used - env_example
    assert {"ELASTIC_PASSWORD", "KIBANA_SYSTEM_PASSWORD", "LOGSTASH_WRITER_PASSWORD"} <= used
    apps = [s for s in services.values() if "services." in str(s.get("command"))]
    assert apps
    assert all(s["labels"]["co.elastic.logs/enabled"] == "true" for s in apps)
    filebeat = (elk.ELK / "filebeat" / "filebeat.yml").read_text()
    assert "hints.enabled: true" in filebeat
    assert "/var/log/nginx/access.log" in filebeat
