"""Alertmanager: `python -m tools.deploy.alertmanager run [--optional]`.

Its config is observability/alertmanager/alertmanager.yml, a checked-in file (Compose and
Kubernetes mount it). `config()` reads it with other receivers or waits (a test's webhook);
production's receivers live in the prod overlay's copy of it,
deploy/k8s/overlays/prod/alertmanager-receivers.yaml. `run` starts Debian's
prometheus-alertmanager on 127.0.0.1:9093 (`make run`; `--optional`: when it is not
installed, say so and idle), where the local Prometheus sends its alerts.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tools.deploy.generated import ROOT
from tools.deploy.prometheus import ALERTMANAGER as LISTEN
from tools.deploy.prometheus import missing
from tools.packages import sbin

HERE = ROOT / "observability" / "alertmanager"
CONFIG_FILE = HERE / "alertmanager.yml"
RUNTIME = ROOT / "var" / "alertmanager"
BINARY = "prometheus-alertmanager"
INSTALL_HINT = "alertmanager is not installed: apt-get install -y prometheus-alertmanager"


def config(
    receivers: dict[str, dict[str, Any]],
    group_wait: str | None = None,
    group_interval: str | None = None,
) -> dict[str, Any]:
    """alertmanager.yml's routing tree with these receivers (and, for a test, short waits)."""
    document: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text())
    document["receivers"] = [{"name": name, **given} for name, given in receivers.items()]
    if group_wait is not None:
        document["route"]["group_wait"] = group_wait
    if group_interval is not None:
        document["route"]["group_interval"] = group_interval
    return document


def render(document: dict[str, Any]) -> str:
    header = "# observability/alertmanager/alertmanager.yml with its receivers' integrations\n"
    return header + yaml.safe_dump(document, sort_keys=False)


def command(conf: Path, data: Path, listen: str) -> list[str]:
    found = sbin(BINARY)
    if found is None:
        raise FileNotFoundError(INSTALL_HINT)
    return [
        found,
        f"--config.file={conf}",
        f"--storage.path={data}",
        f"--web.listen-address={listen}",
        "--cluster.listen-address=",  # one instance: no gossip port
    ]


def run(optional: bool) -> int:
    if sbin(BINARY) is None:
        return missing("alertmanager", INSTALL_HINT, optional)
    RUNTIME.mkdir(parents=True, exist_ok=True)
    main = subprocess.Popen(command(CONFIG_FILE, RUNTIME / "data", LISTEN))
    signal.signal(signal.SIGTERM, lambda *_: main.terminate())
    return main.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deploy.alertmanager", description=__doc__
    )
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--optional", action="store_true")
    args = parser.parse_args(argv)
    return run(args.optional)


if __name__ == "__main__":
    sys.exit(main())
