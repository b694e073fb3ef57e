"""What a reviewer of the deploy files runs, offline: `python -m tools.deploy.deploy_scan [what]`
(`make deploy-lint`; docs/operations.md; tests/integration/test_deploy_scanners.py in `make test`).

checkov on each rendered Kubernetes overlay (.checkov.yaml), zizmor on .github/workflows
(.github/zizmor.yml), dclint on docker-compose.yml (.dclintrc.yaml), every Alertmanager
receiver of the paged overlays with an integration, and every Gateway API / Envoy Gateway
object valid against the vendored CRDs' schemas (tools/gatewaylint/validate.mjs) and CEL
rules (tools/deploy/k8s_cel.py). checkov runs from .venv-scan (`make scan-deps`: its pins
cannot share .venv); `requirements` prints pyproject's `scan` extra for pip.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tools.deploy import k8s_cel
from tools.deploy.generated import ROOT

OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
CHECKOV = ROOT / ".venv-scan" / "bin" / "checkov"
DCLINT = ROOT / "tools" / "dclint" / "node_modules" / ".bin" / "dclint"
ZIZMOR = Path(sys.executable).parent / "zizmor"
GATEWAYLINT = ROOT / "tools" / "gatewaylint"
GATEWAY_CLASS_DIR = ROOT / "deploy" / "k8s" / "envoy-gateway"
GATEWAY_GROUPS = (
    "gateway.networking.k8s.io",
    "gateway.networking.x-k8s.io",
    "gateway.envoyproxy.io",
)
PAGED_OVERLAYS = ("prod",)  # the renders whose alerts must reach someone
TIMEOUT = 300  # seconds: each tool on this repository takes well under a minute


class Missing(RuntimeError):
    """A scanner is not installed: the message names it and how to install it."""


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["scan"])


def need(path: Path | str, install: str) -> str:
    found = shutil.which(str(path))
    if found is None:
        raise Missing(f"{path} is not installed: {install}")
    return found


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)


def checkov() -> subprocess.CompletedProcess[str]:
    binary = need(CHECKOV, "make scan-deps (pyproject.toml's scan extra in .venv-scan)")
    need("kubectl", "apt-get install -y kubectl (tools/packages.py)")  # checkov's kustomize
    config = str(ROOT / ".checkov.yaml")
    return run([binary, "--config-file", config, "--framework", "kustomize", "-d", str(OVERLAYS)])


def zizmor() -> subprocess.CompletedProcess[str]:
    binary = need(ZIZMOR, "pip install zizmor (pyproject.toml's dev extra)")
    config = ROOT / ".github" / "zizmor.yml"
    return run([binary, "--offline", "--config", str(config), str(ROOT / ".github" / "workflows")])


def dclint() -> subprocess.CompletedProcess[str]:
    binary = need(DCLINT, "npm ci --prefix tools/dclint")
    return run([binary, "-c", str(ROOT / ".dclintrc.yaml"), str(ROOT / "docker-compose.yml")])


def silent_receivers(rendered: str) -> list[str]:
    """The Alertmanager receivers of a rendered overlay that have no integration."""
    out = []
    for document in yaml.safe_load_all(rendered):
        if not document or document.get("kind") != "ConfigMap":
            continue
        config = (document.get("data") or {}).get("alertmanager.yml")
        if config is None:
            continue
        for receiver in yaml.safe_load(config).get("receivers") or []:
            if not any(_integrations(receiver)):
                out.append(f"{document['metadata']['name']}: receiver {receiver.get('name')!r}")
    return out


def _integrations(receiver: dict[str, Any]) -> list[Any]:
    return [v for k, v in receiver.items() if k.endswith("_configs") and v]


def receivers(overlays: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    """Every receiver of each paged overlay's Alertmanager has an integration."""
    kubectl = need("kubectl", "apt-get install -y kubectl (tools/packages.py)")
    chosen = [OVERLAYS / name for name in PAGED_OVERLAYS] if overlays is None else overlays
    findings = []
    for overlay in chosen:
        done = run([kubectl, "kustomize", str(overlay)])
        if done.returncode != 0:
            return done
        findings += [
            f"{overlay.name}: {found} has no integration: its alerts would reach nobody"
            for found in silent_receivers(done.stdout)
        ]
    lines = findings or [f"every Alertmanager receiver has an integration ({len(chosen)} renders)"]
    return subprocess.CompletedProcess(["receivers"], 1 if findings else 0, "\n".join(lines), "")


def gateway_objects(rendered: str) -> list[dict[str, Any]]:
    """The objects of a render whose API group is the Gateway API's or Envoy Gateway's."""
    return [
        d
        for d in yaml.safe_load_all(rendered)
        if d and str(d.get("apiVersion", "")).split("/")[0] in GATEWAY_GROUPS
    ]


def validate_gateway_objects(
    objects: list[dict[str, Any]], *, cel: bool = True
) -> subprocess.CompletedProcess[str]:
    """tools/gatewaylint/validate.mjs (the structural schemas, unknown fields), then (`cel`)
    the CRDs' CEL rules (tools/deploy/k8s_cel.py) on these objects: exit 1 naming each
    invalid one."""
    if not (GATEWAYLINT / "node_modules" / "@kubernetes-models" / "gateway-api").is_dir():
        raise Missing(
            "the Gateway API schemas are not installed: npm ci --prefix tools/gatewaylint"
        )
    node = need("node", "apt-get install -y nodejs (tools/packages.py)")
    done = subprocess.run(
        [node, str(GATEWAYLINT / "validate.mjs")],
        cwd=GATEWAYLINT,
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    failed, lines = k8s_cel.report(objects) if cel else (0, [])
    code = done.returncode or (1 if failed else 0)
    stdout = done.stdout + "".join(f"{line}\n" for line in lines)
    return subprocess.CompletedProcess(done.args, code, stdout, done.stderr)


def gateway(sources: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    """Every Gateway API / Envoy Gateway object of the renders, against the CRD schemas."""
    kubectl = need("kubectl", "apt-get install -y kubectl (tools/packages.py)")
    if sources is None:
        sources = [*sorted(p for p in OVERLAYS.iterdir() if p.is_dir()), GATEWAY_CLASS_DIR]
    objects: list[dict[str, Any]] = []
    for source in sources:
        done = run([kubectl, "kustomize", str(source)])
        if done.returncode != 0:
            return done
        found = gateway_objects(done.stdout)
        if not found:
            message = f"{source.name}: no Gateway API object in the render"
            return subprocess.CompletedProcess(["gateway"], 1, message, "")
        objects += found
    return validate_gateway_objects(objects)


SCANS = {
    "checkov": checkov,
    "zizmor": zizmor,
    "dclint": dclint,
    "receivers": receivers,
    "gateway": gateway,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy.deploy_scan", description=__doc__)
    parser.add_argument("what", nargs="?", choices=[*SCANS, "all", "requirements"], default="all")
    args = parser.parse_args(argv)
    if args.what == "requirements":
        print("\n".join(requirements()))
        return 0
    failed = []
    for name, scan in SCANS.items():
        if args.what not in ("all", name):
            continue
        try:
            done = scan()
        except Missing as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        print(f"== {name}: exit {done.returncode}\n{done.stdout}{done.stderr}".rstrip())
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"deploy-scan: findings from {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
