"""The pins of tools/deploy/images.py: none older than a fix tools/deploy/advisories.py records, and
each used where it is meant (the Dockerfile's stages, the backup CronJob)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tools.deploy import advisories, images

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PINS = {
    name.removesuffix("_VERSION"): value
    for name, value in vars(images).items()
    if name.endswith("_VERSION") and isinstance(value, str)
}


def test_every_pin_has_an_advisory_row() -> None:
    assert {"NGINX", "ENVOY_GATEWAY", "PGBACKREST"} <= set(PINS)
    assert set(PINS) == {fix.component for fix in advisories.FIXES}


@pytest.mark.parametrize("component", sorted(PINS))
def test_no_pin_is_older_than_a_recorded_fix(component: str) -> None:
    missing = advisories.unfixed(component, PINS[component])
    assert missing is None, f"{component} {PINS[component]} lacks {missing}"


@pytest.mark.parametrize(
    ("component", "pin", "lacks"),
    [
        ("NGINX", "1.30.6", True),  # the ten CVEs of 1.30.7
        ("NGINX", "1.30.7", False),
        ("NGINX", "1.28.9", True),  # an older line
        ("NGINX", "1.31.0", False),  # a newer line carries the fix
        ("ENVOY_GATEWAY", "1.7.3", True),
        ("ENVOY_GATEWAY", "1.7.4", False),
        ("ENVOY_GATEWAY", "1.8.0", True),  # its line's fix is 1.8.1
        ("ENVOY_GATEWAY", "1.6.9", True),
        ("ALERTMANAGER", "0.25.0", True),
    ],
)
def test_the_table_refuses_an_unfixed_release(component: str, pin: str, lacks: bool) -> None:
    assert (advisories.unfixed(component, pin) is not None) is lacks


def from_lines() -> list[str]:
    return re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.M)


def test_the_dockerfile_bases_are_the_pinned_supported_ones() -> None:
    assert from_lines() == [images.NODE_IMAGE, images.PYTHON_IMAGE, images.PYTHON_IMAGE]
    node = re.fullmatch(r"node:(\d+)-(\w+)-slim", images.NODE_IMAGE)
    assert node is not None
    assert int(node[1]) >= 22, "Node 20 and older are past their end of life"
    assert int(node[1]) % 2 == 0, "an odd Node major is never an LTS line"
    assert node[2] == "trixie"


def test_the_runtime_user_cannot_write_the_app() -> None:
    """/app is root's: the runtime user (10001) reads it and writes nothing there; a
    `COPY --chown` of the runtime user into /app, or a chown of it, fails this."""
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    copies = [line for line in final.splitlines() if line.startswith("COPY") and "/app" in line]
    assert copies, "the runtime stage copies the app into /app"
    for line in copies:  # COPY writes root:root unless told otherwise
        assert "--chown" not in line, line
        assert "--chmod" not in line, line
    assert not re.search(r"\bchown\b[^\n]*/app\b", final)
    assert not re.search(r"\bchmod\b[^\n]*/app\b", final)
    # what it may write: named directories below /app, never /app itself
    for made in re.findall(r"install -d [^\n]*?(/app\S*)", final):
        assert made.startswith("/app/var/"), made
    assert "USER 10001" in final


def test_pgbackrest_is_the_database_hosts_release() -> None:
    assert f"ARG PGBACKREST_VERSION={images.PGBACKREST_VERSION}\n" in DOCKERFILE
    assert re.search(r"pgbackrest=\"?\$\{?PGBACKREST_VERSION\}?-", DOCKERFILE)
    (cron_job,) = [
        d
        for d in yaml.safe_load_all((ROOT / "deploy/k8s/base/backup.yaml").read_text())
        if d["kind"] == "CronJob"
    ]
    pod = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    command = " ".join(pod["containers"][0]["command"])
    assert f'= "pgBackRest {images.PGBACKREST_VERSION}" ||' in command


def test_envoy_gateway_is_named_where_it_is_installed() -> None:
    version = f"v{images.ENVOY_GATEWAY_VERSION}"
    assert (
        f"--version {version}" in (ROOT / "deploy/k8s/envoy-gateway/gatewayclass.yaml").read_text()
    )
    assert f"--version {version}" in (ROOT / "deploy/k8s/README.md").read_text()


def test_compose_runs_the_pinned_prometheus_and_alertmanager() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert f"image: {images.PROMETHEUS}\n" in text
    assert f"image: {images.ALERTMANAGER}\n" in text
    assert "prom/prometheus:v2." not in text
