"""Every alert can be acted on and is unit-tested: it carries a summary, a description and a
runbook_url into docs/runbooks/<alert>.md, whose page exists and names the alert's PromQL;
promtool's tests (observability/prometheus/tests/, run by tests/e2e/test_observability.py)
see it fire, and see a burn-rate alert stay silent too; every SLO's latency threshold is a
bucket bound of its histogram (else its recording rule selects nothing); Alertmanager's
generated config is valid and routes each severity to its receiver (amtool)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lib import metrics
from tests.unit.test_deploy import tool
from tools.deploy import alertmanager, prometheus
from tools.deploy.generated import ROOT

SLOS = {"availability", "latency-read", "latency-write", "latency-call", "websocket-delivery"}
WINDOWS = {"5m", "30m", "1h", "6h", "3d", "30d"}


def alerts() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(prometheus.RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out |= {rule["alert"]: rule for rule in group["rules"] if "alert" in rule}
    return out


def rule_tests() -> list[dict[str, Any]]:
    """Every alert_rule_test entry of every promtool test file."""
    out = []
    for path in sorted((prometheus.HERE / "tests").glob("*.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            out += test.get("alert_rule_test", [])
    return out


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_rules_name_the_alerts_we_expect() -> None:
    assert {"InstanceDown", "ErrorBudgetBurn", "ErrorBudgetSlowBurn"} <= set(alerts())
    # covered by the SLOs: gone
    assert not {"HighErrorRatio", "SlowRoute", "DbPoolAcquireTimeouts"} & set(alerts())


@pytest.mark.parametrize("name", sorted(alerts()))
def test_every_alert_has_a_runbook_naming_its_promql(name: str) -> None:
    rule = alerts()[name]
    notes = rule["annotations"]
    assert notes["summary"]
    assert notes["description"]
    assert notes["runbook_url"] == f"docs/runbooks/{name}.md"
    page = ROOT / notes["runbook_url"]
    assert page.is_file(), f"{name}: no {page}"
    text = page.read_text()
    for heading in ("What it means", "The PromQL", "First three checks", "Safe mitigations"):
        assert f"## {heading}" in text, f"{page.name}: no section {heading!r}"
    assert flat(rule["expr"]) in flat(text), f"{page.name} does not name {name}'s PromQL"
    assert rule["labels"]["severity"] in ("page", "ticket")


@pytest.mark.parametrize("name", sorted(alerts()))
def test_every_alert_is_unit_tested_firing(name: str) -> None:
    fires = [t for t in rule_tests() if t["alertname"] == name and t.get("exp_alerts")]
    assert fires, f"no promtool test sees {name} fire"


@pytest.mark.parametrize("name", ["ErrorBudgetBurn", "ErrorBudgetSlowBurn"])
def test_burn_rate_alerts_are_unit_tested_silent(name: str) -> None:
    silent = [t for t in rule_tests() if t["alertname"] == name and not t.get("exp_alerts")]
    assert len(silent) >= 2, f"{name}: no promtool test of an allowed burn"


def test_the_runbooks_are_only_of_alerts() -> None:
    pages = {p.stem for p in (ROOT / "docs" / "runbooks").glob("*.md")}
    assert pages == set(alerts())


def slo_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load((prometheus.RULES / "slo.yml").read_text())[
        "groups"
    ][0]["rules"]
    return rules


def bucket_bounds(histogram: Any, labels: tuple[str, ...]) -> set[str]:
    histogram.labels(*labels)
    try:
        return {
            sample.labels["le"]
            for family in histogram.collect()
            for sample in family.samples
            if sample.name.endswith("_bucket") and labels[0] in sample.labels.values()
        }
    finally:
        histogram.remove(*labels)


def test_latency_thresholds_are_bucket_bounds() -> None:
    bounds = {
        "http_request_duration_seconds": bucket_bounds(
            metrics.HTTP_DURATION, ("slo-test", "GET", "/bounds")
        ),
        "grpc_server_handling_seconds": bucket_bounds(metrics.GRPC_DURATION, ("/slo.Test/Bounds",)),
    }
    thresholds = {
        (histogram, le)
        for rule in slo_rules()
        for histogram, le in re.findall(r'(\w+)_bucket\{[^}]*le="([^"]+)"', rule.get("expr", ""))
    }
    assert {h for h, _ in thresholds} == set(bounds)
    for histogram, le in thresholds:
        assert le in bounds[histogram], (histogram, le)


def test_every_window_records_every_slo_and_each_slo_has_one_budget() -> None:
    recorded: dict[str, set[str]] = {}
    for rule in slo_rules():
        window = re.fullmatch(r"slo:sli_error:ratio_rate(\w+)", rule.get("record", ""))
        if window:
            recorded.setdefault(window[1], set()).add(rule["labels"]["slo"])
    assert recorded == dict.fromkeys(WINDOWS, SLOS)
    (budget,) = [r for r in slo_rules() if r.get("record") == "slo:error_budget:ratio"]
    shares = re.findall(
        r'([\d.]+) \* group by \(service, slo\) \(\S+\{slo=~"([^"]+)"\}\)', budget["expr"]
    )
    for slo in SLOS:
        (share,) = [float(s) for s, pattern in shares if re.fullmatch(pattern, slo)]
        assert 0 < share <= 0.01, (slo, share)


def amtool(*args: str) -> str:
    hint = "apt-get install -y prometheus-alertmanager"
    done = subprocess.run(
        [tool("amtool", hint), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_alertmanager_config_is_valid_and_routes_each_severity_to_its_receiver() -> None:
    assert "SUCCESS" in amtool("check-config", str(alertmanager.CONFIG_FILE))
    severities = {rule["labels"]["severity"] for rule in alerts().values()}
    assert severities == {"page", "ticket"}
    for severity in sorted(severities):
        routed = amtool(
            "config",
            "routes",
            "test",
            f"--config.file={alertmanager.CONFIG_FILE}",
            f"severity={severity}",
            "service=users",
        )
        assert routed.strip() == severity


def test_the_production_receivers_are_valid_and_each_has_an_integration(tmp_path: Path) -> None:
    """The prod overlay's config (deploy/k8s/overlays/prod/alertmanager-receivers.yaml):
    amtool accepts it (the routing keys are read from files, so none is inline) and no
    receiver is silent."""
    overlay = ROOT / "deploy" / "k8s" / "overlays" / "prod" / "alertmanager-receivers.yaml"
    configmap = next(yaml.safe_load_all(overlay.read_text()))
    path = tmp_path / "alertmanager.yml"
    path.write_text(configmap["data"]["alertmanager.yml"])
    assert "SUCCESS" in amtool("check-config", str(path))
    document = yaml.safe_load(path.read_text())
    for receiver in document["receivers"]:
        configs = [v for k, v in receiver.items() if k.endswith("_configs")]
        assert configs, receiver
        assert all(configs), receiver
        for config in (c for entries in configs for c in entries):
            assert not {"routing_key", "service_key", "url"} & set(config), config
