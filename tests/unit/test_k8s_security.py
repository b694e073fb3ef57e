"""The Kubernetes overlays as a release and a security review see them (issue 42): every
workload meets Pod Security "restricted", rolls one new pod ready before an old one goes,
drains within its grace; the namespace enforces the profile; and the NetworkPolicies let
through exactly the edges of lib/registry.py (checked by evaluating them, pod to pod)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml

from lib import registry
from lib.config import ServiceSettings
from tests.unit.test_k8s import render
from tools.deploy.images import PGBACKREST_VERSION

OVERLAYS = ["dev", "prod"]
CONFIG = "fixup-config"
JWT_KEYS, JWT_KEYS_PATH = "fixup-jwt-keys", "/run/keys/jwt"
# a release never lowers the ready count: one new pod up and ready before an old one goes
ROLLING_UPDATE = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
PRESTOP_SECONDS = 5  # long enough for kube-proxy and the gateway's Envoy to see a pod go
ENGINE_PORTS = {"postgresql": 5432, "mysql": 3306}
REDIS_PORT, HTTPS_PORT = 6379, 443
PAGES, PAGES_PORT = "pages", 8080
ALERTMANAGER, ALERTMANAGER_PORT = "alertmanager", 9093
MIGRATE = "fixup-migrate"
BACKUP, BACKUP_SECRET, BACKUP_TLS_PORT = "fixup-backup", "fixup-backup-keys", 8432
RECORD = "users"  # the revocation record's keeper and the JWK Set's


def serving_port(service: registry.Microservice) -> int:
    """Where a caller reaches it: gRPC when it has it, else HTTP."""
    return service.grpc_port if service.grpc_port is not None else service.http_port


@cache
def documents(overlay: str) -> tuple[Any, ...]:
    return tuple(d for d in yaml.safe_load_all(render(overlay)) if d)


def workloads(overlay: str) -> list[Any]:
    return [d for d in documents(overlay) if d["kind"] in ("Deployment", "Job", "CronJob")]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: dict[str, Any] = spec["template"]["spec"]
    return result


def of_kind(overlay: str, kind: str) -> dict[str, Any]:
    return {d["metadata"]["name"]: d for d in documents(overlay) if d["kind"] == kind}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_meets_restricted(overlay: str) -> None:
    for workload in workloads(overlay):
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)
        assert pod["automountServiceAccountToken"] is False, name
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] >= 10000, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["readOnlyRootFilesystem"] is True, name
            writable = {m["name"] for m in container.get("volumeMounts", [])}
            writable -= {m["name"] for m in container["volumeMounts"] if m.get("readOnly")}
            assert writable <= empty_dirs, (name, writable)
            limits = container["resources"]["limits"]
            assert {"cpu", "memory"} <= set(limits) <= set(container["resources"]["requests"])
    kinds = {w["kind"] for w in workloads(overlay)}
    assert kinds == {"Deployment", "Job", "CronJob"}, kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_restricted(overlay: str) -> None:
    (namespace,) = of_kind(overlay, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_release_rolls_without_losing_a_ready_pod(overlay: str) -> None:
    config = of_kind(overlay, "ConfigMap")
    drain = float(next(c for n, c in config.items() if n.startswith(CONFIG))["data"]
                  ["SHUTDOWN_TIMEOUT"])  # fmt: skip
    assert drain == ServiceSettings.model_fields["shutdown_timeout"].default
    deployments = of_kind(overlay, "Deployment")
    for name, deployment in deployments.items():
        assert deployment["spec"]["strategy"] == ROLLING_UPDATE, name
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        sleep = container["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep == ["sleep", str(PRESTOP_SECONDS)], name
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if name in {s.name for s in registry.built_services()}:
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
            assert grace > PRESTOP_SECONDS + drain, name
        else:
            assert grace > PRESTOP_SECONDS, name
    budgets, scalers = (
        of_kind(overlay, "PodDisruptionBudget"),
        of_kind(overlay, "HorizontalPodAutoscaler"),
    )
    for s in registry.built_services():
        assert budgets[s.name]["spec"]["maxUnavailable"] == 1
        assert scalers[s.name]["spec"]["minReplicas"] >= s.replicas


# --- NetworkPolicies, evaluated ---------------------------------------------------------


def selects(selector: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    return all(pod_labels.get(k) == v for k, v in wanted.items())


def peer_matches(
    peer: dict[str, Any], namespace: str, pod_labels: dict[str, str], own: str
) -> bool:
    if "ipBlock" in peer:
        return False  # the policies never name addresses
    if "namespaceSelector" in peer:
        ns = {"kubernetes.io/metadata.name": namespace}
        if not selects(peer["namespaceSelector"], ns):
            return False
    elif namespace != own:
        return False
    return selects(peer.get("podSelector", {}), pod_labels)


def rule_allows(rule: dict[str, Any], namespace: str, labels: dict[str, str], port: int,
                own: str, protocol: str = "TCP") -> bool:  # fmt: skip
    ports = rule.get("ports")
    if ports and not any(p["port"] == port and p["protocol"] == protocol for p in ports):
        return False
    peers = rule.get("to", rule.get("from"))
    return peers is None or any(peer_matches(p, namespace, labels, own) for p in peers)


def allowed(overlay: str, src: tuple[str, dict[str, str]], dst: tuple[str, dict[str, str]],
            port: int, protocol: str = "TCP") -> bool:  # fmt: skip
    """Both sides' policies (when the side is our namespace) let src reach dst:port."""
    own = f"fixup-{overlay}"
    policies = list(of_kind(overlay, "NetworkPolicy").values())
    for side, other, direction in ((src, dst, "egress"), (dst, src, "ingress")):
        namespace, labels = side
        if namespace != own:
            continue
        chosen = [p for p in policies if selects(p["spec"]["podSelector"], labels)
                  and direction.capitalize() in p["spec"]["policyTypes"]]  # fmt: skip
        assert chosen, f"no {direction} policy selects {labels}: default-deny missing"
        rules = [r for p in chosen for r in p["spec"].get(direction, [])]
        if not any(rule_allows(r, other[0], other[1], port, own, protocol) for r in rules):
            return False
    return True


def pod(overlay: str, name: str) -> tuple[str, dict[str, str]]:
    """The namespace and labels of the workload `name`'s pods, as rendered."""
    (workload,) = [w for w in workloads(overlay) if w["metadata"]["name"] == name]
    template = workload["spec"]
    if workload["kind"] == "CronJob":
        template = template["jobTemplate"]["spec"]
    return f"fixup-{overlay}", template["template"]["metadata"]["labels"]


# Envoy Gateway's Envoy pods of our Gateway, in its Helm chart's namespace
GATEWAY = (
    "envoy-gateway-system",
    {"app.kubernetes.io/name": "envoy", "gateway.envoyproxy.io/owning-gateway-name": "fixup"},
)
PROMETHEUS = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
DNS = ("kube-system", {"k8s-app": "kube-dns"})
STRANGER = ("default", {"app.kubernetes.io/name": "anything"})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_to_service_traffic_is_exactly_the_registry_edges(overlay: str) -> None:
    built = registry.built_services()
    for caller in built:
        for callee in built:
            port = serving_port(callee)
            # its breakers, and users' revocation record from every other service (ADR 0010)
            record = callee.name == RECORD != caller.name
            expected = callee.name in caller.breakers or record
            got = allowed(overlay, pod(overlay, caller.name), pod(overlay, callee.name), port)
            assert got == expected, (caller.name, callee.name, port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_users_signs_from_its_key_secret_and_the_others_verify_through_its_jwks(
    overlay: str,
) -> None:
    """ADR 0032: users mounts the Secret `fixup-jwt-keys` whole (no subPath: the kubelet
    refreshes it) as JWT_KEYS_DIR; every other service's JWKS_URL is users' Service, and
    its NetworkPolicies let every other service reach that port; no fixed key is set."""
    users = registry.get("users")
    config = of_kind(overlay, "ConfigMap")[CONFIG]["data"]
    assert config["JWKS_URL"] == f"http://users:{users.http_port}/.well-known/jwks.json"
    assert not {"JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY", "JWT_KEYS_DIR"} & set(config)
    for name, workload in of_kind(overlay, "Deployment").items():
        spec = pod_spec(workload)
        env = {e["name"]: e.get("value") for c in spec["containers"] for e in c.get("env", [])}
        secrets = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        if name == "users":
            assert env["JWT_KEYS_DIR"] == JWT_KEYS_PATH
            (mount,) = [
                m for m in spec["containers"][0]["volumeMounts"]
                if m["mountPath"] == JWT_KEYS_PATH
            ]  # fmt: skip
            assert mount["readOnly"]
            assert "subPath" not in mount
            assert JWT_KEYS in secrets
        else:
            assert "JWT_KEYS_DIR" not in env, name
            assert JWT_KEYS not in secrets, name
    for s in registry.built_services():
        if s.name != "users":
            assert allowed(overlay, pod(overlay, s.name), pod(overlay, "users"), users.http_port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_prometheus_and_dns_edges(overlay: str) -> None:
    for s in registry.built_services():
        me = pod(overlay, s.name)
        routed = s.behind_gateway or bool(s.side_routes)  # points: its side port's audit list
        assert allowed(overlay, GATEWAY, me, s.http_port) == routed, s.name
        assert allowed(overlay, PROMETHEUS, me, s.metrics_port), s.name
        assert not allowed(overlay, STRANGER, me, s.http_port), s.name
        assert allowed(overlay, me, DNS, 53, "UDP"), s.name
        assert not allowed(overlay, me, STRANGER, 80), s.name
    pages = pod(overlay, PAGES)
    assert allowed(overlay, GATEWAY, pages, PAGES_PORT)
    assert not allowed(overlay, STRANGER, pages, PAGES_PORT)
    alertmanager = pod(overlay, ALERTMANAGER)
    assert allowed(overlay, PROMETHEUS, alertmanager, ALERTMANAGER_PORT)
    assert not allowed(overlay, GATEWAY, alertmanager, ALERTMANAGER_PORT)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_reaches_its_database_and_redis_only(overlay: str) -> None:
    outside = ("", {})  # a managed server: no pod labels, no namespace of ours
    for s in registry.built_services():
        me = pod(overlay, s.name)
        own_port = ENGINE_PORTS[s.engine]
        assert allowed(overlay, me, outside, own_port), s.name
        assert allowed(overlay, me, outside, REDIS_PORT), s.name
        for engine, port in ENGINE_PORTS.items():
            if engine != s.engine:
                assert not allowed(overlay, me, outside, port), (s.name, engine)
    migrate = pod(overlay, MIGRATE)
    for port in ENGINE_PORTS.values():
        assert allowed(overlay, migrate, outside, port)
    assert not allowed(overlay, migrate, outside, REDIS_PORT)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_backup_cronjob_runs_alone_and_reads_its_keys_from_files(overlay: str) -> None:
    job = of_kind(overlay, "CronJob")[BACKUP]
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 3600  # below the hourly period
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1
    pod = pod_spec(job)
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    script = container["command"][-1]
    assert container["command"][:2] == ["sh", "-c"]
    assert script.startswith("set -eu; ")
    # the image's pgBackRest is the database host's release (else nothing runs), then the
    # stanza (idempotent), then the backup: full at BACKUP_FULL_HOUR, else differential
    assert f'test "$(pgbackrest version)" = "pgBackRest {PGBACKREST_VERSION}" ||' in script
    assert script.index("pgbackrest version") < script.index("pgbackrest stanza-create")
    assert script.endswith('pgbackrest stanza-create && exec pgbackrest backup --type="$kind"')
    # no secret as a variable: the settings are a ConfigMap, the keys a Secret's files
    assert "env" not in container
    assert [next(iter(e)) for e in container["envFrom"]] == ["configMapRef"]
    settings = next(d for n, d in of_kind(overlay, "ConfigMap").items()
                    if n.startswith(BACKUP))["data"]  # fmt: skip
    assert not [k for k in settings if ("KEY" in k and "FILE" not in k) or "PASS" in k]
    secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert {s["secretName"] for s in secrets.values()} == {BACKUP_SECRET}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for name in secrets:
        assert mounts[name]["readOnly"] is True, name
    assert mounts["s3-keys"]["mountPath"] == settings["PGBACKREST_CONFIG_INCLUDE_PATH"]
    tls = mounts["pg-tls"]["mountPath"]
    for option in ("CA", "CERT", "KEY"):
        path = settings[f"PGBACKREST_PG1_HOST_{option}_FILE"]
        assert path.rsplit("/", 1)[0] == tls, option
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_backup_job_reaches_the_database_host_and_the_object_store_only(
    overlay: str,
) -> None:
    outside: tuple[str, dict[str, str]] = ("", {})  # the database host, the object store
    me = pod(overlay, BACKUP)
    assert allowed(overlay, me, outside, BACKUP_TLS_PORT)
    assert allowed(overlay, me, outside, HTTPS_PORT)
    assert allowed(overlay, me, DNS, 53, "UDP")
    for port in (*ENGINE_PORTS.values(), REDIS_PORT, 80):
        assert not allowed(overlay, me, outside, port), port
    for s in registry.built_services():
        assert not allowed(overlay, me, pod(overlay, s.name), serving_port(s))
        assert not allowed(overlay, pod(overlay, s.name), me, BACKUP_TLS_PORT)
    for peer in (GATEWAY, PROMETHEUS, STRANGER):
        assert not allowed(overlay, peer, me, BACKUP_TLS_PORT), peer
