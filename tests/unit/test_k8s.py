"""Kubernetes manifests and the GitHub workflows, which cannot run here: each overlay
rendered by `kubectl kustomize` and validated by kubernetes-validate, the workflows and
Compose against their JSON schemas (check-jsonschema), yamllint, and the names and ports
of k8s, Compose, the registry, NGINX and Prometheus cross-checked. The Kubernetes files
are the source (ADR 0048's update): a service of lib/registry.py missing from them, or with
another port, address or route there, fails here."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lib import registry
from lib.config import ServiceSettings
from tests.unit.test_deploy import tool
from tests.unit.test_nginx_config import replay_safe_operations
from tools.deploy import alertmanager, images, nginx, nginx_copies, prometheus
from tools.deploy.generated import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
BASE = ROOT / "deploy" / "k8s" / "base"
SERVICES = ROOT / "deploy" / "k8s" / "services"
PAGES, ALERTMANAGER, GATEWAY = "pages", "alertmanager", "fixup"
CONFIG, SECRETS, SECRETS_PATH = "fixup-config", "fixup-secrets", "/run/secrets/fixup"
JWKS_PATH = "/.well-known/jwks.json"
PAGES_ROOT, PAGES_PORT = "/usr/share/nginx/pages", 8080
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


def test_the_base_has_a_component_for_every_built_service_and_no_other() -> None:
    base = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    built = {s.name for s in registry.built_services()}
    assert sorted(base["components"]) == sorted(f"../services/{n}" for n in built)
    assert {p.name for p in SERVICES.iterdir()} == built
    for name in built:
        component = yaml.safe_load((SERVICES / name / "kustomization.yaml").read_text())
        assert component["kind"] == "Component", name


def test_the_pages_pods_nginx_files_are_each_shipped() -> None:
    """nginx/kustomization.yaml ships every file of the pages server's rendering (those with
    placeholders from nginx/k8s/, kept fresh by `python -m tools.deploy.nginx_copies check`)."""
    rendered = nginx.render_pages_server(nginx_copies.pages_pod_layout())
    kustomization = yaml.safe_load((nginx.TEMPLATES / "kustomization.yaml").read_text())
    (config,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "fixup-pages-nginx"]
    shipped = dict(entry.split("=", 1) for entry in config["files"])
    assert set(shipped) == {rel.replace("/", "_") for rel in rendered}
    copies = nginx_copies.pages_pod_files()
    for rel in rendered:
        source = f"k8s/{rel}" if rel in copies else rel
        assert shipped[rel.replace("/", "_")] == (
            "pages-server.conf" if source == "nginx.conf" else source
        ), rel


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
    app_images = {
        c["image"] for d in docs.values()
        if d["kind"] == "Deployment"
        and d["metadata"]["name"] not in (PAGES, ALERTMANAGER)
        for c in d["spec"]["template"]["spec"]["containers"]
    }  # fmt: skip
    released = "registry.invalid/fixup:set-at-release"
    assert app_images == {"fixup:dev" if overlay == "dev" else released}
    (pages,) = docs[("Deployment", PAGES)]["spec"]["template"]["spec"]["containers"]
    assert pages["image"] == images.NGINX_UNPRIVILEGED
    # Alertmanager's config is the committed file (prod: with its receivers' integrations),
    # and its Service where Compose has it
    (am,) = docs[("Deployment", ALERTMANAGER)]["spec"]["template"]["spec"]["containers"]
    assert (
        am["image"] == yaml.safe_load(COMPOSE_FILE.read_text())["services"]["alertmanager"]["image"]
    )
    am_conf = docs[("ConfigMap", ALERTMANAGER)]["data"]["alertmanager.yml"]
    # prod: the committed file's routing tree with the receivers the overlay writes
    receivers = {r.pop("name"): r for r in yaml.safe_load(am_conf)["receivers"]}
    expected = (
        alertmanager.render(alertmanager.config(receivers))
        if overlay == "prod"
        else alertmanager.CONFIG_FILE.read_text()
    )
    assert am_conf == expected, f"{overlay}: not alertmanager.yml's routing tree"
    # each routing key read from a file of the Secret, where the pod mounts it
    mounts = {m["name"]: m["mountPath"] for m in am.get("volumeMounts", [])}
    keys = [
        c["routing_key_file"] for r in receivers.values() for c in r.get("pagerduty_configs", [])
    ]
    assert len(keys) == (2 if overlay == "prod" else 0), keys
    assert all(Path(key).parent == Path(mounts.get("secrets", "-")) for key in keys), keys
    (port,) = docs[("Service", ALERTMANAGER)]["spec"]["ports"]
    assert f"alertmanager:{port['port']}" in prometheus.COMPOSE_FILE.read_text()
    base = kinds((BASE / "pages.yaml").read_text())[("Deployment", PAGES)]
    assert pages["resources"] == base["spec"]["template"]["spec"]["containers"][0]["resources"]
    # the overlays size the services, not the pages server


def test_k8s_compose_nginx_and_prometheus_name_the_same_services_and_ports() -> None:
    docs = kinds(render("prod"))
    apps = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    nginx = "".join(p.read_text() for p in (ROOT / "nginx" / "compose").rglob("*.conf"))
    jobs = yaml.safe_load(prometheus.COMPOSE_FILE.read_text())["scrape_configs"]
    sd = {j["job_name"]: j["dns_sd_configs"][0] for j in jobs if "dns_sd_configs" in j}
    deployments = {name for kind, name in docs if kind == "Deployment"}
    third_party = {PAGES, ALERTMANAGER}
    assert deployments == {s.name for s in registry.built_services()} | third_party
    routes = [d for (kind, _), d in docs.items() if kind == "HTTPRoute"]
    routed = {
        ref["name"]: {m["path"]["value"] for r in route["spec"]["rules"] for m in r["matches"]}
        for route in routes
        for rule in route["spec"]["rules"]
        for ref in rule.get("backendRefs", [])  # the https redirect has none
        if route["metadata"]["name"] == f"fixup-{ref['name']}"
    }
    for s in registry.built_services():
        pod = docs[("Deployment", s.name)]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == s.http_port
        assert ports.get("grpc") == s.grpc_port
        assert {p["name"]: p["port"] for p in docs[("Service", s.name)]["spec"]["ports"]} == ports
        assert container["command"] == ["python", "-m", f"services.{s.name}"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env[f"{s.env_prefix}_PORT"] == str(s.http_port)
        assert env.get(f"{s.env_prefix}_GRPC_PORT") == (s.grpc_port and str(s.grpc_port))
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(s.metrics_port)
        assert docs[("Deployment", s.name)]["spec"]["replicas"] == s.replicas
        assert apps[s.name]["environment"][f"{s.env_prefix}_PORT"] == str(s.http_port)
        assert sd[s.name]["port"] == s.metrics_port
        if not (s.behind_gateway or s.side_routes):
            assert s.name not in routed
            continue
        if s.behind_gateway:
            assert f"/api/{s.name}" in routed[s.name]
        else:  # a gRPC service's side-port paths, exactly
            assert routed[s.name] == {f"/api/{s.name}{path}" for path in s.side_routes}
        rules = docs[("HTTPRoute", f"fixup-{s.name}")]["spec"]["rules"]
        backends = {(ref["name"], ref["port"]) for rule in rules for ref in rule["backendRefs"]}
        assert backends == {(s.name, s.http_port)}
        assert f"server {s.name}:{s.http_port} " in nginx
    refs = {
        ref[key]["name"] for d in docs.values() if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"] for ref in c.get("envFrom", [])
        for key in ("configMapRef", "secretRef") if key in ref
    }  # fmt: skip
    assert refs == {CONFIG}  # the Secret is never variables: files (ADR 0036)
    # how a service reaches the others: each service's component adds its own address
    config = docs[("ConfigMap", CONFIG)]["data"]
    assert {k: config.get(k) for k in registry.peer_addresses()} == registry.peer_addresses()
    readers = [("Deployment", s.name) for s in registry.built_services()]
    for d in (docs[kind_name] for kind_name in [*readers, ("Job", "fixup-migrate")]):
        pod = d["spec"]["template"]["spec"]
        assert {"name": "secrets", "secret": {"secretName": SECRETS}} in pod["volumes"]
        mount = {"name": "secrets", "mountPath": SECRETS_PATH, "readOnly": True}
        assert all(mount in c["volumeMounts"] for c in pod["containers"]), d["metadata"]
    assert docs[("ConfigMap", CONFIG)]["data"]["SECRETS_DIR"] == SECRETS_PATH
    assert ("Secret", SECRETS) not in docs
    # every database of the registry the image carries, one after the other, stopping at
    # the first failure
    migrate = docs[("Job", "fixup-migrate")]["spec"]["template"]["spec"]["containers"][0]
    script = migrate["command"][2]
    assert migrate["command"][:2] == ["sh", "-c"]
    assert script.startswith("set -e\n")
    (listing,) = re.findall(r"python -c '([^']+)'", script)
    done = run(sys.executable, "-c", listing)
    assert done.stdout.split() == [s.database for s in registry.MICROSERVICES], done.stderr
    assert 'python -m tools.migrations.migrate up "$db"' in script


def rules(route: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["name"]: rule for rule in route["spec"]["rules"]}


def test_each_route_retries_what_nginx_retries_and_nothing_else() -> None:
    """ADR 0022 on the Gateway API: the idempotent methods and the replay-safe writes (an
    Idempotency-Key to an operation whose OpenAPI document takes it: nginx's own list) are
    retried, twice at most, like proxy_next_upstream_tries 3; any other write goes once."""
    docs = kinds(render("prod"))
    replay = replay_safe_operations()
    for s in registry.gateway_services():
        if not s.built:
            continue
        by_name = rules(docs[("HTTPRoute", f"fixup-{s.name}")])
        idempotent = [rule for name, rule in by_name.items() if name.startswith("idempotent-")]
        methods = [m["method"] for rule in idempotent for m in rule["matches"]]
        assert sorted(methods) == ["DELETE", "GET", "HEAD", "OPTIONS", "PUT"]
        assert all(rule["retry"] == {"attempts": 2} for rule in idempotent)
        # the CRD's CEL rule: ReplacePrefixMatch only with exactly one PathPrefix match
        for rule in by_name.values():
            rewrites = [f for f in rule.get("filters", []) if f["type"] == "URLRewrite"]
            if rewrites:
                (match,) = rule["matches"]
                assert match["path"]["type"] == "PathPrefix"
        assert "retry" not in by_name["once"]
        assert by_name["once"]["matches"] == [
            {"path": {"type": "PathPrefix", "value": f"/api/{s.name}"}}
        ]
        mine = [(m, path) for m, name, path in replay if name == s.name]
        if not mine:
            assert "replay-safe" not in by_name
            continue
        safe = by_name["replay-safe"]
        assert safe["retry"] == {"attempts": 2}
        assert [(m["method"], m["path"]["value"]) for m in safe["matches"]] == [
            (method, f"^/api/{s.name}{path}$") for method, path in mine
        ]
        for match in safe["matches"]:
            (header,) = match["headers"]
            assert header["name"] == "Idempotency-Key"
            assert not re.fullmatch(header["value"], "")
            assert re.fullmatch(header["value"], "k-1")
            assert not re.fullmatch(header["value"], " ")
        for rule in by_name.values():  # nginx's proxy_read_timeout per attempt
            assert rule["timeouts"]["backendRequest"] == "30s"


def test_the_gateways_policies_carry_nginxs_bounds() -> None:
    docs = kinds(render("prod"))
    clients = docs[("ClientTrafficPolicy", "fixup-clients")]["spec"]
    assert clients["targetRefs"] == [target("Gateway", GATEWAY)]
    assert clients["headers"]["requestID"] == "PreserveOrGenerate"  # then the services' rule
    received = clients["timeout"]["http"]["requestReceivedTimeout"]
    assert received == f"{round(nginx.CLIENT_HEADER_TIMEOUT + nginx.CLIENT_BODY_TIMEOUT)}s"
    backends = docs[("BackendTrafficPolicy", "fixup-backends")]["spec"]
    assert backends["requestBuffer"] == {"limit": "1Mi"}  # client_max_body_size 1m
    assert backends["timeout"]["tcp"] == {"connectTimeout": "2s"}  # proxy_connect_timeout
    # an idle pooled connection closed by Envoy before the service closes it (ADR 0005)
    idle = backends["timeout"]["http"]["connectionIdleTimeout"]
    assert (
        int(idle.removesuffix("s")) < ServiceSettings.model_fields["http_keepalive_timeout"].default
    )
    uploads = docs[("BackendTrafficPolicy", "fixup-users-uploads")]["spec"]
    (upload,) = registry.get("users").uploads
    assert uploads["requestBuffer"]["limit"] == upload.max_body.replace("m", "Mi")
    route = docs[("HTTPRoute", "fixup-users-uploads")]
    assert [m["path"]["value"] for m in route["spec"]["rules"][0]["matches"]] == [
        f"^/api/users{upload.path}$"
    ]
    for (kind, name), d in docs.items():
        if kind == "HTTPRoute" and name != "fixup-https-redirect":
            assert d["spec"]["parentRefs"] == [{"name": GATEWAY, "sectionName": "https"}]


def target(kind: str, name: str) -> dict[str, str]:
    return {"group": "gateway.networking.k8s.io", "kind": kind, "name": name}


def service_websocket_paths(service: registry.Microservice) -> list[str]:
    """The paths (regex, after /api/<svc>) of the operations whose OpenAPI document answers
    101 Switching Protocols."""
    document = nginx.OPENAPI_DIR / f"{service.name}.json"
    if not service.websocket or not document.is_file():
        return []
    return [
        re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(path))
        for path, item in json.loads(document.read_text())["paths"].items()
        if "101" in item.get("get", {}).get("responses", {})
    ]


def test_a_websocket_service_gets_its_upgrade_route() -> None:
    """The upgrade with no request timeout ("0s") and no body buffer (a buffered upgrade
    never reaches the service), for each operation of its OpenAPI document answering 101;
    a service with none has no such route."""
    docs = kinds(render("prod"))
    for s in registry.built_services():
        name = f"fixup-{s.name}-websocket"
        paths = service_websocket_paths(s)
        assert (("HTTPRoute", name) in docs) == bool(paths), s.name
        if not paths:
            continue
        (rule,) = docs[("HTTPRoute", name)]["spec"]["rules"]
        assert rule["timeouts"] == {"request": "0s"}
        assert [m["path"]["value"] for m in rule["matches"]] == [
            f"^/api/{s.name}{p}$" for p in paths
        ]
        for match in rule["matches"]:
            assert match["method"] == "GET"
            assert re.fullmatch(match["headers"][0]["value"].removeprefix("(?i)"), "websocket")
        assert rule["backendRefs"] == [{"name": s.name, "port": s.http_port}]
        policy = docs[("BackendTrafficPolicy", name)]["spec"]
        assert "requestBuffer" not in policy
        assert policy["targetRefs"] == [target("HTTPRoute", name)]
    (match,) = docs[("HTTPRoute", "fixup-chat-websocket")]["spec"]["rules"][0]["matches"]
    assert re.fullmatch(match["path"]["value"].strip("^$"), "/api/chat/v1/conversations/7/ws")
    # the server pings every 20 s: an idle stream is closed well after that
    clients = docs[("ClientTrafficPolicy", "fixup-clients")]["spec"]
    idle = clients["timeout"]["http"]["streamIdleTimeout"]
    assert 40 <= int(idle.removesuffix("s")) <= 120


@pytest.mark.parametrize(
    ("schema", "paths"),
    [
        ("vendor.github-workflows", [str(p) for p in WORKFLOWS]),
        ("vendor.compose-spec", [str(COMPOSE_FILE)]),
    ],
)
def test_check_jsonschema_accepts(schema: str, paths: list[str]) -> None:
    binary = tool("check-jsonschema", "pip install check-jsonschema (pyproject dev)")
    assert paths
    done = run(binary, "--builtin-schema", schema, *paths)
    assert done.returncode == 0, done.stdout + done.stderr


def test_yamllint_accepts_deploy_workflows_elk_and_compose() -> None:
    binary = tool("yamllint", "pip install yamllint (pyproject dev)")
    targets = [".github", "deploy", "observability/elk", "docker-compose.yml", ".yamllint.yml",
               "nginx/kustomization.yaml"]  # fmt: skip
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
    assert release["permissions"] == {}  # per job (tests/unit/test_supply_chain.py)
    for job in ("image", "migrate", "deploy"):  # OIDC, no stored keys
        assert release["jobs"][job]["permissions"]["id-token"] == "write"
    for text in [release_text, *(p.read_text() for p in WORKFLOWS)]:
        assert "secrets." not in text
    uses = {
        s.get("uses", "").split("@")[0]
        for j in release["jobs"].values()
        for s in j.get("steps", [])
    }
    assert {"aws-actions/amazon-ecr-login", "aws-actions/amazon-ecs-deploy-task-definition"} <= uses
    assert "registry.built_services()" in release_text  # the ECS services come from the registry


def make_targets(commands: list[str]) -> list[str]:
    """The make targets of shell commands, in order (`VAR=value` arguments left out)."""
    targets = []
    for command in commands:
        for call in re.findall(r"\bmake ([^;&|#\n]+)", command):
            targets += [w for w in shlex.split(call) if "=" not in w and not w.startswith("-")]
    return targets


def test_the_workflow_runs_what_ci_run_runs() -> None:
    """ci.yml says it does .ci/run's steps on GitHub's machines: the same make targets, in
    the same order."""
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    steps = [s["run"] for s in ci["jobs"]["test"]["steps"] if "run" in s]
    script = (ROOT / ".ci" / "run").read_text()
    expected = make_targets(
        [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    )
    # make test runs the closed checkout's sample and migrate-compat among its files
    # (tests/integration/test_closed_checkout.py, test_migrations_compat.py)
    assert {"migrate-lint", "sqlc-vet", "deploy-lint", "test"} <= set(expected)
    assert make_targets(steps) == expected


# --- the account pages --------------------------------------------------------------------

SAFE_LOG_OPERATORS = {  # none of them can hold a query string, a Referer or a credential
    "START_TIME", "REQ", "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "REQ_WITHOUT_QUERY",
    "PROTOCOL", "RESPONSE_CODE", "RESPONSE_FLAGS", "BYTES_SENT", "BYTES_RECEIVED", "DURATION",
    "RESPONSE_DURATION", "UPSTREAM_HOST", "ROUTE_NAME",
}  # fmt: skip


def volume_files(docs: dict[tuple[str, str], Any], volume: dict[str, Any]) -> dict[str, str]:
    """A ConfigMap volume as the pod sees it: path under the mount -> text."""
    data = docs[("ConfigMap", volume["configMap"]["name"])]["data"]
    return {item["path"]: data[item["key"]] for item in volume["configMap"]["items"]}


def test_the_account_pages_are_served_from_the_repositorys_own_files() -> None:
    docs = kinds(render("prod"))
    pod = docs[("Deployment", PAGES)]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    # every file of nginx/pages, byte for byte, nothing else (kustomize reads the files)
    pages = volume_files(docs, volumes["pages"])
    assert pages == {
        p.relative_to(nginx.PAGES_DIR).as_posix(): p.read_text()
        for p in nginx.PAGES_DIR.rglob("*") if p.is_file()
    }  # fmt: skip
    # the server: pages-server.conf as rendered for the pod, the gateway's snippets as they are
    config = volume_files(docs, volumes["config"])
    rendered = nginx.render_pages_server(nginx_copies.pages_pod_layout())
    assert set(config) == set(rendered)
    for rel, text in config.items():  # a copy from nginx/k8s/ carries its header line
        copied = text.startswith(nginx_copies.COPY_HEADER)
        assert text.removeprefix(nginx_copies.COPY_HEADER) == rendered[rel], rel
        assert copied == (rel in nginx_copies.pages_pod_files()), rel
    for rel in ("snippets/pages.conf", "snippets/errors.conf", "snippets/problem.conf"):
        assert config[rel] == (nginx.TEMPLATES / rel).read_text(), rel
    for rel, text in config.items():
        assert all(inc in config for inc in nginx.INCLUDE.findall(text)), rel
    served = "".join(config.values())
    for alias in re.findall(r"alias ([^;]+);", served):
        relative = alias.removeprefix(PAGES_ROOT + "/")
        assert relative in pages or any(p.startswith(relative) for p in pages), alias
    # the container: read-only mounts, nothing written but /tmp (its restricted security
    # context and its resources: tests/unit/test_k8s_security.py)
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert container["command"][:3] == [
        "nginx",
        "-c",
        f"{mounts['config']['mountPath']}/nginx.conf",
    ]
    assert mounts["config"]["readOnly"]
    assert mounts["pages"]["readOnly"]
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes["tmp"]
    assert f"alias {mounts['pages']['mountPath']}/verify-email.html;" in served
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+[\w.-]*", container["image"]), container["image"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "location = /healthz {" in served
    (port,) = container["ports"]
    assert f"listen {port['containerPort']};" in config["nginx.conf"]
    service = docs[("Service", PAGES)]["spec"]
    assert service["ports"] == [
        {"name": "http", "port": port["containerPort"], "targetPort": "http"}
    ]
    assert ("PodDisruptionBudget", PAGES) in docs
    assert docs[("Deployment", PAGES)]["spec"]["replicas"] >= 2


def test_the_route_sends_the_mail_links_and_the_assets_to_the_pages() -> None:
    docs = kinds(render("prod"))
    (rule,) = docs[("HTTPRoute", "fixup-pages")]["spec"]["rules"]
    assert "filters" not in rule  # no rewrite: the paths are the pages'
    assert rule["backendRefs"] == [{"name": PAGES, "port": PAGES_PORT}]
    kinds_of = {"Exact": "Exact", "PathPrefix": "Prefix"}
    paths = {(m["path"]["value"], kinds_of[m["path"]["type"]]) for m in rule["matches"]}
    policy = docs[("BackendTrafficPolicy", "fixup-pages")]["spec"]
    assert policy["requestBuffer"] == {"limit": "1Ki"}  # the pages take no body
    # the locations of the snippet the gateway and the pages server both include
    snippet = (nginx.TEMPLATES / "snippets" / "account-pages.conf").read_text()
    locations = re.findall(r"^location (= )?(/\S*) \{", snippet, re.MULTILINE)
    assert paths == {(path, "Exact" if exact else "Prefix") for exact, path in locations}
    # the users service's mail links, and every script and style the pages load
    links = re.findall(
        r"public_base_url}(/[\w-]+)#token=", (ROOT / "services/users/email_links.py").read_text()
    )
    assert sorted(links) == ["/reset-password", "/verify-email"]
    assert {(link, "Exact") for link in links} <= paths
    prefixes = [path for path, kind in paths if kind == "Prefix"]
    for page in nginx.PAGES_DIR.glob("*.html"):
        for url in re.findall(r'(?:src|href)="(/[^"]+)"', page.read_text()):
            assert any(url.startswith(prefix) for prefix in prefixes), (page.name, url)


def test_the_gateways_access_log_holds_no_query_string() -> None:
    """Envoy's default access log writes the path with its query (an old mail link's
    `?token=`): the EnvoyProxy's JSON format uses only operators that cannot hold a query,
    a Referer or a credential."""
    docs = kinds(render("prod"))
    gateway = docs[("Gateway", GATEWAY)]["spec"]
    ref = gateway["infrastructure"]["parametersRef"]
    proxy = docs[(ref["kind"], ref["name"])]["spec"]
    (setting,) = proxy["telemetry"]["accessLog"]["settings"]
    assert setting["format"]["type"] == "JSON"
    fields = setting["format"]["json"]
    operators = {op for value in fields.values() for op in re.findall(r"%([A-Z_]+)", value)}
    assert operators == SAFE_LOG_OPERATORS
    assert fields["path"].startswith("%REQ_WITHOUT_QUERY(")
    headers = {h for value in fields.values() for h in re.findall(r"%REQ\(([^)]+)\)%", value)}
    assert headers == {":METHOD", "X-REQUEST-ID", "USER-AGENT"}  # no :PATH, no Referer
    assert {"time", "request_id", "method", "path", "status"} <= set(fields)


def test_the_gateway_serves_the_jwk_set_where_nginx_does() -> None:
    """ADR 0032: /.well-known/jwks.json, an exact location in both NGINX configurations,
    reaches users unchanged through the route `fixup-jwks` (read-only: retried)."""
    docs = kinds(render("prod"))
    (rule,) = docs[("HTTPRoute", "fixup-jwks")]["spec"]["rules"]
    users = registry.get("users")
    assert rule["backendRefs"] == [{"name": "users", "port": users.http_port}]
    assert "filters" not in rule  # the path is users' own
    assert {(m["path"]["type"], m["path"]["value"], m["method"]) for m in rule["matches"]} == {
        ("Exact", JWKS_PATH, "GET"),
        ("Exact", JWKS_PATH, "HEAD"),
    }
    assert rule["retry"] == {"attempts": 2}
    for conf in (
        ROOT / "nginx/conf.d/30-gateway.conf",
        ROOT / "nginx/compose/conf.d/30-gateway.conf",
    ):
        assert f"location = {JWKS_PATH} {{" in conf.read_text(), conf
