"""nginx/ templates and tools/deploy/nginx.py without running nginx (nginx -t: tests/e2e)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from lib import registry
from tools.deploy import nginx, nginx_copies


def test_every_placeholder_is_filled(tmp_path: Path) -> None:
    layout = nginx.Layout(runtime=tmp_path / "rt", access_log=tmp_path / "log" / "access.log")
    conf = nginx.render(layout)
    assert conf == tmp_path / "rt" / "conf" / "nginx.conf"
    written = {
        p.relative_to(tmp_path / "rt" / "conf").as_posix(): p.read_text()
        for p in (tmp_path / "rt" / "conf").rglob("*.conf")
    }
    # every template was written (a render writing nothing must fail here), filled
    templates = {p.relative_to(nginx.TEMPLATES).as_posix() for p in nginx.templates()}
    assert set(written) == templates
    assert {"nginx.conf", "conf.d/20-upstreams.conf", "conf.d/30-gateway.conf"} <= templates
    for rel, text in written.items():
        assert not nginx.PLACEHOLDER.search(text), rel
    assert f"listen {nginx.LISTEN};" in written["conf.d/30-gateway.conf"]
    assert f"access_log {layout.access_log}" in written["conf.d/10-logging.conf"]
    assert (tmp_path / "rt" / "tmp").is_dir()
    assert (tmp_path / "log").is_dir()


def test_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(nginx.RenderError, match="NOPE"):
        nginx.fill("listen ${NOPE};", {}, "x.conf")
    assert nginx.fill("set $a $b; ${A}", {"A": "1"}, "x") == "set $a $b; 1"


def test_upstream_arguments() -> None:
    parsed = nginx.parse_upstreams(["chat=127.0.0.1:8105,127.0.0.1:8205", "users=h:1"])
    assert parsed == {"chat": ["127.0.0.1:8105", "127.0.0.1:8205"], "users": ["h:1"]}
    for bad in ("chat", "nope=1:2", "chat="):
        with pytest.raises(nginx.RenderError):
            nginx.parse_upstreams([bad])
    files = nginx.render_files(nginx.Layout(upstreams=parsed))
    upstreams = files["conf.d/20-upstreams.conf"]
    assert "server 127.0.0.1:8105 max_fails=1" in upstreams
    assert "server 127.0.0.1:8205 max_fails=1" in upstreams


def test_the_slow_client_timeouts(tmp_path: Path) -> None:
    """10 s for a head, 15 s between two reads of a body by default; nginx takes no
    fraction of a second, so a shorter one (the e2e tests') is written in ms."""
    gateway = nginx.render_files(nginx.Layout())["conf.d/30-gateway.conf"]
    assert re.search(r"client_header_timeout 10s;", gateway)
    assert re.search(r"client_body_timeout +15s;", gateway)
    args = ["render", "--runtime", str(tmp_path), "--access-log", str(tmp_path / "a.log")]
    assert nginx.main([*args, "--client-header-timeout", "0.5", "--client-body-timeout", "2"]) == 0
    written = (tmp_path / "conf" / "conf.d" / "30-gateway.conf").read_text()
    assert re.search(r"client_header_timeout 500ms;", written)
    assert re.search(r"client_body_timeout +2s;", written)
    with pytest.raises(ValueError, match="at least 1 ms"):
        nginx.nginx_time(0.0001)
    assert nginx.main([*args, "--client-header-timeout", "0"]) != 0  # said, not a traceback


def test_default_ports_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERS_PORT", "9999")
    files = nginx.render_files(nginx.Layout())
    assert "server 127.0.0.1:9999 " in files["conf.d/20-upstreams.conf"]
    assert "server 127.0.0.1:8101 " in files["conf.d/20-upstreams.conf"]


def locations(conf: str) -> dict[str, str]:
    """A server's locations: their path (or regular expression) -> body."""
    found = re.findall(r"^    location (?:[=~] )?(\S+) \{\n(.*?)^    \}", conf, re.M | re.S)
    return dict(found)


def test_every_http_service_has_an_upstream_and_a_location() -> None:
    """The blocks written in the templates (`make new-service` adds a REST service's) are the
    registry's: an upstream per routed service, `/api/<name>/` and its `/_replay/<name>/`
    per REST one, its WebSocket and upload routes, a gRPC service's `side_routes`."""
    files = nginx.render_files(nginx.Layout())
    gateway = files["conf.d/30-gateway.conf"]
    conf = files["conf.d/20-upstreams.conf"]
    upstreams = dict(re.findall(r"^upstream (\w+) \{(.*?)^\}", conf, re.M | re.S))
    routes = locations(gateway)
    passes = set(re.findall(r"proxy_pass http://(\w+)/?;", gateway))
    assert set(upstreams) == passes == set(nginx.HTTP_SERVICES)
    assert {p for p in routes if p.startswith("/api/") and p.endswith("/")} == {
        f"/api/{s.name}/" for s in registry.gateway_services()
    }
    for s in registry.gateway_services():
        main, replay = routes[f"/api/{s.name}/"], routes[f"/_replay/{s.name}/"]
        assert f"rewrite ^/api/{s.name}/(.*)$ /_replay/{s.name}/$1 last;" in main
        assert "internal;" in replay
        assert "proxy_next_upstream error timeout non_idempotent;" in replay
        for body in (main, replay):
            assert f"set $fixup_service {s.name};" in body
            assert f"proxy_pass http://{s.name}/;" in body
        # WebSocket: the upgrade passed, reads longer than its pings, spread by load
        assert ("proxy_set_header Upgrade" in main) == ("least_conn;" in upstreams[s.name])
        assert ("proxy_read_timeout 75s;" in main) == s.websocket
        for upload in s.uploads:
            body = routes[f"^/api/{s.name}{upload.path}$"]
            assert f"client_max_body_size {upload.max_body};" in body
            assert f"proxy_pass http://{s.name};" in body
    # a gRPC service's side port: its `side_routes` exactly, nothing else of it
    side = {(n, p) for n, p in re.findall(r"location = /api/(\w+)(/\S*) \{", gateway)}
    assert side == {(s.name, p) for s in registry.MICROSERVICES for p in s.side_routes}
    assert ("points", "/v1/audit-events") in side


def test_compose_copy_is_fresh() -> None:
    assert nginx_copies.main(["check"]) == 0, "run: python -m tools.deploy.nginx_copies"


def test_missing_nginx_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nginx, "nginx_binary", lambda: None)
    code = nginx.main(
        ["test", "--runtime", str(tmp_path / "rt"), "--access-log", str(tmp_path / "a.log")]
    )
    assert code == 2
    assert "apt-get install -y nginx" in capsys.readouterr().err


def test_a_moved_first_replica_keeps_the_others() -> None:
    """`CHAT_PORT` (as .env.example sets it) moves the first replica, as in the Procfile;
    the second replica stays behind the gateway."""
    assert nginx.default_servers("chat", {}) == ["127.0.0.1:8105", "127.0.0.1:8205"]
    assert nginx.default_servers("chat", {"CHAT_PORT": "9105"}) == [
        "127.0.0.1:9105",
        "127.0.0.1:8205",
    ]
    assert nginx.default_servers("orders", {"ORDERS_PORT": "9104"}) == ["127.0.0.1:9104"]


def test_the_log_redaction_uses_lib_redact_and_log_redact_params(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_REDACT_PARAMS", "api_key")
    logging_conf = nginx.render_files(nginx.Layout())["conf.d/10-logging.conf"]
    alternation = "access_token|api_key|code|password|refresh_token|sig|token"
    assert logging_conf.count(f"(?:{alternation}|[^&=]*%[^&=]*)=") == 5  # 4 steps + the guard
    assert '"path":"$fixup_log_path","query":"$fixup_log_query",' in logging_conf.replace(
        "'\n    '", ""
    )
    assert '$request_uri"' not in logging_conf  # the raw URI is never written
    monkeypatch.setenv("LOG_REDACT_PARAMS", "bad|name")
    with pytest.raises(ValueError, match="not a parameter name"):
        nginx.render_files(nginx.Layout())


def test_the_account_pages_exist_where_nginx_serves_them() -> None:
    rendered = nginx.render_files(nginx.Layout())
    assert "    include snippets/account-pages.conf;\n" in rendered["conf.d/30-gateway.conf"]
    pages = rendered["snippets/account-pages.conf"]
    for page in ("verify-email.html", "reset-password.html"):
        assert f"alias {nginx.PAGES_DIR}/{page};" in pages
        assert (nginx.PAGES_DIR / page).is_file()
    assert f"alias {nginx.PAGES_DIR}/assets/;" in pages


SERVED = re.compile(r"^\s*(?:alias|root)\s+([^;\s]+);", re.M)


def test_every_path_the_compose_and_k8s_copies_serve_is_mounted() -> None:
    """Each `alias`/`root` of a committed rendering is a path that a volume brings into the
    container, its file in the repository: in Compose a bind mount of the nginx service
    (/docs/ itself is proxied to the swagger-ui service), in Kubernetes an item of a
    ConfigMap that the pages pod mounts."""
    compose = yaml.safe_load((nginx.ROOT / "docker-compose.yml").read_text())["services"]
    binds = {}  # path in the container -> the repository's file or folder
    for volume in compose["nginx"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            binds[target.rstrip("/")] = nginx.ROOT / source
    copies = [p.read_text() for p in nginx_copies.COMPOSE_DIR.rglob("*.conf")]
    served = {path for text in copies for path in SERVED.findall(text)}
    for path in served:
        mounts = [t for t in binds if path.rstrip("/") == t or path.startswith(t + "/")]
        assert mounts, f"nginx/compose/ serves {path}: no volume of Compose's nginx mounts it"
        assert (binds[mounts[0]] / path.removeprefix(mounts[0]).strip("/")).exists(), path
    assert "/usr/share/nginx/openapi/" in served  # /docs/openapi/

    manifests = yaml.safe_load_all((nginx.ROOT / "deploy/k8s/base/pages.yaml").read_text())
    pod = next(m for m in manifests if m["kind"] == "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = {
        f"{mount['mountPath']}/{item['path']}"
        for container in pod["containers"]
        for mount in container["volumeMounts"]
        for item in volumes[mount["name"]].get("configMap", {}).get("items", [])
    }
    shipped = nginx.render_pages_server(nginx_copies.pages_pod_layout()).values()
    served = {path for text in shipped for path in SERVED.findall(text)}
    for path in served:  # a file, or a folder some mounted file is in
        assert any(f == path or (path.endswith("/") and f.startswith(path)) for f in mounted), (
            f"the pages pod serves {path}: no ConfigMap item of deploy/k8s/base/pages.yaml"
        )
    assert "/usr/share/nginx/pages/verify-email.html" in served


def test_the_pages_server_includes_the_gateways_own_snippets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pages-server.conf (Kubernetes) serves the pages with the gateway's files: the same
    locations, headers, errors, request id rule and access log."""
    layout = nginx.Layout(redact_params="")
    server = nginx.render_pages_server(layout)
    gateway = nginx.render_files(layout)
    assert set(server) == {
        "nginx.conf", "snippets/types.conf", "snippets/errors.conf", "snippets/problem.conf",
        "snippets/pages.conf", "snippets/account-pages.conf", "conf.d/00-maps.conf",
        "conf.d/10-logging.conf",
    }  # fmt: skip
    for rel, text in server.items():
        if rel != "nginx.conf":
            assert text == gateway[rel], rel
    assert not nginx.PLACEHOLDER.search("".join(server.values()))
    broken = tmp_path / "pages-server.conf"
    broken.write_text("include snippets/nope.conf;\n")
    monkeypatch.setattr(nginx, "PAGES_SERVER", broken)
    with pytest.raises(nginx.RenderError, match="not a template"):
        nginx.render_pages_server(layout)


def replay_safe_operations() -> list[tuple[str, str, str]]:
    """(METHOD, service, path regex after /api/<service>) of each write to an operation whose
    committed OpenAPI document takes `Idempotency-Key` (a repeat answers the first response):
    what the gateway may send twice when it carries a key (NGINX's map, the HTTPRoutes)."""
    out = []
    for service in registry.gateway_services():
        document = nginx.OPENAPI_DIR / f"{service.name}.json"
        if not document.is_file():  # not built: nothing to replay
            continue
        for path, item in json.loads(document.read_text())["paths"].items():
            for method, op in item.items():
                names = {p.get("name") for p in op.get("parameters", []) if isinstance(p, dict)}
                if method in ("post", "patch") and "Idempotency-Key" in names:
                    route = re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(path))
                    out.append((method.upper(), service.name, route))
    return out


def test_the_replay_safe_writes_are_the_documented_idempotent_operations() -> None:
    """The gateway may send a write twice only where the committed OpenAPI document
    declares `Idempotency-Key` (ADR 0022): one line of 00-maps.conf's map per such operation."""
    maps = (nginx.TEMPLATES / "conf.d" / "00-maps.conf").read_text()
    block = maps[maps.index("$fixup_replay_safe {") :]
    lines = re.findall(r'^    "~\^(\w+) (\S+) \\S"  1;$', block[: block.index("}")], re.M)
    wanted = [(method, f"/api/{name}{route}") for method, name, route in replay_safe_operations()]
    assert sorted(lines) == sorted(wanted)
    assert ("POST", "/api/orders/v1/jobs/[^/]+/cancel") in lines
