"""The reviewers' scanners on the deploy files (tools/deploy/deploy_scan.py, `make deploy-lint`):
checkov on the rendered Kubernetes overlays, zizmor on the workflows, dclint on Compose,
the Gateway API schemas on the edge's objects report nothing, and each scanner does catch
the weakness it is there for (a weakened copy fails), so a green run means something.
They need `make scan-deps` (checkov in .venv-scan, dclint and the Gateway API schemas
from npm), which `make test` runs first: so they live here, out of `make test-fast`
(tests/unit/test_deploy_scan.py checks the scanners' settings)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_k8s import render
from tools.deploy import deploy_scan
from tools.deploy.generated import ROOT


def scanned(name: str) -> subprocess.CompletedProcess[str]:
    try:
        return deploy_scan.SCANS[name]()
    except deploy_scan.Missing as exc:
        pytest.fail(f"{name}: {exc}", pytrace=False)


@pytest.mark.parametrize("name", sorted(deploy_scan.SCANS))
def test_the_scanner_finds_nothing(name: str) -> None:
    done = scanned(name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_checkov_fails_a_pod_that_is_not_restricted(tmp_path: Path) -> None:
    """The dev overlay with one Deployment's seccomp profile and read-only root removed."""
    docs = [d for d in yaml.safe_load_all(render("dev")) if d]
    target = next(d for d in docs if d["kind"] == "Deployment")
    del target["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
    target["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"
    ] = False
    weakened = tmp_path / "weakened.yaml"
    weakened.write_text(yaml.safe_dump_all(docs))
    binary = deploy_scan.need(deploy_scan.CHECKOV, "make scan-deps")
    done = deploy_scan.run(
        [binary, "--config-file", str(ROOT / ".checkov.yaml"), "-f", str(weakened)]
    )
    assert done.returncode != 0
    assert "CKV_K8S_31" in done.stdout, done.stdout  # seccomp
    assert "CKV_K8S_22" in done.stdout, done.stdout  # read-only root filesystem


def test_zizmor_fails_a_tag_pinned_action_and_an_injection(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    permissions: {}\n    steps:\n"
        "      - uses: aws-actions/configure-aws-credentials@v4\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    binary = deploy_scan.need(deploy_scan.ZIZMOR, "pip install zizmor")
    done = deploy_scan.run([binary, "--offline", str(workflows)])
    assert done.returncode != 0
    assert "unpinned-uses" in done.stdout, done.stdout
    assert "template-injection" in done.stdout, done.stdout


def test_dclint_fails_a_latest_image(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("name: x\nservices:\n  app:\n    image: fixup:latest\n")
    binary = deploy_scan.need(deploy_scan.DCLINT, "npm ci --prefix tools/dclint")
    done = deploy_scan.run([binary, "-c", str(ROOT / ".dclintrc.yaml"), str(compose)])
    assert done.returncode != 0
    assert "service-image-require-explicit-tag" in done.stdout, done.stdout


def test_deploy_lint_fails_a_prod_render_whose_receiver_has_no_integration(tmp_path: Path) -> None:
    """A prod overlay without its receivers' patch: the base's receivers carry nothing, so
    pages would go nowhere; the scan names the overlay and each silent receiver."""
    overlay = tmp_path / "prod"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {"resources": [os.path.relpath(deploy_scan.OVERLAYS.parent / "base", overlay)]}
        )
    )
    try:
        done = deploy_scan.receivers([overlay])
    except deploy_scan.Missing as exc:
        pytest.fail(str(exc), pytrace=False)
    assert done.returncode == 1
    assert "prod: alertmanager: receiver 'page' has no integration" in done.stdout
    assert "prod: alertmanager: receiver 'ticket' has no integration" in done.stdout


def test_the_gateway_scan_fails_objects_the_published_schemas_refuse(tmp_path: Path) -> None:
    """A prod overlay patched into a route whose timeout is no Gateway API duration, whose
    retry count is a string, and another with a misspelt field (`timeout` for `timeouts`:
    the CRD lets it through, the API server would drop it), a policy with a misspelt
    `requestBufer`, plus a kind no published schema has: the scan (the path `make
    deploy-lint` takes: render, pick, validate) fails and names each."""
    overlay = tmp_path / "prod"
    overlay.mkdir()
    base = os.path.relpath(deploy_scan.OVERLAYS / "prod", overlay)
    stray = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRouteish",
        "metadata": {"name": "stray"},
    }
    (overlay / "stray.yaml").write_text(yaml.safe_dump(stray))
    patch = [
        {"op": "replace", "path": "/spec/rules/0/timeouts/request", "value": "30 seconds"},
        {"op": "replace", "path": "/spec/rules/0/retry/attempts", "value": "two"},
    ]
    misspelt_rule = [{"op": "add", "path": "/spec/rules/0/timeout", "value": {"request": "9s"}}]
    misspelt_policy = [{"op": "add", "path": "/spec/requestBufer", "value": {"limit": "1Ki"}}]
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [base, "stray.yaml"],
                "patches": [
                    {
                        "target": {"kind": "HTTPRoute", "name": "fixup-departments"},
                        "patch": yaml.safe_dump(patch),
                    },
                    {
                        "target": {"kind": "HTTPRoute", "name": "fixup-catalog"},
                        "patch": yaml.safe_dump(misspelt_rule),
                    },
                    {
                        "target": {"kind": "BackendTrafficPolicy", "name": "fixup-pages"},
                        "patch": yaml.safe_dump(misspelt_policy),
                    },
                ],
            }
        )
    )
    try:
        done = deploy_scan.gateway([overlay])
    except deploy_scan.Missing as exc:
        pytest.fail(str(exc), pytrace=False)
    assert done.returncode == 1, done.stdout + done.stderr
    route = "HTTPRoute fixup-departments (gateway.networking.k8s.io/v1)"
    assert f"{route}: /spec/rules/0/timeouts/request must match pattern" in done.stdout
    assert f"{route}: /spec/rules/0/retry/attempts must be integer" in done.stdout
    assert "HTTPRouteish stray (gateway.networking.k8s.io/v1): no published schema" in done.stdout
    catalog = "HTTPRoute fixup-catalog (gateway.networking.k8s.io/v1): TS2353"
    assert f"""{catalog}: Object literal may only specify known properties, and '"timeout"'""" in (
        done.stdout
    )
    assert "BackendTrafficPolicy fixup-pages (gateway.envoyproxy.io/v1alpha1): TS2353" in (
        done.stdout
    )
    assert "'\"requestBufer\"' does not exist" in done.stdout
    assert "HTTPRoute fixup-users (gateway.networking.k8s.io/v1): ok" in done.stdout


def test_the_gateway_scan_fails_a_render_without_gateway_objects(tmp_path: Path) -> None:
    """An overlay whose edge went missing is a finding, not a silent pass."""
    overlay = tmp_path / "bare"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["config.yaml"]}))
    (overlay / "config.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    )
    try:
        done = deploy_scan.gateway([overlay])
    except deploy_scan.Missing as exc:
        pytest.fail(str(exc), pytrace=False)
    assert done.returncode == 1
    assert "bare: no Gateway API object in the render" in done.stdout
