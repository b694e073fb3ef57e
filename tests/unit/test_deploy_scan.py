"""The reviewers' scanners' settings (tools/deploy/deploy_scan.py, `make deploy-lint`): every
skip or ignore of checkov, dclint and zizmor has its reason in its one file. The scanners
themselves (installed by `make scan-deps`, not by `make install`) run in
tests/integration/test_deploy_scanners.py, which `make test` runs and `make test-fast` not."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tools.deploy import deploy_scan
from tools.deploy.generated import ROOT


def reasons_before(path: Path, item: re.Pattern[str]) -> dict[str, list[str]]:
    """Each listed item -> the comment lines right above it (its reason)."""
    out: dict[str, list[str]] = {}
    comments: list[str] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped)
            continue
        match = item.match(stripped)
        if match:
            out[match.group(1)] = comments
        comments = []
    return out


def test_every_checkov_skip_says_why() -> None:
    config = ROOT / ".checkov.yaml"
    skipped = yaml.safe_load(config.read_text())["skip-check"]
    reasons = reasons_before(config, re.compile(r"^- (CKV\w+)$"))
    assert sorted(reasons) == sorted(skipped)
    assert all(len(" ".join(r)) > 80 for r in reasons.values()), reasons


def test_every_dclint_rule_turned_off_says_why() -> None:
    config = ROOT / ".dclintrc.yaml"
    off = [rule for rule, level in yaml.safe_load(config.read_text())["rules"].items() if not level]
    text = config.read_text()
    for rule in off:
        block = text[: text.index(f"  {rule}: 0")].rsplit("\n\n", 1)[-1]
        assert "#" in block, f"{rule}: no reason above it"


def test_every_zizmor_ignore_says_why() -> None:
    config = ROOT / ".github" / "zizmor.yml"
    rules = yaml.safe_load(config.read_text())["rules"]
    comments = "".join(line for line in config.read_text().splitlines() if line.startswith("#"))
    for rule in rules:
        assert f"- {rule} (" in comments, f"{rule}: ignored without a reason"


def test_a_receiver_with_one_empty_integration_list_is_silent() -> None:
    """`pagerduty_configs: []` is no integration either; one entry anywhere is."""
    document = {
        "kind": "ConfigMap",
        "metadata": {"name": "alertmanager"},
        "data": {
            "alertmanager.yml": yaml.safe_dump(
                {
                    "receivers": [
                        {"name": "page", "pagerduty_configs": []},
                        {"name": "ticket", "webhook_configs": [{"url": "http://x.invalid/"}]},
                    ]
                }
            )
        },
    }
    assert deploy_scan.silent_receivers(yaml.safe_dump(document)) == [
        "alertmanager: receiver 'page'"
    ]


def test_the_gateway_scan_picks_the_gateway_api_and_envoy_gateway_objects() -> None:
    """Only the groups the published schemas cover go to the validator; the core kinds are
    kubernetes-validate's (tests/unit/test_k8s.py)."""
    documents = [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute"},
        {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "BackendTrafficPolicy"},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"},
        {"apiVersion": "v1", "kind": "Service"},
        None,
    ]
    picked = deploy_scan.gateway_objects(yaml.safe_dump_all(documents))
    assert [d["kind"] for d in picked] == ["HTTPRoute", "BackendTrafficPolicy"]
