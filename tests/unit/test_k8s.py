"""Kubernetes manifests and the GitHub workflows, which cannot run here: each overlay
rendered by `kubectl kustomize` and validated by kubernetes-validate, the workflows and
Compose against their JSON schemas (check-jsonschema), yamllint, and the names and ports
of k8s, Compose, the registry, NGINX and Prometheus cross-checked."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lib import registry
from tests.unit.test_deploy import tool
from tools import compose, k8s, prometheus
from tools.generated import ROOT

OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def render(overlay: str) -> str:
    kubectl = tool("kubectl", "apt-get install -y kubectl (tools/packages.py LINTERS)")
    done = run(kubectl, "kustomize", str(OVERLAYS / overlay))
    assert done.returncode == 0, done.stderr
    return done.stdout


def kinds(text: str) -> dict[tuple[str, str], Any]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


def test_base_is_fresh() -> None:
    done = run(sys.executable, "-m", "tools.k8s", "check")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlay_renders_and_validates(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(render(overlay))
    validate = tool("kubernetes-validate", "pip install kubernetes-validate (pyproject dev)")
    done = run(validate, "--strict", "--quiet", str(rendered))
    assert done.returncode == 0, done.stdout + done.stderr
    docs = kinds(rendered.read_text())
    assert {d["metadata"]["namespace"] for k, d in docs.items() if k[0] != "Namespace"} == {
        f"fixup-{overlay}"
    }
    for s in registry.built_services():
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
            assert (kind, s.name) in docs, (kind, s.name)
    assert ("Job", "fixup-migrate") in docs
    images = {
        c["image"] for d in docs.values() if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }  # fmt: skip
    assert images == {"fixup:dev" if overlay == "dev" else "registry.invalid/fixup:latest"}


def test_k8s_compose_nginx_and_prometheus_name_the_same_services_and_ports() -> None:
    docs = kinds(render("prod"))
    apps = yaml.safe_load(compose.COMPOSE_FILE.read_text())["services"]
    nginx = "".join(p.read_text() for p in (ROOT / "nginx" / "compose").rglob("*.conf"))
    jobs = yaml.safe_load(prometheus.COMPOSE_FILE.read_text())["scrape_configs"]
    sd = {j["job_name"]: j["dns_sd_configs"][0] for j in jobs if "dns_sd_configs" in j}
    deployments = {name for kind, name in docs if kind == "Deployment"}
    assert deployments == {s.name for s in registry.built_services()}
    ingresses = [d for (kind, _), d in docs.items() if kind == "Ingress"]  # chat: its own
    routed = {
        p["backend"]["service"]["name"]: p["path"]
        for ingress in ingresses
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    for s in registry.built_services():
        pod = docs[("Deployment", s.name)]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == s.http_port
        assert ports.get("grpc") == s.grpc_port
        assert {p["name"]: p["port"] for p in docs[("Service", s.name)]["spec"]["ports"]} == ports
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(s.metrics_port)
        assert docs[("Deployment", s.name)]["spec"]["replicas"] == s.replicas
        assert apps[s.name]["environment"][f"{s.env_prefix}_PORT"] == str(s.http_port)
        assert sd[s.name]["port"] == s.metrics_port
        if s.behind_gateway:
            assert routed[s.name] == f"/api/{s.name}(/|$)(.*)"
            assert f"server {s.name}:{s.http_port} " in nginx
        else:
            assert s.name not in routed
    refs = {
        ref[key]["name"] for d in docs.values() if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"] for ref in c["envFrom"]
        for key in ("configMapRef", "secretRef") if key in ref
    }  # fmt: skip
    assert refs == {k8s.CONFIG, k8s.SECRETS}
    assert ("ConfigMap", k8s.CONFIG) in docs
    assert ("Secret", k8s.SECRETS) not in docs
    migrate = docs[("Job", "fixup-migrate")]["spec"]["template"]["spec"]["containers"][0]
    assert all(
        f"tools.migrate up {s.database}" in migrate["command"][2] for s in registry.MICROSERVICES
    )


def test_chat_gets_a_websocket_ingress_once_built() -> None:
    chat = dataclasses.replace(registry.get("chat"), built=True)
    main, websocket = k8s.ingresses([registry.get("departments"), chat])
    assert [p["backend"]["service"]["name"] for p in main["spec"]["rules"][0]["http"]["paths"]] == [
        "departments"
    ]
    notes = websocket["metadata"]["annotations"]
    assert (
        "proxy_set_header Upgrade $http_upgrade;"
        in notes["nginx.ingress.kubernetes.io/configuration-snippet"]
    )
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


@pytest.mark.parametrize(
    ("schema", "paths"),
    [
        ("vendor.github-workflows", [str(p) for p in WORKFLOWS]),
        ("vendor.compose-spec", [str(compose.COMPOSE_FILE)]),
    ],
)
def test_check_jsonschema_accepts(schema: str, paths: list[str]) -> None:
    binary = tool("check-jsonschema", "pip install check-jsonschema (pyproject dev)")
    assert paths
    done = run(binary, "--builtin-schema", schema, *paths)
    assert done.returncode == 0, done.stdout + done.stderr


def test_yamllint_accepts_deploy_workflows_elk_and_compose() -> None:
    binary = tool("yamllint", "pip install yamllint (pyproject dev)")
    targets = [".github", "deploy", "observability/elk", "docker-compose.yml", ".yamllint.yml"]
    done = run(binary, "--strict", *targets)
    assert done.returncode == 0, done.stdout


def test_workflows_test_on_pull_requests_and_release_without_secrets() -> None:
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    release_text = (ROOT / ".github/workflows/release.yml").read_text()
    release = yaml.safe_load(release_text)
    assert "pull_request" in ci[True]  # PyYAML reads the key `on` as True
    assert set(ci["jobs"]["test"]["services"]) == {"postgres", "mariadb", "redis"}
    assert release[True]["push"]["branches"] == ["main"]
    assert set(release["jobs"]) == {"test", "image", "migrate", "deploy"}
    assert release["permissions"]["id-token"] == "write"  # OIDC, no stored keys
    for text in [release_text, *(p.read_text() for p in WORKFLOWS)]:
        assert "secrets." not in text
    uses = {s.get("uses", "") for j in release["jobs"].values() for s in j.get("steps", [])}
    assert {
        "aws-actions/amazon-ecr-login@v2",
        "aws-actions/amazon-ecs-deploy-task-definition@v2",
    } <= uses
    assert "registry.built_services()" in release_text  # the ECS services come from the registry
