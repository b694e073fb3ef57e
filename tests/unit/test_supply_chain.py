"""Supply chain and defaults of the deploy files (issue 42): third-party actions pinned by
commit SHA with their tag beside, permissions granted per job (the OIDC token only where the
AWS role is assumed), no expression expanded into a shell script; NGINX on its stable
branch, the same release in Compose and Kubernetes, with descriptors for its connections;
Compose publishing on loopback only and running a concretely tagged image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.deploy import images, nginx
from tools.deploy.generated import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
AWS_ROLE = "aws-actions/configure-aws-credentials"


def jobs(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text())["jobs"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_tag(path: Path) -> None:
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(?:- )?uses: (.+)$", line)
        if match is None or match.group(1).startswith("./"):
            continue  # a reusable workflow of this repository: the caller's own commit
        assert PINNED.match(match.group(1)), f"{path.name}: {line.strip()}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_per_job_and_the_oidc_token_only_where_the_role_is_assumed(
    path: Path,
) -> None:
    assert yaml.safe_load(path.read_text())["permissions"] == {}
    for name, job in jobs(path).items():
        assert "permissions" in job, f"{path.name}: job {name} has no permissions"
        granted = job["permissions"]
        assert set(granted.values()) <= {"read", "write"}, name
        writes = {scope for scope, level in granted.items() if level == "write"}
        assumes_role = any(s.get("uses", "").startswith(AWS_ROLE) for s in job.get("steps", []))
        assert writes == ({"id-token"} if assumes_role else set()), (path.name, name)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_expanded_into_a_script(path: Path) -> None:
    for name, job in jobs(path).items():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), (path.name, name, step.get("name"))


def test_the_checkout_keeps_no_credentials() -> None:
    for path in WORKFLOWS:
        for job in jobs(path).values():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, path.name


def test_nginx_runs_its_stable_branch_the_same_release_everywhere() -> None:
    major, minor, _ = map(int, images.NGINX_VERSION.split("."))
    assert minor % 2 == 0, "an odd minor is nginx's mainline, not its stable branch"
    assert (major, minor) >= (1, 30), "1.28 and older stable branches are past their support"
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["nginx"]["image"] == images.NGINX
    pages = yaml.safe_load_all((ROOT / "deploy/k8s/base/pages.yaml").read_text())
    (deployment,) = [d for d in pages if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        images.NGINX_UNPRIVILEGED
    )
    for path in [ROOT / "docker-compose.yml", *(ROOT / "deploy").rglob("*.yaml")]:
        assert "nginx:1.2" not in path.read_text(), path  # no older branch left behind
        assert "nginx-unprivileged:1.2" not in path.read_text(), path


NGINX_CONFS = [
    nginx.TEMPLATES / "nginx.conf",
    nginx.PAGES_SERVER,
    nginx.TEMPLATES / "compose" / "nginx.conf",
    nginx.TEMPLATES / "k8s" / "nginx.conf",
]


@pytest.mark.parametrize("path", NGINX_CONFS, ids=lambda p: str(p.relative_to(ROOT)))
def test_nginx_has_descriptors_for_its_connections(path: Path) -> None:
    """A proxied request holds two descriptors (client, upstream) plus files and logs."""
    text = path.read_text()
    connections = int(re.search(r"^\s*worker_connections (\d+);", text, re.M).group(1))  # type: ignore[union-attr]
    limit = re.search(r"^worker_rlimit_nofile (\d+);", text, re.M)
    assert limit, f"{path}: no worker_rlimit_nofile"
    assert int(limit.group(1)) >= 2 * connections + 64, path


def test_compose_publishes_on_loopback_only() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = {
        name: port for name, s in services.items() for port in s.get("ports", [])
    }  # fmt: skip
    assert published, "nothing published: the check would pass vacuously"
    for name, port in published.items():
        assert str(port).startswith("127.0.0.1:"), (name, port)


def test_compose_runs_a_concrete_tag_of_the_image() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    tags = {s["image"].rsplit(":", 1)[-1] for s in services.values() if "image" in s}
    assert tags.isdisjoint({"latest", "stable", "dev", "edge"}), tags


def test_the_prod_overlay_says_how_a_release_sets_its_image() -> None:
    overlay = (ROOT / "deploy" / "k8s" / "overlays" / "prod" / "kustomization.yaml").read_text()
    assert "kustomize edit set image fixup=" in overlay
    (image,) = yaml.safe_load(overlay)["images"]
    assert image["newTag"] != "latest"
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "RepoDigests" in release  # the pushed image by digest, in the job's summary
    assert "GITHUB_STEP_SUMMARY" in release
