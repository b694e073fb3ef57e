"""lib/registry.py and every list derived from it agree: databases, NGINX upstreams, the
Procfile, the swag list, the services' own settings and .env.example; the gateway's
generated upstream and location blocks.

(Profiling ports: tests/unit/test_profiling.py; exporter routes == OpenAPI paths:
tests/unit/test_nginx_exporter.py.)
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
from pathlib import Path

import pytest

from lib import registry
from lib.config import ServiceSettings
from lib.db.connecting import engine_of
from tools import swag
from tools.deploy import nginx, nginx_copies, procfile
from tools.local.databases import DATABASES, database_name

ROOT = Path(__file__).resolve().parents[2]
BUILT = [s for s in registry.MICROSERVICES if s.built]


def test_the_registry() -> None:
    names = [s.name for s in registry.MICROSERVICES]
    assert len(set(names)) == len(names), "a service is listed twice"
    assert all(re.fullmatch(r"[a-z][a-z0-9]*", name) for name in names)
    assert len({s.database for s in registry.MICROSERVICES}) == len(names)
    ports = [p for s in registry.MICROSERVICES for p in (*s.http_ports, s.grpc_port) if p]
    assert len(ports) == len(set(ports)), "a port is used twice"
    assert len({s.index for s in registry.MICROSERVICES}) == len(names)
    assert registry.get("chat").http_ports == (8105, 8205)
    assert registry.get("chat").replicas == 2
    # every replica of every kind, at the most one host runs, on a port of its own
    widest = registry.scaled(registry.MAX_REPLICAS)
    ports = [p for s in widest for p in (*s.http_ports, s.grpc_port) if p]
    assert len(ports) == len(set(ports)), "a replica's port is another's"
    points = registry.get("points")
    assert (points.grpc_port, points.metrics_port, points.engine) == (50051, 9105, "mysql")
    assert not points.behind_gateway
    with pytest.raises(KeyError, match="known: departments"):
        registry.get("nope")


@pytest.mark.parametrize("service", registry.MICROSERVICES, ids=lambda s: s.name)
def test_built_means_the_package_runs(service: registry.Microservice) -> None:
    assert (ROOT / "services" / service.name / "__main__.py").is_file() == service.built


@pytest.mark.parametrize("service", BUILT, ids=lambda s: s.name)
def test_service_settings_defaults_match(service: registry.Microservice) -> None:
    module = importlib.import_module(f"services.{service.name}.settings")
    [settings] = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ServiceSettings) and cls.__module__ == module.__name__
    ]
    built = settings.model_validate({})  # nothing from the environment: the defaults
    assert built.port == service.http_port
    if service.grpc_port is not None:
        assert built.model_dump()["grpc_port"] == service.grpc_port
    dsn = built.database_url
    assert (database_name(dsn), engine_of(dsn)) == (f"fixup_{service.database}", service.engine)
    given = settings.model_validate({"port": 1, "database_url": "postgresql://h/x"})
    assert (given.port, given.database_url) == (1, "postgresql://h/x")  # what is set wins


def test_databases_are_the_registry_s() -> None:
    assert {name: db.engine for name, db in DATABASES.items()} == {
        s.database: s.engine for s in registry.MICROSERVICES
    }
    assert {p.name for p in (ROOT / "migrations").iterdir() if p.is_dir()} == set(DATABASES)


def upstream_servers(conf: str) -> dict[str, list[str]]:
    blocks = re.findall(r"^upstream (\w+) \{(.*?)^\}", conf, re.M | re.S)
    return {name: re.findall(r"^\s*server (\S+) ", body, re.M) for name, body in blocks}


def test_nginx_upstreams_are_the_routed_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in registry.MICROSERVICES:
        monkeypatch.delenv(f"{service.env_prefix}_PORT", raising=False)
    conf = nginx.render_files(nginx.Layout())["conf.d/20-upstreams.conf"]
    assert upstream_servers(conf) == {
        s.name: [f"127.0.0.1:{port}" for port in s.http_ports] for s in registry.routed_services()
    }
    assert "points" in upstream_servers(conf)  # its side port, for its audit list
    compose = nginx.render_files(nginx_copies.compose_layout())["conf.d/20-upstreams.conf"]
    assert upstream_servers(compose)["chat"] == ["chat:8105"]


def test_procfile_is_rendered_from_the_registry() -> None:
    committed = (ROOT / "Procfile").read_text()
    assert committed == procfile.render(), "stale Procfile: run make procfile"
    assert procfile.main(["check"]) == 0
    processes = dict(
        line.split(": ", 1) for line in committed.splitlines() if not line.startswith("#")
    )
    started = {name: cmd for name, cmd in processes.items() if "-m services." in cmd}
    replicas = {f"{s.name}_{n}" for s in BUILT for n in range(2, s.replicas + 1)}
    assert set(started) == {s.name for s in BUILT} | replicas
    assert started["chat_2"] == f"env CHAT_PORT=8205 {CHAT_REDIS} CHAT_PROFILING_PORT=7110 " + (
        ".venv/bin/python -m services.chat"
    )
    for service in BUILT:
        command = started[service.name]
        assert f"{service.env_prefix}_PORT={service.http_port} " in command
        assert command.endswith(f"-m services.{service.name}")
    assert "POINTS_GRPC_PORT=50051 " in started["points"]
    assert {"nginx", "nginx_exporter"} <= set(processes)


CHAT_REDIS = "CHAT_REDIS_URL=${CHAT_REDIS_URL:-${REDIS_URL:-redis://127.0.0.1:6379/0}}"


def test_procfile_starts_every_replica() -> None:
    chat = registry.get("chat")
    lines = procfile.service_lines(chat)
    assert lines == [
        f"chat: env CHAT_PORT=8105 {CHAT_REDIS} .venv/bin/python -m services.chat",
        f"chat_2: env CHAT_PORT=8205 {CHAT_REDIS} CHAT_PROFILING_PORT=7110 "
        ".venv/bin/python -m services.chat",
    ]
    # every service shares the one Redis (revocations, limits): the default run's topology
    for service in BUILT:
        prefix = service.env_prefix
        shared = (
            f"{prefix}_REDIS_URL=${{{prefix}_REDIS_URL:-${{REDIS_URL:-redis://127.0.0.1:6379/0}}}}"
        )
        assert all(shared in line for line in procfile.service_lines(service))


def test_replicas_is_a_number_for_every_http_service(tmp_path: Path) -> None:
    """`make run replicas=3`: three of every HTTP service, NGINX's upstreams over the same
    ports; a gRPC service (points) keeps its one process; out of range is refused."""
    out = tmp_path / "Procfile"
    assert procfile.main(["write", "--replicas", "3", "--out", str(out)]) == 0
    text = out.read_text()
    names = {line.split(":", 1)[0] for line in text.splitlines() if "-m services." in line}
    http = [s for s in BUILT if s.behind_gateway]
    grpc = {s.name for s in BUILT if not s.behind_gateway}  # a scaffolded one too
    assert "points" in grpc
    assert names == {f"{s.name}{k}" for s in http for k in ("", "_2", "_3")} | grpc
    assert "ORDERS_PORT=8304 " in text
    assert "nginx: .venv/bin/python -m tools.deploy.nginx run --optional --replicas 3" in text
    conf = nginx.render_files(nginx.Layout(replicas=3))["conf.d/20-upstreams.conf"]
    assert upstream_servers(conf)["orders"] == [
        "127.0.0.1:8104",
        "127.0.0.1:8204",
        "127.0.0.1:8304",
    ]
    for bad in ("0", str(registry.MAX_REPLICAS + 1)):
        assert procfile.main(["write", "--replicas", bad, "--out", str(out)]) == 2
    assert registry.scaled(None) == registry.MICROSERVICES


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "redis://127.0.0.1:6379/0"),
        ({"REDIS_URL": ""}, "redis://127.0.0.1:6379/0"),  # .env.example's empty value
        ({"REDIS_URL": "redis://10.0.0.9:6379/1"}, "redis://10.0.0.9:6379/1"),
        ({"REDIS_URL": "redis://a/1", "CHAT_REDIS_URL": "redis://b/2"}, "redis://b/2"),
    ],
)
def test_chat_replicas_share_a_redis_under_make_run(env: dict[str, str], expected: str) -> None:
    """Both replicas must publish through the same Redis, or a message posted on one never
    reaches the sockets of the other: the shell of each Procfile line fills the default."""
    line = procfile.service_lines(registry.get("chat"))[1].split(": ", 1)[1]
    command = line.replace(".venv/bin/python -m services.chat", "printenv CHAT_REDIS_URL")
    shell = {"PATH": os.environ["PATH"], **env}
    done = subprocess.run(["sh", "-c", command], env=shell, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_stale_procfile_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "Procfile"
    stale.write_text("departments: python -m services.departments\n")
    monkeypatch.setattr(procfile, "PROCFILE", stale)
    assert procfile.main(["check"]) == 1
    assert "make procfile" in capsys.readouterr().err


def test_swag_documents_the_built_rest_services() -> None:
    assert tuple(s.name for s in BUILT if s.behind_gateway) == swag.DOCUMENTED
    assert "points" not in swag.DOCUMENTED  # gRPC: no OpenAPI document
    assert {p.stem for p in (ROOT / "docs" / "openapi").glob("*.json")} == set(swag.DOCUMENTED)


def test_env_example_lists_the_registry_ports() -> None:
    """.env.example is edited by hand; `make new-service` adds a service's lines above its
    marked ones (tools/scaffold/env/): every service's port, database and address."""
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for service in registry.MICROSERVICES:
        assert env[f"{service.env_prefix}_PORT"] == str(service.http_port)
        url = f"{service.env_prefix}_DATABASE_URL"
        assert database_name(env[url]) == f"fixup_{service.database}"
        assert engine_of(env[url]) == service.engine
        assert env[url] == service.default_database_url
        if service.behind_gateway:
            assert env[f"{service.env_prefix}_URL"] == f"http://127.0.0.1:{service.http_port}"
        else:
            assert env[f"{service.env_prefix}_GRPC_PORT"] == str(service.grpc_port)
            assert env[f"{service.env_prefix}_GRPC_ADDR"] == service.local_grpc_addr
